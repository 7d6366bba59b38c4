"""certificate.readable: every reason of the catalogue, on real files."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from agent.greengrass.root import GreengrassRoot, load_root
from agent.report import Status
from agent.x509.files import MAX_PEM_BYTES
from tests.certificates.conftest import Run, one
from tests.pki import (
    Issued,
    ec_key,
    key_pem,
    make_context,
    make_greengrass_root,
    openssl,
    openssl_rewrite,
    write,
)

ID = "certificate.readable"


def _paths(root: GreengrassRoot) -> tuple[Path, Path, Path]:
    return (
        Path(root.path("certificateFilePath") or ""),
        Path(root.path("privateKeyPath") or ""),
        Path(root.path("rootCaPath") or ""),
    )


def test_healthy_root_is_readable(gg_root: GreengrassRoot, run: Run) -> None:
    cert, key, ca = _paths(gg_root)
    results = run(make_context(gg_root), ID)
    assert {r.status for r in results} == {Status.OK}
    assert one(results, cert).details == {"role": "device_cert", "certificates": 1}
    assert one(results, key).details == {"role": "private_key", "key_type": "RSA", "key_bits": 2048}
    assert one(results, ca).message == "readable: 1 certificate"


def test_missing_file_is_not_found(gg_root: GreengrassRoot, run: Run) -> None:
    cert, _, _ = _paths(gg_root)
    cert.unlink()
    r = one(run(make_context(gg_root), ID), cert)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "not_found")
    assert "system.certificateFilePath" in (r.remediation or "")


def test_parent_not_a_directory_is_not_found(
    tmp_path: Path, gg_root: GreengrassRoot, run: Run
) -> None:
    blocker = write(tmp_path / "plain", "x")
    ctx = make_context(gg_root, {"certificates": {"extraPaths": [str(blocker / "cert.pem")]}})
    r = one(run(ctx, ID), blocker / "cert.pem")
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "not_found")


def test_dangling_symlink_is_broken_symlink(gg_root: GreengrassRoot, run: Run) -> None:
    cert, _, _ = _paths(gg_root)
    cert.unlink()
    cert.symlink_to(cert.parent / "rotated" / "thingCert.crt")
    r = one(run(make_context(gg_root), ID), cert)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "broken_symlink")
    assert "rotated/thingCert.crt" in r.message


def test_symlink_loop_is_broken_symlink(gg_root: GreengrassRoot, run: Run) -> None:
    _, _, ca = _paths(gg_root)
    ca.unlink()
    loop = ca.parent / "loop.pem"
    loop.symlink_to(ca)
    ca.symlink_to(loop)
    r = one(run(make_context(gg_root), ID), ca)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "broken_symlink")


def test_symlink_to_valid_file_is_followed(gg_root: GreengrassRoot, run: Run) -> None:
    cert, _, _ = _paths(gg_root)
    real = cert.parent / "certs" / "current.crt"
    real.parent.mkdir()
    shutil.move(cert, real)
    cert.symlink_to(real)
    assert one(run(make_context(gg_root), ID), cert).status is Status.OK


def test_directory_is_not_a_file(gg_root: GreengrassRoot, run: Run) -> None:
    _, _, ca = _paths(gg_root)
    ca.unlink()
    ca.mkdir()
    r = one(run(make_context(gg_root), ID), ca)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "not_a_file")
    assert "directory" in r.message


def test_fifo_is_not_a_file_and_never_blocks(gg_root: GreengrassRoot, run: Run) -> None:
    cert, _, _ = _paths(gg_root)
    cert.unlink()
    os.mkfifo(cert)
    done: list[object] = []
    worker = threading.Thread(
        target=lambda: done.append(run(make_context(gg_root), ID)), daemon=True
    )
    worker.start()
    worker.join(10)
    assert done, "reading a FIFO blocked the check"
    r = one(done[0], cert)  # type: ignore[arg-type]
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "not_a_file")
    assert "FIFO" in r.message


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_huge_sparse_file_is_too_large_without_reading_it(
    gg_root: GreengrassRoot, run: Run
) -> None:
    cert, _, _ = _paths(gg_root)
    with open(cert, "r+b") as fh:  # a real PEM head, then a 10 GiB hole
        fh.truncate(10 * 1024**3)
    before = _rchar()
    r = one(run(make_context(gg_root), ID), cert)
    read = _rchar() - before
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "too_large")
    assert read < 256 * 1024, f"read {read} bytes of a 10 GiB file"


def test_file_just_over_the_cap_is_too_large_at_exact_cap_readable(
    gg_root: GreengrassRoot, run: Run, device: Issued
) -> None:
    cert, _, _ = _paths(gg_root)
    pem = device.pem()
    padding = b"#" * (MAX_PEM_BYTES - len(pem) - 1) + b"\n"
    cert.write_bytes(padding + pem)
    assert cert.stat().st_size == MAX_PEM_BYTES
    assert one(run(make_context(gg_root), ID), cert).status is Status.OK
    cert.write_bytes(b"#" + padding + pem)
    r = one(run(make_context(gg_root), ID), cert)
    assert r.details["reason"] == "too_large"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"this is not a certificate\n", "not PEM"),
        (b"\x30\x82\x01\x0a\x02\x82", "DER"),
    ],
)
def test_not_pem_is_bad_pem(
    gg_root: GreengrassRoot, run: Run, content: bytes, fragment: str
) -> None:
    cert, _, _ = _paths(gg_root)
    cert.write_bytes(content)
    r = one(run(make_context(gg_root), ID), cert)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "bad_pem")
    assert fragment in r.message


def test_corrupt_certificate_block_is_bad_pem(
    gg_root: GreengrassRoot, run: Run, device: Issued
) -> None:
    cert, _, _ = _paths(gg_root)
    lines = device.pem().splitlines(keepends=True)
    cert.write_bytes(b"".join(lines[:-3]))  # truncated: no END line
    assert one(run(make_context(gg_root), ID), cert).details["reason"] == "bad_pem"
    cert.write_bytes(device.pem().replace(b"MII", b"M!I", 1))  # invalid base64
    assert one(run(make_context(gg_root), ID), cert).details["reason"] == "bad_pem"


def test_der_file_from_openssl_is_bad_pem(
    tmp_path: Path, gg_root: GreengrassRoot, run: Run
) -> None:
    cert, _, _ = _paths(gg_root)
    openssl("x509", "-in", cert, "-outform", "DER", "-out", tmp_path / "cert.der")
    shutil.copy(tmp_path / "cert.der", cert)
    r = one(run(make_context(gg_root), ID), cert)
    assert r.details["reason"] == "bad_pem"
    assert "DER" in r.message and "openssl x509 -inform DER" in (r.remediation or "")


def test_key_where_certificate_expected_is_no_certificate_found(
    gg_root: GreengrassRoot, run: Run
) -> None:
    cert, key, _ = _paths(gg_root)
    shutil.copy(key, cert)
    r = one(run(make_context(gg_root), ID), cert)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "no_certificate_found")
    assert "BEGIN" not in r.message  # no key material or PEM echoed back


def test_certificate_where_key_expected_is_bad_pem(gg_root: GreengrassRoot, run: Run) -> None:
    cert, key, _ = _paths(gg_root)
    shutil.copy(cert, key)
    r = one(run(make_context(gg_root), ID), key)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "bad_pem")
    assert "no PRIVATE KEY" in r.message


def test_encrypted_pkcs8_key_is_encrypted_key(tmp_path: Path, device: Issued, run: Run) -> None:
    root = make_greengrass_root(
        tmp_path, device=device, key_pem_bytes=device.key_pem("pkcs8", password=b"s3cret")
    )
    _, key, _ = _paths(root)
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in key.read_bytes()
    r = one(run(make_context(root), ID), key)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "encrypted_key")
    assert "s3cret" not in repr(r.to_dict())


def test_legacy_openssl_encrypted_key_is_encrypted_key(gg_root: GreengrassRoot, run: Run) -> None:
    _, key, _ = _paths(gg_root)
    openssl_rewrite(key, "pkey", "-traditional", "-aes256", "-passout", "pass:pin1234")
    assert b"Proc-Type: 4,ENCRYPTED" in key.read_bytes()
    r = one(run(make_context(gg_root), ID), key)
    assert r.details["reason"] == "encrypted_key"


@pytest.mark.parametrize("algorithm", ["ED25519", "X25519"])
def test_non_rsa_ec_key_is_unsupported_key_type(
    gg_root: GreengrassRoot, run: Run, algorithm: str
) -> None:
    _, key, _ = _paths(gg_root)
    openssl("genpkey", "-algorithm", algorithm, "-out", key)
    r = one(run(make_context(gg_root), ID), key)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "unsupported_key_type")
    assert "RSA or EC" in r.message


def test_crlf_pem_files_parse(
    tmp_path: Path, device: Issued, shared_fixtures: Path, run: Run
) -> None:
    crlf = lambda b: b.replace(b"\n", b"\r\n")  # noqa: E731
    root = make_greengrass_root(
        tmp_path,
        device=device,
        device_pem=crlf(device.pem()),
        key_pem_bytes=crlf(device.key_pem("traditional")),
        root_ca_pem=crlf((shared_fixtures / "certs" / "AmazonRootCA1.pem").read_bytes()),
    )
    cert, _, _ = _paths(root)
    assert b"\r\n" in cert.read_bytes()
    results = run(make_context(root))
    assert {r.status for r in results} == {Status.OK}, [r for r in results if r.status != Status.OK]


def test_pkcs8_and_traditional_ec_keys_both_read(tmp_path: Path, run: Run) -> None:
    key = ec_key()
    for fmt, marker in (("pkcs8", b"BEGIN PRIVATE KEY"), ("traditional", b"BEGIN EC PRIVATE KEY")):
        pem = key_pem(key, fmt)
        assert marker in pem
        root = make_greengrass_root(tmp_path / fmt, key_pem_bytes=pem)
        _, path, _ = _paths(root)
        r = one(run(make_context(root), ID), path)
        assert (r.status, r.details["key_type"], r.details["key_bits"]) == (Status.OK, "EC", 256)


def test_unset_root_ca_is_not_configured_unless_env_names_it(
    tmp_path: Path, shared_fixtures: Path, run: Run
) -> None:
    # The nucleus integration-test config has no rootCaPath (and absolute paths that do not
    # exist on this machine).
    src = shared_fixtures / "effective-config" / "nucleus-integ-ipc.yaml"
    (tmp_path / "config").mkdir()
    shutil.copy(src, tmp_path / "config" / "effectiveConfig.yaml")
    root = load_root(tmp_path)
    results = run(make_context(root), ID)
    unset = one(results, "system.rootCaPath")
    assert (unset.status, unset.details["reason"]) == (Status.UNKNOWN, "not_configured")
    assert "rootCaPath" in (unset.remediation or "")
    device = one(results, "/greengrass/v2/device.pem.crt")
    assert (device.status, device.details["reason"]) == (Status.CRITICAL, "not_found")

    ca = write(
        tmp_path / "AmazonRootCA1.pem",
        (shared_fixtures / "certs" / "AmazonRootCA1.pem").read_bytes(),
    )
    results = run(make_context(root, env={"GG_ROOT_CA_PATH": str(ca)}), ID)
    assert not [r for r in results if r.target == "system.rootCaPath"]
    assert one(results, ca).status is Status.OK


def test_nucleus_lite_sample_config(tmp_path: Path, shared_fixtures: Path, run: Run) -> None:
    src = shared_fixtures / "effective-config" / "greengrass-lite-sample-nucleus-config.yaml"
    shutil.copy(src, tmp_path / "config.yaml")
    results = run(make_context(load_root(tmp_path)), ID)
    assert {r.target for r in results} == {
        "/var/lib/greengrass/device.pem",
        "/var/lib/greengrass/device.key",
        "/var/lib/greengrass/AmazonRootCA1.pem",
    }
    assert {r.details["reason"] for r in results} == {"not_found"}


def test_results_never_carry_key_material(gg_root: GreengrassRoot, run: Run) -> None:
    _, key, _ = _paths(gg_root)
    body = b"".join(key.read_bytes().splitlines()[1:-1])
    for r in run(make_context(gg_root)):
        text = repr(r.to_dict())
        assert body[:40].decode() not in text
