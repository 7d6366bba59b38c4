"""``certificate.key_match`` for a private key on a PKCS#11 token, against a real SoftHSM2 token."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from agent.checks.base import Kept
from agent.greengrass.root import PKCS11_PROVIDER, GreengrassRoot
from agent.report import CheckResult, Status
from tests.peers.softhsm import SoftHsm
from tests.pki import Issued, ec_key, make_ca, make_context, make_device_cert, make_greengrass_root

ID = "certificate.key_match"


def _token_device(token_key: Any) -> Issued:
    """A device certificate issued for the public key of the token's key pair."""
    return make_device_cert(make_ca("Token CA"), "hsm-device", key=token_key)


def _root(tmp_path: Path, device: Issued, uri: str, provider: dict[str, Any]) -> GreengrassRoot:
    root = make_greengrass_root(tmp_path, device=device, system_overrides={"privateKeyPath": uri})
    raw = dict(root.raw)
    raw["services"] = {**raw.get("services", {}), PKCS11_PROVIDER: {"configuration": provider}}
    return dataclasses.replace(root, raw=raw)


def _key_match(
    root: GreengrassRoot, config: dict[str, Any] | None = None, kept: Kept | None = None
) -> list[CheckResult]:
    from agent.checks.certificates import key_match

    return list(key_match(make_context(root, config, kept=kept)))


def _provider(hsm: SoftHsm, pin: str | None = None) -> dict[str, Any]:
    # As the Pkcs11Provider component is configured on a device (its keys: name, library, slot,
    # userPin): https://docs.aws.amazon.com/greengrass/v2/developerguide/pkcs11-provider-component.html
    return {
        "name": "softhsm",
        "library": hsm.library,
        "slot": hsm.slot,
        "userPin": pin or hsm.user_pin,
    }


def test_token_key_of_the_certificate_is_ok(tmp_path: Path, softhsm: SoftHsm) -> None:
    for obj in (softhsm.rsa, softhsm.ec):
        root = _root(
            tmp_path / obj.label,
            _token_device(obj.private_key()),
            obj.greengrass_uri,
            _provider(softhsm),
        )
        [r] = _key_match(root)
        assert r.status is Status.OK, r
        assert r.details["key_spki_sha256"] == r.details["certificate_spki_sha256"]
        assert softhsm.user_pin not in repr(r.to_dict())


def test_other_token_key_is_critical(tmp_path: Path, softhsm: SoftHsm) -> None:
    # The certificate was issued for the EC key; the URI names the RSA one.
    root = _root(
        tmp_path, _token_device(softhsm.ec.private_key()), softhsm.rsa.uri, _provider(softhsm)
    )
    [r] = _key_match(root)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "mismatch")
    assert r.remediation


def test_unrelated_certificate_is_critical(tmp_path: Path, softhsm: SoftHsm) -> None:
    root = _root(tmp_path, _token_device(ec_key()), softhsm.ec.uri, _provider(softhsm))
    [r] = _key_match(root)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "mismatch")


def test_wrong_pin_is_critical_tried_once_and_never_shown(
    tmp_path: Path,
    softhsm: SoftHsm,
) -> None:
    root = _root(
        tmp_path,
        _token_device(softhsm.rsa.private_key()),
        softhsm.rsa.uri,
        _provider(softhsm, pin="999999"),
    )
    kept = Kept()
    [first] = _key_match(root, kept=kept)
    assert (first.status, first.details["reason"]) == (Status.CRITICAL, "bad_pin")
    assert "999999" not in repr(first.to_dict())
    # The next cycle reuses the verdict instead of logging in again (tokens lock after a few).
    [again] = _key_match(root, kept=kept)
    assert again is first
    # A corrected PIN in the agent's own pkcs11.* settings is tried at once.
    [fixed] = _key_match(root, {"pkcs11": {"userPin": softhsm.user_pin}}, kept=kept)
    assert fixed.status is Status.OK


def test_unknown_label_and_missing_library(tmp_path: Path, softhsm: SoftHsm) -> None:
    device = _token_device(softhsm.rsa.private_key())
    root = _root(
        tmp_path / "a", device, "pkcs11:object=no-such-key;type=private", _provider(softhsm)
    )
    [r] = _key_match(root)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "no_such_key")
    root = _root(tmp_path / "b", device, softhsm.rsa.uri, {})
    [r] = _key_match(root)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "library_not_configured")


def test_pin_in_the_uri_is_used_but_never_reported(
    tmp_path: Path,
    softhsm: SoftHsm,
) -> None:
    uri = f"{softhsm.rsa.uri}?pin-value={softhsm.user_pin}&module-path={softhsm.library}"
    root = _root(tmp_path, _token_device(softhsm.rsa.private_key()), uri, {"slot": softhsm.slot})
    [r] = _key_match(root)
    assert r.status is Status.OK, r
    assert "pin-value" not in r.details["key_uri"]
    assert f"pin-value={softhsm.user_pin}" not in repr(r.to_dict())
