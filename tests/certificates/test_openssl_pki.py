"""A PKI minted by the openssl CLI (independent of the code under test), end to end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.checks.registry import checks_for
from agent.report import Status
from agent.runner import build_report
from tests.certificates.conftest import Run, one
from tests.pki import (
    make_context,
    make_greengrass_root,
    openssl,
    openssl_genkey,
    openssl_mint_ca,
    openssl_mint_device,
    openssl_rewrite,
    openssl_sign_device,
)

V3_CLIENT = (
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid"
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _root(tmp_path: Path, cert: Path, key: Path):  # type: ignore[no-untyped-def]
    return make_greengrass_root(
        tmp_path / "gg", device_pem=cert.read_bytes(), key_pem_bytes=key.read_bytes()
    )


@pytest.mark.parametrize(
    ("kind", "traditional"), [("rsa", False), ("rsa", True), ("ec", False), ("ec", True)]
)
def test_openssl_device_is_healthy(tmp_path: Path, run: Run, kind: str, traditional: bool) -> None:
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    cert, key = openssl_mint_device(
        tmp_path, ca_cert, ca_key, kind=kind, extensions=V3_CLIENT, traditional=traditional
    )
    marker = {("rsa", True): b"BEGIN RSA PRIVATE KEY", ("ec", True): b"BEGIN EC PRIVATE KEY"}.get(
        (kind, traditional), b"BEGIN PRIVATE KEY"
    )
    assert marker in key.read_bytes()
    root = _root(tmp_path, cert, key)
    results = run(make_context(root, {"certificates": {"caBundle": str(ca_cert)}}, now=_now()))
    assert {r.status for r in results} == {Status.OK}, [
        r for r in results if r.status is not Status.OK
    ]
    assert len({r.id for r in results}) == 6


def test_ecparam_key_with_parameters_block(tmp_path: Path, run: Run) -> None:
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    key = tmp_path / "ecparam.key"
    openssl("ecparam", "-genkey", "-name", "prime256v1", "-out", key)
    assert key.read_bytes().startswith(b"-----BEGIN EC PARAMETERS-----")
    cert = openssl_sign_device(tmp_path, key, ca_cert, ca_key, cn="pi-43", days=90)
    root = _root(tmp_path, cert, key)
    [match] = run(make_context(root, now=_now()), "certificate.key_match")
    assert match.status is Status.OK


def test_openssl_encrypted_pkcs8_key(tmp_path: Path, run: Run) -> None:
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    cert, key = openssl_mint_device(tmp_path, ca_cert, ca_key, kind="ec")
    openssl_rewrite(key, "pkey", "-aes256", "-passout", "pass:hunter2")
    root = _root(tmp_path, cert, key)
    r = one(
        run(make_context(root, now=_now()), "certificate.readable"),
        root.path("privateKeyPath") or "",
    )
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "encrypted_key")


def test_openssl_ca_device_and_server_only_eku(tmp_path: Path, run: Run) -> None:
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ca_like, ca_like_key = openssl_mint_device(
        tmp_path / "a", ca_cert, ca_key, extensions="basicConstraints=critical,CA:TRUE"
    )
    root = make_greengrass_root(
        tmp_path / "a" / "gg",
        device_pem=ca_like.read_bytes(),
        key_pem_bytes=ca_like_key.read_bytes(),
    )
    dev = one(
        run(make_context(root, now=_now()), "certificate.chain"),
        root.path("certificateFilePath") or "",
    )
    assert (dev.status, dev.details["reason"]) == (Status.CRITICAL, "device_cert_is_ca")

    server, server_key = openssl_mint_device(
        tmp_path / "b", ca_cert, ca_key, extensions="extendedKeyUsage=serverAuth"
    )
    root = make_greengrass_root(
        tmp_path / "b" / "gg", device_pem=server.read_bytes(), key_pem_bytes=server_key.read_bytes()
    )
    dev = one(
        run(make_context(root, now=_now()), "certificate.chain"),
        root.path("certificateFilePath") or "",
    )
    assert (dev.status, dev.details["reason"]) == (Status.WARNING, "eku_without_client_auth")


def test_openssl_small_rsa_key(tmp_path: Path, run: Run) -> None:
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    key = openssl_genkey(tmp_path / "small.key", "rsa", bits=1024)
    cert = openssl_sign_device(tmp_path, key, ca_cert, ca_key, cn="tiny", days=90)
    root = _root(tmp_path, cert, key)
    r = one(
        run(make_context(root, now=_now()), "certificate.key_quality"),
        root.path("certificateFilePath") or "",
    )
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "rsa_too_small")


def test_area_through_registry_and_runner(tmp_path: Path) -> None:
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    cert, key = openssl_mint_device(tmp_path, ca_cert, ca_key, extensions=V3_CLIENT, days=20)
    root = _root(tmp_path, cert, key)
    report = build_report(checks_for(["certificate"]), make_context(root, now=_now()))
    assert [c.id for c in checks_for(["certificate"])] == [
        "certificate.readable",
        "certificate.validity",
        "certificate.key_quality",
        "certificate.key_match",
        "certificate.chain",
        "certificate.permissions",
    ]
    assert not [r for r in report.checks if r.details.get("reason") == "internal_error"]
    assert report.status is Status.WARNING  # the 20-day certificate, nothing else
    worst = report.checks[0]
    assert (worst.id, worst.target) == ("certificate.validity", root.path("certificateFilePath"))
    assert all(r.remediation for r in report.checks if r.status is not Status.OK)
