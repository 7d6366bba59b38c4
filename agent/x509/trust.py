"""Trust decisions: Amazon Trust Services roots, AWS endpoints, and BYO-CA path validation.

AWS IoT Core's data endpoints (``*-ats.iot.<region>.amazonaws.com``) present server
certificates chaining to Amazon Trust Services; the device must trust one of its roots:
https://docs.aws.amazon.com/iot/latest/developerguide/server-authentication.html
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

# SHA-256 of the DER SubjectPublicKeyInfo of each Amazon Trust Services root. Computed from
# Debian ca-certificates 20230311+deb12u1 (the Mozilla root store):
# /usr/share/ca-certificates/mozilla/Amazon_Root_CA_{1,2,3,4}.crt and
# /usr/share/ca-certificates/mozilla/Starfield_Services_Root_Certificate_Authority_-_G2.crt.
# Keyed by public key, not certificate hash, so a re-issued root with the same key still counts.
AMAZON_TRUST_SERVICES_ROOTS: dict[bytes, str] = {
    bytes.fromhex("fbe3018031f9586bcbf41727e417b7d1c45c2f47f93be372a17b96b50757d5a2"): (
        "Amazon Root CA 1"
    ),
    bytes.fromhex("7f4296fc5b6a4e3b35d3c369623e364ab1af381d8fa7121533c9d6c633ea2461"): (
        "Amazon Root CA 2"
    ),
    bytes.fromhex("36abc32656acfc645c61b71613c4bf21c787f5cabbee48348d58597803d7abc9"): (
        "Amazon Root CA 3"
    ),
    bytes.fromhex("f7ecded5c66047d28ed6466b543c40e0743abe81d109254dcf845d4c2c7853c5"): (
        "Amazon Root CA 4"
    ),
    bytes.fromhex("2b071c59a0a0ae76b0eadb2bad23bad4580b69c3601b630c2eaf0613afa83f92"): (
        "Starfield Services Root Certificate Authority - G2"
    ),
}

_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")
_PLACEHOLDER = re.compile(r"<[^>]*>|CONFIGURE", re.IGNORECASE)


def amazon_root_name(spki_sha256: bytes) -> str | None:
    """The name of the Amazon Trust Services root with this public key, if it is one."""
    return AMAZON_TRUST_SERVICES_ROOTS.get(spki_sha256)


def is_aws_endpoint(endpoint: str | None) -> bool:
    """True for an AWS IoT endpoint, and for an unset/placeholder one (it will become one).

    A custom broker (a local Mosquitto, a custom domain) is not held to the Amazon root rule.
    """
    if endpoint is None or not endpoint.strip() or _PLACEHOLDER.search(endpoint):
        return True
    host = endpoint.strip().lower()
    host = host.split("://", 1)[-1].split("/", 1)[0]
    if host.startswith("["):  # IPv6 literal, never an AWS name
        return False
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host.rstrip(".").endswith(_AWS_SUFFIXES)


def _key_cert_sign_if_present(
    _policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage | None
) -> None:
    # RFC 5280 4.2.1.3: a CA key that signs certificates must assert keyCertSign when the
    # extension is present. Its absence is tolerated: the AWS "register your CA" recipe
    # (openssl req -x509 with the default v3_ca section) makes CA certificates without it.
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("CA keyUsage does not assert keyCertSign")


def _client_verifier_policies() -> tuple[ExtensionPolicy, ExtensionPolicy]:
    """Web PKI defaults, relaxed where IoT device certificates legitimately differ."""
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.KeyUsage, Criticality.AGNOSTIC, _key_cert_sign_if_present
    )
    # Device certificates usually carry no SAN (the thing is identified by the certificate,
    # not a name) and often no AKI; an EKU without clientAuth is reported by the chain check
    # as a WARNING of its own, so it must not turn path validation into a CRITICAL failure.
    ee_policy = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    )
    return ca_policy, ee_policy


@dataclass(frozen=True, slots=True)
class Verification:
    """Outcome of validating the device certificate against a CA bundle."""

    ok: bool
    detail: str
    """The validated chain's subjects, or the verifier's reason."""
    v1_direct: bool = False
    """The leaf is X.509 v1, so only its direct signature by an anchor could be checked."""


def verify_client_certificate(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
) -> Verification:
    """Path-validate ``leaf`` as a TLS client certificate against ``anchors`` at time ``at``."""
    ca_policy, ee_policy = _client_verifier_policies()
    try:
        verifier = (
            PolicyBuilder()
            .store(Store(list(anchors)))
            .time(at)
            .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
            .build_client_verifier()
        )
        verified = verifier.verify(leaf, list(intermediates))
    except VerificationError as exc:
        if leaf.version is x509.Version.v1:
            return _v1_direct(leaf, anchors, at, str(exc))
        return Verification(False, str(exc))
    except ValueError as exc:  # e.g. an anchor the store refuses
        return Verification(False, f"cannot validate: {exc}")
    return Verification(True, " -> ".join(_subject(c) for c in verified.chain))


def _v1_direct(
    leaf: x509.Certificate, anchors: Sequence[x509.Certificate], at: datetime, reason: str
) -> Verification:
    # The verifier only takes X.509 v3 (RFC 5280 profile), but `openssl x509 -req` without an
    # extension file - the AWS "create a client certificate from your CA" recipe - mints v1
    # device certificates, which AWS IoT accepts. For those, check the one hop that matters:
    # an anchor of the bundle signed the leaf, and the leaf is within its validity at `at`.
    if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
        return Verification(
            False, f"{reason} (and the v1 certificate is not valid at {at:%Y-%m-%d})"
        )
    for anchor in anchors:
        try:
            leaf.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return Verification(True, f"{_subject(leaf)} -> {_subject(anchor)}", v1_direct=True)
    return Verification(False, reason)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"
