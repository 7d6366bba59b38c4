"""``certificate.key_match`` for a private key held on a PKCS#11 token (HSM, TPM, SoftHSM).

The token's public key is read through the same library, slot and PIN the nucleus uses
(``aws.greengrass.crypto.Pkcs11Provider``, overridable with ``pkcs11.*``) and compared, as a
SubjectPublicKeyInfo hash, with the device certificate's. Every token access is a login, and
tokens lock after a few wrong PINs, so a verdict is reused until the URI, the PKCS#11 settings or
the certificate change: a wrong PIN is tried once, not once per cycle.
https://docs.aws.amazon.com/greengrass/v2/developerguide/hardware-security.html
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from agent.config.models import AgentConfig
from agent.greengrass.root import PKCS11_PROVIDER, GreengrassRoot
from agent.report import CheckResult, Status
from agent.x509.inventory import redact_pkcs11
from agent.x509.parse import spki_sha256

CHECK_ID = "certificate.key_match"

# Reasons that prove the nucleus cannot use the key either (CRITICAL), as opposed to the agent
# lacking a way to look (UNKNOWN). Reasons come from agent.pkcs11.Pkcs11Error.
_DEFECTS = frozenset({
    "bad_uri", "bad_pin", "pin_locked", "no_such_token", "no_such_key", "ambiguous_key",
    "library_missing", "library_not_configured",
})  # fmt: skip


@dataclass(frozen=True)
class TokenVerdict:
    """A verdict and a digest of everything it was judged from, to reuse it until one changes."""

    fingerprint: str
    result: CheckResult


def _settings_fingerprint(
    config: AgentConfig, greengrass: GreengrassRoot, uri: str, cert_spki: bytes
) -> str:
    # A digest, not the values: the PIN must not sit in the agent's memory of verdicts in clear.
    pin = config.pkcs11.user_pin
    material = {
        "uri": uri,
        "library": str(config.pkcs11.library),
        "slot": config.pkcs11.slot,
        "pin": pin.get_secret_value() if pin is not None else None,
        "provider": dict(greengrass.service_configuration(PKCS11_PROVIDER)),
        "cert": cert_spki.hex(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def pkcs11_key_match(
    config: AgentConfig,
    greengrass: GreengrassRoot,
    cert_path: str,
    cert_spki: bytes,
    last: TokenVerdict | None,
) -> TokenVerdict:
    """The verdict for the device certificate ``cert_path`` against the token key: ``last``
    again when nothing it was judged from changed."""
    uri = greengrass.path("privateKeyPath") or ""
    fingerprint = _settings_fingerprint(config, greengrass, uri, cert_spki)
    if last is not None and last.fingerprint == fingerprint:
        return last
    return TokenVerdict(fingerprint, _judge(config, greengrass, uri, cert_path, cert_spki))


def _judge(
    config: AgentConfig, greengrass: GreengrassRoot, uri: str, cert_path: str, cert_spki: bytes
) -> CheckResult:
    from agent.pkcs11 import Pkcs11Error, device_public_key  # loads the PKCS#11 binding

    shown = redact_pkcs11(uri)
    details: dict[str, Any] = {"key_uri": shown, "certificate_spki_sha256": cert_spki.hex()}
    try:
        public_key = device_public_key(uri, config, greengrass)
    except Pkcs11Error as exc:
        status = Status.CRITICAL if exc.reason in _DEFECTS else Status.UNKNOWN
        return CheckResult(
            CHECK_ID,
            status,
            cert_path,
            f"cannot read the token key {shown}: {exc}",
            {**details, "reason": exc.reason},
            "check the library, slot and userPin of the aws.greengrass.crypto.Pkcs11Provider "
            "configuration and the object label in system.privateKeyPath",
        )
    key_spki = spki_sha256(public_key)
    details["key_spki_sha256"] = key_spki.hex()
    if key_spki == cert_spki:
        return CheckResult(
            CHECK_ID,
            Status.OK,
            cert_path,
            f"the token key {shown} matches the certificate",
            details,
        )
    return CheckResult(
        CHECK_ID,
        Status.CRITICAL,
        cert_path,
        f"the token key {shown} is not the key of the certificate",
        {**details, "reason": "mismatch"},
        "point system.privateKeyPath at the token object the certificate was issued for, or "
        "issue a certificate for the token key (CSR signed on the token)",
    )
