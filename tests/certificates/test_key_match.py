"""certificate.key_match: the private key belongs to the device certificate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.report import Status
from tests.certificates.conftest import Run
from tests.pki import (
    Issued,
    ec_key,
    key_pem,
    make_context,
    make_device_cert,
    make_greengrass_root,
    openssl_bin,
    rsa_key,
)

ID = "certificate.key_match"


@pytest.mark.parametrize("fmt", ["pkcs8", "traditional"])
@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_matching_key_is_ok(
    tmp_path: Path, device_ca: Issued, run: Run, fmt: str, kind: str
) -> None:
    device = make_device_cert(device_ca, key=rsa_key() if kind == "rsa" else ec_key())
    root = make_greengrass_root(tmp_path, device=device, key_pem_bytes=device.key_pem(fmt))
    [r] = run(make_context(root), ID)
    assert r.status is Status.OK
    assert r.target == root.path("certificateFilePath")
    assert r.details["certificate_spki_sha256"] == r.details["key_spki_sha256"]


def test_wrong_key_is_critical_and_agrees_with_openssl(
    tmp_path: Path, device: Issued, run: Run
) -> None:
    root = make_greengrass_root(
        tmp_path, device=device, key_pem_bytes=key_pem(rsa_key(), "traditional")
    )
    [r] = run(make_context(root), ID)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "mismatch")
    assert "privateKeyPath" in (r.remediation or "")
    # independent oracle: openssl's view of both public keys differs too
    openssl = openssl_bin()
    cert_pub = subprocess.run(
        [openssl, "x509", "-noout", "-pubkey", "-in", root.path("certificateFilePath") or ""],
        capture_output=True,
        check=True,
    ).stdout
    key_pub = subprocess.run(
        [openssl, "pkey", "-pubout", "-in", root.path("privateKeyPath") or ""],
        capture_output=True,
        check=True,
    ).stdout
    assert cert_pub != key_pub


def test_key_of_other_algorithm_is_critical(tmp_path: Path, device: Issued, run: Run) -> None:
    root = make_greengrass_root(tmp_path, device=device, key_pem_bytes=key_pem(ec_key()))
    [r] = run(make_context(root), ID)
    assert r.status is Status.CRITICAL
    assert "EC 256-bit" in r.message and "RSA 2048-bit" in r.message


def test_unreadable_key_or_cert_is_unknown(tmp_path: Path, device: Issued, run: Run) -> None:
    root = make_greengrass_root(tmp_path, device=device)
    Path(root.path("privateKeyPath") or "").unlink()
    [r] = run(make_context(root), ID)
    assert (r.status, r.details["reason"]) == (Status.UNKNOWN, "key_unreadable")
    Path(root.path("certificateFilePath") or "").write_text("garbage")
    [r] = run(make_context(root), ID)
    assert (r.status, r.details["reason"]) == (Status.UNKNOWN, "certificate_unreadable")


def test_unconfigured_key(tmp_path: Path, device: Issued, run: Run) -> None:
    root = make_greengrass_root(tmp_path, device=device, omit=["privateKeyPath"])
    results = run(make_context(root))
    [match] = [r for r in results if r.id == ID]
    assert match.details["reason"] == "key_unreadable"
    unset = [r for r in results if r.target == "system.privateKeyPath"]
    assert [(r.id, r.status, r.details["reason"]) for r in unset] == [
        ("certificate.readable", Status.UNKNOWN, "not_configured")
    ]
