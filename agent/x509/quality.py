"""Key-quality rules for one certificate (a pure function of its facts, hence cacheable).

Sources: NIST SP 800-131A Rev. 2 (RSA >= 2048, no SHA-1 signatures); the key types AWS IoT
accepts for X.509 client certificates, https://docs.aws.amazon.com/iot/latest/developerguide/x509-client-certs.html
(RSA >= 2048, ECDSA on NIST P-256/P-384/P-521); ROCA, CVE-2017-15361.
"""

from __future__ import annotations

from agent.report import Finding, Status
from agent.x509.parse import CertFacts, KeyFacts

ALLOWED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
MIN_RSA_BITS = 2048
WEAK_SIGNATURE_HASHES = frozenset({"md5", "sha1", "md2", "md4"})
RSA_EXPONENT = 65537


def describe_key(facts: CertFacts) -> str:
    """e.g. ``RSA 2048-bit`` or ``EC P-256``."""
    return describe_public_key(facts.key)


def describe_public_key(key: KeyFacts) -> str:
    """e.g. ``RSA 2048-bit`` or ``EC P-256``."""
    if key.algorithm == "EC":
        return f"EC {ALLOWED_CURVES.get(key.curve or '', key.curve)}"
    if key.algorithm in ("RSA", "DSA"):
        return f"{key.algorithm} {key.bits}-bit"
    return key.algorithm


def key_findings(facts: CertFacts) -> list[Finding]:
    """Every key-quality problem of a certificate, worst kinds first."""
    return key_problems(facts.key, facts.signature_hash, facts.self_issued)


def key_problems(key: KeyFacts, signature_hash: str | None, self_issued: bool) -> list[Finding]:
    """Every key-quality problem of a certificate with this key, signature hash and issuer."""
    found: list[Finding] = []
    reissue = "issue a new certificate for a new key"
    if key.algorithm == "RSA":
        if key.bits < MIN_RSA_BITS:
            found.append(
                Finding(
                    Status.CRITICAL,
                    "rsa_too_small",
                    f"RSA key of {key.bits} bits (< {MIN_RSA_BITS})",
                    f"{reissue} (RSA >= {MIN_RSA_BITS} bits or EC P-256)",
                )
            )
        if key.roca:
            found.append(
                Finding(
                    Status.CRITICAL,
                    "roca_vulnerable",
                    "RSA modulus has the Infineon ROCA fingerprint (CVE-2017-15361): factorable",
                    "generate a new key outside the affected Infineon library (update the TPM/"
                    "secure-element firmware) and issue a new certificate; revoke this one",
                )
            )
        if key.exponent != RSA_EXPONENT:
            found.append(
                Finding(
                    Status.WARNING,
                    "rsa_exponent",
                    f"RSA public exponent is {key.exponent}, not 65537",
                    f"{reissue} with the standard public exponent 65537",
                )
            )
    elif key.algorithm == "EC" and key.curve not in ALLOWED_CURVES:
        found.append(
            Finding(
                Status.CRITICAL,
                "weak_curve",
                f"EC curve {key.curve} is not P-256, P-384 or P-521",
                f"{reissue} on P-256, P-384 or P-521",
            )
        )
    elif key.algorithm == "DSA":
        found.append(
            Finding(
                Status.WARNING,
                "dsa_key",
                "DSA key: deprecated (FIPS 186-5) and not accepted by AWS IoT",
                f"{reissue} (RSA >= 2048 bits or EC P-256)",
            )
        )
    elif key.algorithm not in ("EC", "Ed25519", "Ed448"):
        found.append(
            Finding(
                Status.WARNING,
                "unknown_key_type",
                f"unrecognised key type {key.algorithm}",
                f"{reissue} (RSA >= 2048 bits or EC P-256)",
            )
        )
    if signature_hash in WEAK_SIGNATURE_HASHES and not self_issued:
        found.append(
            Finding(
                Status.CRITICAL,
                "weak_signature",
                f"signed with {signature_hash.upper()}, which allows forged certificates",
                "have the CA re-issue the certificate with a SHA-256 (or stronger) signature",
            )
        )
    return found
