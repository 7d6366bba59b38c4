"""PKCS#11 URIs (RFC 7512), token settings, and reading a token key's public key from SoftHSM2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from agent.config import build_config
from agent.pkcs11 import Pkcs11Error, parse_uri, token_key, token_public_key
from tests.peers.softhsm import TOKEN_LABEL, SoftHsm
from tests.pki import make_greengrass_root

PROVIDER = "aws.greengrass.crypto.Pkcs11Provider"


# ------------------------------------------------------------------------------------ URIs


def test_parses_the_greengrass_example_uri() -> None:
    uri = parse_uri("pkcs11:object=iotdevicekey;type=private")
    assert uri.object == "iotdevicekey"
    assert uri.attributes["type"] == "private"
    assert uri.token is None and uri.id is None and uri.pin is None


def test_percent_decoding_id_slot_and_query_attributes() -> None:
    uri = parse_uri(
        "pkcs11:token=My%20Token;object=k%3B1;id=%01%ff;slot-id=7"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=s3cr3t"
    )
    assert uri.token == "My Token"
    assert uri.object == "k;1"
    assert uri.id == b"\x01\xff"
    assert uri.slot_id == 7
    assert uri.module_path == "/usr/lib/softhsm/libsofthsm2.so"
    assert uri.pin == "s3cr3t"
    assert "s3cr3t" not in repr(uri)
    redacted = uri.redacted()
    assert "s3cr3t" not in redacted and "pin" not in redacted
    assert parse_uri(redacted).token == "My Token"  # the redacted form is a valid URI again
    assert parse_uri(redacted).id == b"\x01\xff"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("file:/etc/key.pem", "must start with 'pkcs11:'"),
        ("pkcs11:object", "expected name=value"),
        ("pkcs11:object=a;object=b", "appears twice"),
        ("pkcs11:objcet=a", "unknown attribute 'objcet'"),
        ("pkcs11:type=secret", "type='secret'"),
        ("pkcs11:slot-id=abc", "slot-id must be a decimal"),
    ],
)
def test_bad_uris_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(Pkcs11Error) as caught:
        parse_uri(text)
    assert caught.value.reason == "bad_uri"
    assert fragment in str(caught.value)


def test_vendor_attributes_are_accepted() -> None:
    assert parse_uri("pkcs11:object=a;x-vendor=1").attributes["x-vendor"] == "1"


def test_token_settings_precedence(tmp_path: Path) -> None:
    services = {PROVIDER: {"configuration": {"library": "/p.so", "slot": "3", "userPin": 1234}}}
    root = make_greengrass_root(tmp_path)
    doc_root = type(root)(
        root.root, root.config_path, root.lite, {**root.raw, "services": services}
    )
    uri = "pkcs11:object=k;slot-id=9?module-path=/uri.so&pin-value=0000"
    from_provider = token_key(uri, build_config({}), doc_root)
    assert (from_provider.library, from_provider.slot_id, from_provider.user_pin) == (
        "/p.so",
        3,
        "1234",
    )
    own = build_config({"pkcs11": {"library": "/own.so", "slot": 0, "userPin": "42"}})
    mine = token_key(uri, own, doc_root)
    assert (mine.library, mine.slot_id, mine.user_pin) == ("/own.so", 0, "42")
    assert "42" not in repr(mine) and "42" not in repr(own)
    only_uri = token_key(uri, build_config({}), root)
    assert (only_uri.library, only_uri.slot_id, only_uri.user_pin) == ("/uri.so", 9, "0000")
    with pytest.raises(Pkcs11Error, match="no PKCS#11 library") as caught:
        token_key("pkcs11:object=k", build_config({}), root)
    assert caught.value.reason == "library_not_configured"


# ----------------------------------------------------------------------------- the token


def _public_of(pem: Path) -> object:
    return load_pem_private_key(pem.read_bytes(), None).public_key()


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_token_public_key_matches_the_imported_key(softhsm: SoftHsm, kind: str) -> None:
    obj = softhsm.rsa if kind == "rsa" else softhsm.ec
    key = token_public_key(obj.uri, softhsm.library, softhsm.user_pin)
    assert isinstance(key, rsa.RSAPublicKey if kind == "rsa" else ec.EllipticCurvePublicKey)
    assert key == _public_of(obj.key_pem)
    # ...and is told apart from the other key (a certificate issued for another key).
    other = softhsm.ec if kind == "rsa" else softhsm.rsa
    assert key != _public_of(other.key_pem)


def test_key_found_by_id_without_a_label(softhsm: SoftHsm) -> None:
    key = token_public_key(f"pkcs11:token={TOKEN_LABEL};id=%02", softhsm.library, softhsm.user_pin)
    assert key == _public_of(softhsm.ec.key_pem)


def test_rsa_key_without_a_public_object_uses_the_private_keys_modulus(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    pem = tmp_path / "solo.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        stdout=pem.open("wb"),
        check=True,
    )
    subprocess.run(
        [
            "softhsm2-util",
            *("--import", str(pem), "--token", TOKEN_LABEL, "--label", "solo", "--id", "0a"),
            *("--pin", softhsm.user_pin),
        ],
        capture_output=True,
        check=True,
        env={**os.environ, **softhsm.env},
    )
    import pkcs11

    token = pkcs11.lib(softhsm.library).get_token(token_label=TOKEN_LABEL)
    with token.open(user_pin=softhsm.user_pin, rw=True) as session:
        (public,) = session.get_objects(
            {pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PUBLIC_KEY, pkcs11.Attribute.LABEL: "solo"}
        )
        public.destroy()
    uri = f"pkcs11:token={TOKEN_LABEL};object=solo"
    assert token_public_key(uri, softhsm.library, softhsm.user_pin) == _public_of(pem)


def test_bad_pin_is_a_clear_error_without_the_pin(softhsm: SoftHsm) -> None:
    with pytest.raises(Pkcs11Error) as caught:
        token_public_key(softhsm.rsa.uri, softhsm.library, "97531")
    assert caught.value.reason == "bad_pin"
    assert "97531" not in str(caught.value)
    assert TOKEN_LABEL in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("pkcs11:token=no-such-token;object=device-rsa", "no_such_token"),
        (f"pkcs11:token={TOKEN_LABEL};object=no-such-key", "no_such_key"),
        (f"pkcs11:token={TOKEN_LABEL};type=private", "ambiguous_key"),
    ],
)
def test_unknown_labels_are_clear_errors(softhsm: SoftHsm, uri: str, reason: str) -> None:
    with pytest.raises(Pkcs11Error) as caught:
        token_public_key(uri, softhsm.library, softhsm.user_pin)
    assert caught.value.reason == reason
    assert softhsm.user_pin not in str(caught.value)


def test_missing_library_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Pkcs11Error) as caught:
        token_public_key("pkcs11:object=k", str(tmp_path / "libnothing.so"), "1234")
    assert caught.value.reason == "library_missing"
    assert "libnothing.so" in str(caught.value)


def test_device_public_key_uses_the_provider_configuration(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    from agent.pkcs11 import device_public_key

    root = make_greengrass_root(tmp_path)
    provider = {"library": softhsm.library, "slot": softhsm.slot, "userPin": softhsm.user_pin}
    with_provider = type(root)(
        root.root,
        root.config_path,
        root.lite,
        {**root.raw, "services": {PROVIDER: {"configuration": provider}}},
    )
    key = device_public_key(softhsm.ec.greengrass_uri, build_config({}), with_provider)
    assert key == _public_of(softhsm.ec.key_pem)
    wrong = build_config({"pkcs11": {"userPin": "24680"}})
    with pytest.raises(Pkcs11Error) as caught:
        device_public_key(softhsm.ec.greengrass_uri, wrong, with_provider)
    assert caught.value.reason == "bad_pin" and "24680" not in str(caught.value)
