"""certificate.key_quality: key sizes, curves, exponents, weak signatures and ROCA."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519

from agent.greengrass.root import GreengrassRoot
from agent.report import CheckResult, Status
from agent.x509.roca import FALSE_POSITIVE_RATE, is_roca_modulus
from tests.certificates.conftest import Run, one
from tests.pki import (
    SMALL_PRIMES,
    Issued,
    cert_pem,
    ec_key,
    is_probable_prime,
    make_ca,
    make_context,
    make_device_cert,
    make_greengrass_root,
    make_roca_key,
    openssl,
    openssl_genkey,
    roca_prime,
    rsa_key,
    write,
)

ID = "certificate.key_quality"
MOZILLA = Path("/usr/share/ca-certificates/mozilla")


def _quality(tmp_path: Path, run: Run, device: Issued) -> CheckResult:
    root = make_greengrass_root(tmp_path, device=device)
    return one(run(make_context(root), ID), root.path("certificateFilePath") or "")


def test_rsa_2048_sha256_is_ok(tmp_path: Path, device: Issued, run: Run) -> None:
    r = _quality(tmp_path, run, device)
    assert (r.status, r.message) == (Status.OK, "RSA 2048-bit key, sha256 signature")
    assert r.details == {"key_type": "RSA", "key_bits": 2048, "signature_hash": "sha256"}


@pytest.mark.parametrize(
    ("curve", "label"),
    [(ec.SECP256R1(), "P-256"), (ec.SECP384R1(), "P-384"), (ec.SECP521R1(), "P-521")],
)
def test_nist_curves_are_ok(
    tmp_path: Path, device_ca: Issued, run: Run, curve: ec.EllipticCurve, label: str
) -> None:
    r = _quality(tmp_path, run, make_device_cert(device_ca, key=ec_key(curve)))
    assert r.status is Status.OK
    assert r.message.startswith(f"EC {label} key")


def test_small_rsa_is_critical(tmp_path: Path, device_ca: Issued, run: Run) -> None:
    r = _quality(tmp_path, run, make_device_cert(device_ca, key=rsa_key(1024)))
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "rsa_too_small")
    assert "1024" in r.message and r.remediation


@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.BrainpoolP256R1(), ec.SECP224R1()])
def test_other_curves_are_critical(
    tmp_path: Path, device_ca: Issued, run: Run, curve: ec.EllipticCurve
) -> None:
    r = _quality(tmp_path, run, make_device_cert(device_ca, key=ec_key(curve)))
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "weak_curve")
    assert curve.name in r.message


def test_exponent_three_is_warning(tmp_path: Path, device_ca: Issued, run: Run) -> None:
    r = _quality(tmp_path, run, make_device_cert(device_ca, key=rsa_key(2048, exponent=3)))
    assert (r.status, r.details["reason"]) == (Status.WARNING, "rsa_exponent")
    assert "exponent is 3" in r.message


def test_several_findings_combine_worst_first(tmp_path: Path, device_ca: Issued, run: Run) -> None:
    r = _quality(tmp_path, run, make_device_cert(device_ca, key=rsa_key(1024, exponent=3)))
    assert r.status is Status.CRITICAL
    assert r.details["reasons"] == ["rsa_too_small", "rsa_exponent"]
    assert r.details["reason"] == "rsa_too_small"


def test_ed25519_is_ok_and_dsa_is_warning(tmp_path: Path, device_ca: Issued, run: Run) -> None:
    r = _quality(
        tmp_path / "ed", run, make_device_cert(device_ca, key=ed25519.Ed25519PrivateKey.generate())
    )
    assert (r.status, r.details["key_type"]) == (Status.OK, "Ed25519")
    r = _quality(
        tmp_path / "dsa", run, make_device_cert(device_ca, key=dsa.generate_private_key(2048))
    )
    assert (r.status, r.details["reason"]) == (Status.WARNING, "dsa_key")


@pytest.mark.parametrize("digest", ["sha1", "md5"])
def test_weak_signature_on_issued_cert_is_critical_but_not_on_a_root(
    tmp_path: Path, gg_root: GreengrassRoot, run: Run, digest: str
) -> None:
    # cryptography refuses to sign with SHA-1/MD5; openssl still does.
    ca_key = openssl_genkey(tmp_path / "ca.key", "rsa")
    ca = tmp_path / "ca.pem"
    openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        ca_key,
        f"-{digest}",
        "-days",
        "30",
        "-subj",
        "/CN=Weak Root",
        "-out",
        ca,
    )
    leaf_key = openssl_genkey(tmp_path / "leaf.key", "ec")
    openssl(
        "req", "-new", "-key", leaf_key, "-subj", "/CN=weak-leaf", "-out", tmp_path / "leaf.csr"
    )
    leaf = tmp_path / "leaf.pem"
    openssl(
        "x509",
        "-req",
        "-in",
        tmp_path / "leaf.csr",
        "-CA",
        ca,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        f"-{digest}",
        "-days",
        "30",
        "-out",
        leaf,
    )
    ctx = make_context(gg_root, {"certificates": {"extraPaths": [str(ca), str(leaf)]}})
    results = run(ctx, ID)
    bad = one(results, leaf)
    assert (bad.status, bad.details["reason"], bad.details["signature_hash"]) == (
        Status.CRITICAL,
        "weak_signature",
        digest,
    )
    assert digest.upper() in bad.message
    root = one(results, ca)
    assert (root.status, root.details["signature_hash"]) == (Status.OK, digest)


# ------------------------------------------------------------------------------------------ ROCA


@pytest.fixture(scope="module")
def roca_key():  # type: ignore[no-untyped-def]
    return make_roca_key(2048)


def test_constructed_roca_primes_have_the_infineon_structure() -> None:
    rng = random.Random(7)
    p = roca_prime(512, rng)
    assert p.bit_length() == 512 and is_probable_prime(p, rng)
    for r in SMALL_PRIMES[1:]:
        powers = {pow(65537, i, r) for i in range(r)}
        assert p % r in powers, r
    assert is_roca_modulus(p)


def test_roca_modulus_is_fingerprinted(roca_key) -> None:  # type: ignore[no-untyped-def]
    n = roca_key.public_key().public_numbers().n
    assert n.bit_length() == 2048
    assert is_roca_modulus(n)
    assert not is_roca_modulus(n + 2)


def test_roca_device_certificate_is_critical(
    tmp_path: Path, device_ca: Issued, run: Run, roca_key
) -> None:  # type: ignore[no-untyped-def]
    device = make_device_cert(device_ca, key=roca_key)
    r = _quality(tmp_path, run, device)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "roca_vulnerable")
    assert "CVE-2017-15361" in r.message
    # and the private key still matches: the key is real, merely weak
    root_results = run(
        make_context(make_greengrass_root(tmp_path / "again", device=device)),
        "certificate.key_match",
    )
    assert root_results[0].status is Status.OK


def test_no_false_positives_on_random_rsa_keys() -> None:
    keys = [rsa_key(1024) for _ in range(40)] + [rsa_key(2048) for _ in range(10)]
    assert not [k for k in keys if is_roca_modulus(k.public_key().public_numbers().n)]
    assert FALSE_POSITIVE_RATE < 1e-8


def test_no_false_positives_on_the_mozilla_root_store(
    tmp_path: Path, gg_root: GreengrassRoot, run: Run
) -> None:
    if not MOZILLA.is_dir():
        pytest.skip("Debian ca-certificates not installed")
    ctx = make_context(gg_root, {"certificates": {"extraPaths": [str(MOZILLA)]}})
    results = [r for r in run(ctx, ID) if r.target.startswith(str(MOZILLA))]
    assert len(results) > 100
    assert not [r for r in results if "roca_vulnerable" in r.details.get("reasons", [])]
    rsa = [r for r in results if r.details["key_type"] == "RSA"]
    assert len(rsa) > 50


def test_bundle_with_one_weak_cert_flags_that_index(
    tmp_path: Path, gg_root: GreengrassRoot, run: Run
) -> None:
    good = make_ca("Good CA").cert
    weak = make_ca("Weak CA", key=rsa_key(1024)).cert
    bundle = write(tmp_path / "b.pem", cert_pem(good, weak))
    results = [
        r
        for r in run(make_context(gg_root, {"certificates": {"extraPaths": [str(bundle)]}}), ID)
        if r.target == str(bundle)
    ]
    by_index = {r.details["index"]: r for r in results}
    assert by_index[0].status is Status.OK
    assert (by_index[1].status, by_index[1].details["subject"]) == (
        Status.CRITICAL,
        "O=Test PKI,CN=Weak CA",
    )


def test_real_amazon_roots_are_ok(tmp_path: Path, shared_fixtures: Path, run: Run) -> None:
    bundle = (shared_fixtures / "certs" / "AmazonRootCA1.pem").read_bytes() + (
        shared_fixtures / "certs" / "AmazonRootCA3.pem"
    ).read_bytes()
    root = make_greengrass_root(tmp_path, root_ca_pem=bundle)
    results = [r for r in run(make_context(root), ID) if r.target == root.path("rootCaPath")]
    assert [(r.status, r.details["key_type"]) for r in results] == [
        (Status.OK, "RSA"),
        (Status.OK, "EC"),
    ]
