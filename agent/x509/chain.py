"""Chain rules: what the root CA bundle must hold, and what the device certificate must be.

- The root CA file (``rootCaPath``) is the trust store for the AWS IoT server; it must hold
  only CA certificates and, for an AWS endpoint, an Amazon Trust Services root:
  https://docs.aws.amazon.com/iot/latest/developerguide/server-authentication.html
- The device certificate is a TLS client certificate: not a CA (RFC 5280 4.2.1.9), and when it
  has an extendedKeyUsage that must allow clientAuth (RFC 5280 4.2.1.12). With a BYO CA
  (``certificates.caBundle``) it must path-validate against that bundle:
  https://docs.aws.amazon.com/iot/latest/developerguide/register-CA-cert.html
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.report import Finding, Status
from agent.x509.inventory import FileEntry
from agent.x509.parse import PemCertificates
from agent.x509.trust import amazon_root_name, is_aws_endpoint, verify_client_certificate

# RFC 5280 4.2.1.12 key purposes.
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0"
_AMAZON_ROOTS_URL = "https://www.amazontrust.com/repository/AmazonRootCA1.pem"

Findings = tuple[list[Finding], str, dict[str, Any]]
"""(findings, message when all is well, details)."""


def root_ca_findings(entry: FileEntry, endpoint: str | None) -> Findings:
    """Findings about the root CA bundle at ``entry`` (which parsed)."""
    assert isinstance(entry.outcome, PemCertificates)
    certs = entry.outcome.certs
    findings: list[Finding] = []
    not_ca = [(i, c.subject) for i, c in enumerate(certs) if not c.is_ca]
    if not_ca:
        listed = ", ".join(f"#{i} {subject!r}" for i, subject in not_ca)
        findings.append(
            Finding(
                Status.CRITICAL,
                "not_a_ca",
                f"holds {len(not_ca)} certificate(s) that are not CAs (basicConstraints cA=TRUE "
                f"missing): {listed}",
                f"keep only CA certificates in {entry.path} (e.g. {_AMAZON_ROOTS_URL}); a device "
                "or server certificate does not belong in the trust store",
            )
        )
    amazon = sorted({n for c in certs if (n := amazon_root_name(c.spki_sha256)) is not None})
    aws = is_aws_endpoint(endpoint)
    details: dict[str, Any] = {
        "certificates": len(certs),
        "amazon_roots": amazon,
        "endpoint": endpoint,
        "aws_endpoint": aws,
    }
    if aws and not amazon:
        findings.append(
            Finding(
                Status.CRITICAL,
                "no_amazon_root",
                "holds no Amazon Trust Services root, so the TLS connection to the AWS IoT "
                f"endpoint {endpoint or '(not yet configured)'} will fail",
                f"add Amazon Root CA 1 ({_AMAZON_ROOTS_URL}; Amazon Root CA 3 for ECC) "
                f"to {entry.path}",
            )
        )
    if amazon:
        ok = f"{len(certs)} CA certificate(s), including {', '.join(amazon)}"
    else:
        ok = (
            f"{len(certs)} CA certificate(s); endpoint {endpoint} is not AWS IoT, "
            "so no Amazon root is needed"
        )
    return findings, ok, details


def device_cert_findings(entry: FileEntry, ca_bundle: FileEntry | None, at: datetime) -> Findings:
    """Findings about the device certificate (a TLS client leaf) and its BYO-CA chain."""
    details: dict[str, Any] = {}
    if not isinstance(entry.outcome, PemCertificates):
        return (
            [
                Finding(
                    Status.UNKNOWN,
                    "certificate_unreadable",
                    "cannot check the chain: the device certificate is unreadable "
                    "(see certificate.readable)",
                    "fix the device certificate first",
                )
            ],
            "",
            details,
        )
    leaf = entry.outcome.certs[0]
    findings: list[Finding] = []
    notes = ["end-entity certificate"]
    if leaf.is_ca:
        findings.append(
            Finding(
                Status.CRITICAL,
                "device_cert_is_ca",
                "device certificate is a CA certificate (basicConstraints cA=TRUE)",
                "issue the device an end-entity certificate (cA=FALSE); "
                "never give a device a CA key",
            )
        )
    if leaf.eku is not None:
        details["extended_key_usage"] = sorted(leaf.eku)
        if CLIENT_AUTH not in leaf.eku and ANY_EXTENDED_KEY_USAGE not in leaf.eku:
            findings.append(
                Finding(
                    Status.WARNING,
                    "eku_without_client_auth",
                    "extendedKeyUsage does not include clientAuth; TLS servers that enforce EKU "
                    "will refuse it as a client certificate",
                    "re-issue the device certificate with extendedKeyUsage clientAuth "
                    "(or without EKU)",
                )
            )
        else:
            notes.append("EKU allows clientAuth")
    if ca_bundle is not None:
        details["ca_bundle"] = ca_bundle.path
        findings.append(_byo_ca(entry, ca_bundle, at, notes))
    return findings, "; ".join(notes), details


def _byo_ca(entry: FileEntry, bundle: FileEntry, at: datetime, notes: list[str]) -> Finding:
    assert isinstance(entry.outcome, PemCertificates)
    if not isinstance(bundle.outcome, PemCertificates):
        return Finding(
            Status.UNKNOWN,
            "ca_bundle_unreadable",
            f"cannot verify against caBundle {bundle.path}: it is unreadable "
            "(see certificate.readable)",
            "fix certificates.caBundle first",
        )
    leaf, *intermediates = entry.outcome.objects
    verification = verify_client_certificate(leaf, intermediates, bundle.outcome.objects, at)
    if verification.v1_direct:
        notes.append(f"signed by caBundle anchor: {verification.detail}")
        return Finding(
            Status.WARNING,
            "v1_certificate",
            "X.509 v1 device certificate (no extensions, so it cannot assert it is not a CA): "
            "strict verifiers refuse it; only its signature by the caBundle anchor was checked",
            "re-issue the device certificate as X.509 v3 (openssl x509 -req ... -extfile with "
            "basicConstraints=critical,CA:FALSE and extendedKeyUsage=clientAuth)",
        )
    if verification.ok:
        notes.append(f"verifies against caBundle: {verification.detail}")
        return Finding(Status.OK, "verified", verification.detail)
    return Finding(
        Status.CRITICAL,
        "ca_bundle_verify_failed",
        f"does not verify against caBundle {bundle.path}: {verification.detail}",
        "issue the device certificate from a CA in certificates.caBundle (append any "
        "intermediate CA certificates to the device certificate file), or correct caBundle",
    )
