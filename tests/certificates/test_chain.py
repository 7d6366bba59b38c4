"""certificate.chain: the root CA bundle, Amazon roots, BYO-CA path validation, leaf shape."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import warnings
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.greengrass.root import GreengrassRoot
from agent.report import CheckResult, Status
from agent.x509.trust import AMAZON_TRUST_SERVICES_ROOTS, is_aws_endpoint
from tests.certificates.conftest import Run, one
from tests.pki import (
    CLIENT_AUTH,
    DAY,
    NOW,
    SERVER_AUTH,
    Issued,
    cert_pem,
    make_ca,
    make_context,
    make_device_cert,
    make_greengrass_root,
    openssl,
    openssl_bin,
    openssl_mint_ca,
    openssl_mint_device,
    write,
)

ID = "certificate.chain"
MOZILLA = Path("/usr/share/ca-certificates/mozilla")
ATS_FILES = {
    "Amazon Root CA 1": "Amazon_Root_CA_1.crt",
    "Amazon Root CA 2": "Amazon_Root_CA_2.crt",
    "Amazon Root CA 3": "Amazon_Root_CA_3.crt",
    "Amazon Root CA 4": "Amazon_Root_CA_4.crt",
    "Starfield Services Root Certificate Authority - G2": (
        "Starfield_Services_Root_Certificate_Authority_-_G2.crt"
    ),
}


def _chain(
    run: Run, root: GreengrassRoot, config: dict | None = None, **kw
) -> tuple[CheckResult, CheckResult]:  # type: ignore[type-arg,no-untyped-def]
    results = run(make_context(root, config, **kw), ID)
    return one(results, root.path("rootCaPath") or ""), one(
        results, root.path("certificateFilePath") or ""
    )


# ------------------------------------------------------------------------------ root CA bundle


def test_real_amazon_root_on_aws_endpoint_is_ok(gg_root: GreengrassRoot, run: Run) -> None:
    ca, device = _chain(run, gg_root)
    assert ca.status is Status.OK
    assert ca.details["amazon_roots"] == ["Amazon Root CA 1"]
    assert ca.details["aws_endpoint"] is True
    assert device.status is Status.OK


def test_amazon_root_ca3_alone_is_ok(
    tmp_path: Path, shared_fixtures: Path, device: Issued, run: Run
) -> None:
    root = make_greengrass_root(
        tmp_path,
        device=device,
        root_ca_pem=(shared_fixtures / "certs" / "AmazonRootCA3.pem").read_bytes(),
    )
    ca, _ = _chain(run, root)
    assert (ca.status, ca.details["amazon_roots"]) == (Status.OK, ["Amazon Root CA 3"])


def test_self_made_root_on_aws_endpoint_is_critical(
    tmp_path: Path, device: Issued, run: Run
) -> None:
    root = make_greengrass_root(tmp_path, device=device, root_ca_pem=make_ca("My Own Root").pem())
    ca, _ = _chain(run, root)
    assert (ca.status, ca.details["reason"]) == (Status.CRITICAL, "no_amazon_root")
    assert "amazontrust.com" in (ca.remediation or "")
    assert "a1b2c3d4e5f6g7-ats.iot.us-west-2.amazonaws.com" in ca.message


def test_self_made_root_on_custom_broker_is_ok(tmp_path: Path, device: Issued, run: Run) -> None:
    root = make_greengrass_root(tmp_path, device=device, root_ca_pem=make_ca("Broker Root").pem())
    ca, _ = _chain(run, root, {"mqtt": {"endpoint": "mosquitto.plant.local:8883"}})
    assert ca.status is Status.OK
    assert ca.details["aws_endpoint"] is False
    assert "not AWS IoT" in ca.message


@pytest.mark.parametrize(
    "endpoint", ["<CONFIGURE_THIS>", None, "abc-ats.iot.cn-north-1.amazonaws.com.cn"]
)
def test_placeholder_unset_and_china_endpoints_need_amazon_root(
    tmp_path: Path, device: Issued, run: Run, endpoint: str | None
) -> None:
    root = make_greengrass_root(
        tmp_path, device=device, root_ca_pem=make_ca("Lab Root").pem(), endpoint=endpoint
    )
    ca, _ = _chain(run, root)
    assert (ca.status, ca.details["reason"]) == (Status.CRITICAL, "no_amazon_root")


@pytest.mark.parametrize(
    ("endpoint", "aws"),
    [
        (None, True),
        ("", True),
        ("<CONFIGURE_THIS>", True),
        ("a1-ats.iot.us-east-1.amazonaws.com", True),
        ("A1-ATS.IOT.US-EAST-1.AMAZONAWS.COM.", True),
        ("ssl://a1-ats.iot.eu-west-1.amazonaws.com:8883", True),
        ("a1.iot.cn-north-1.amazonaws.com.cn", True),
        ("vpce-0a.data.iot.us-east-1.vpce.amazonaws.com", True),
        ("localhost", False),
        ("127.0.0.1:8883", False),
        ("[::1]:8883", False),
        ("evil-amazonaws.com", False),
        ("iot.example.com", False),
    ],
)
def test_is_aws_endpoint(endpoint: str | None, aws: bool) -> None:
    assert is_aws_endpoint(endpoint) is aws


def test_leaf_in_root_ca_file_is_critical(
    tmp_path: Path, shared_fixtures: Path, device: Issued, run: Run
) -> None:
    amazon = (shared_fixtures / "certs" / "AmazonRootCA1.pem").read_bytes()
    root = make_greengrass_root(tmp_path, device=device, root_ca_pem=amazon + device.pem())
    ca, _ = _chain(run, root)
    assert (ca.status, ca.details["reasons"]) == (Status.CRITICAL, ["not_a_ca"])
    assert "#1 'CN=AWS IoT Certificate'" in ca.message
    assert ca.details["amazon_roots"] == ["Amazon Root CA 1"]


def test_amazon_root_table_matches_mozilla_store_per_openssl() -> None:
    """The hard-coded SPKI hashes, recomputed with the openssl CLI from the Debian files."""
    if not MOZILLA.is_dir():
        pytest.skip("Debian ca-certificates not installed")
    openssl_bin()
    for label, filename in ATS_FILES.items():
        pub = openssl("x509", "-in", MOZILLA / filename, "-noout", "-pubkey")
        der = subprocess.run(
            [openssl_bin(), "pkey", "-pubin", "-outform", "DER"],
            input=pub.encode(),
            capture_output=True,
            check=True,
        ).stdout
        assert AMAZON_TRUST_SERVICES_ROOTS[hashlib.sha256(der).digest()] == label


def test_starfield_g2_counts_and_its_zero_serial_stays_quiet(
    tmp_path: Path, device: Issued, run: Run
) -> None:
    if not MOZILLA.is_dir():
        pytest.skip("Debian ca-certificates not installed")
    pem = (MOZILLA / ATS_FILES["Starfield Services Root Certificate Authority - G2"]).read_bytes()
    root = make_greengrass_root(tmp_path, device=device, root_ca_pem=pem)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ca, _ = _chain(run, root)
    assert ca.status is Status.OK
    assert ca.details["amazon_roots"] == ["Starfield Services Root Certificate Authority - G2"]
    assert not caught


# ----------------------------------------------------------------------------- device leaf


def test_ca_device_certificate_is_critical(tmp_path: Path, device_ca: Issued, run: Run) -> None:
    root = make_greengrass_root(tmp_path, device=make_device_cert(device_ca, is_ca=True))
    _, dev = _chain(run, root)
    assert (dev.status, dev.details["reason"]) == (Status.CRITICAL, "device_cert_is_ca")


@pytest.mark.parametrize(
    ("eku", "status"),
    [
        ([SERVER_AUTH], Status.WARNING),
        ([CLIENT_AUTH], Status.OK),
        ([SERVER_AUTH, CLIENT_AUTH], Status.OK),
        ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], Status.OK),
        (None, Status.OK),
    ],
)
def test_eku(tmp_path: Path, device_ca: Issued, run: Run, eku: list | None, status: Status) -> None:  # type: ignore[type-arg]
    root = make_greengrass_root(tmp_path, device=make_device_cert(device_ca, eku=eku))
    _, dev = _chain(run, root)
    assert dev.status is status
    if status is Status.WARNING:
        assert dev.details["reason"] == "eku_without_client_auth"
        assert dev.details["extended_key_usage"] == ["1.3.6.1.5.5.7.3.1"]


# ---------------------------------------------------------------------------------- BYO CA


def test_byo_ca_verifies(tmp_path: Path, device_ca: Issued, device: Issued, run: Run) -> None:
    bundle = write(tmp_path / "byo" / "ca.pem", device_ca.pem())
    root = make_greengrass_root(tmp_path, device=device)
    _, dev = _chain(run, root, {"certificates": {"caBundle": str(bundle)}})
    assert dev.status is Status.OK
    assert "verifies against caBundle" in dev.message
    assert dev.details["ca_bundle"] == str(bundle)


def test_byo_ca_with_intermediate_in_device_file(tmp_path: Path, run: Run) -> None:
    root_ca = make_ca("BYO Root")
    issuing = make_ca("BYO Issuing CA", issuer=root_ca)
    leaf = make_device_cert(issuing, "pi-42", eku=[CLIENT_AUTH])
    bundle = write(tmp_path / "byo.pem", root_ca.pem())
    config = {"certificates": {"caBundle": str(bundle)}}
    with_chain = make_greengrass_root(
        tmp_path / "a", device=leaf, device_pem=cert_pem(leaf.cert, issuing.cert)
    )
    _, dev = _chain(run, with_chain, config)
    assert dev.status is Status.OK
    assert "BYO Issuing CA" in dev.message and "BYO Root" in dev.message
    leaf_only = make_greengrass_root(tmp_path / "b", device=leaf)
    _, dev = _chain(run, leaf_only, config)
    assert (dev.status, dev.details["reason"]) == (Status.CRITICAL, "ca_bundle_verify_failed")
    assert "append any intermediate" in (dev.remediation or "")


def test_byo_ca_from_other_ca_fails_with_verifier_reason(
    tmp_path: Path, device: Issued, run: Run
) -> None:
    bundle = write(tmp_path / "other.pem", make_ca("Unrelated CA").pem())
    root = make_greengrass_root(tmp_path, device=device)
    _, dev = _chain(run, root, {"certificates": {"caBundle": str(bundle)}})
    assert (dev.status, dev.details["reason"]) == (Status.CRITICAL, "ca_bundle_verify_failed")
    assert "validation failed" in dev.message


def test_byo_ca_verification_uses_the_context_clock(
    tmp_path: Path, device_ca: Issued, run: Run
) -> None:
    leaf = make_device_cert(device_ca, not_after=NOW + 10 * DAY)
    bundle = write(tmp_path / "ca.pem", device_ca.pem())
    root = make_greengrass_root(tmp_path, device=leaf)
    config = {"certificates": {"caBundle": str(bundle)}}
    assert _chain(run, root, config)[1].status is Status.OK
    late = _chain(run, root, config, now=NOW + 20 * DAY)[1]
    assert (late.status, late.details["reason"]) == (Status.CRITICAL, "ca_bundle_verify_failed")


def test_eku_server_only_with_byo_ca_is_only_a_warning(
    tmp_path: Path, device_ca: Issued, run: Run
) -> None:
    bundle = write(tmp_path / "ca.pem", device_ca.pem())
    root = make_greengrass_root(tmp_path, device=make_device_cert(device_ca, eku=[SERVER_AUTH]))
    _, dev = _chain(run, root, {"certificates": {"caBundle": str(bundle)}})
    assert (dev.status, dev.details["reasons"]) == (Status.WARNING, ["eku_without_client_auth"])


def test_unreadable_ca_bundle_is_unknown(tmp_path: Path, device: Issued, run: Run) -> None:
    root = make_greengrass_root(tmp_path, device=device)
    missing = tmp_path / "nope.pem"
    results = run(make_context(root, {"certificates": {"caBundle": str(missing)}}))
    dev = one([r for r in results if r.id == ID], root.path("certificateFilePath") or "")
    assert (dev.status, dev.details["reason"]) == (Status.UNKNOWN, "ca_bundle_unreadable")
    readable = one([r for r in results if r.id == "certificate.readable"], missing)
    assert (readable.status, readable.details["reason"]) == (Status.CRITICAL, "not_found")
    assert "certificates.caBundle" in (readable.remediation or "")


def test_openssl_byo_ca_as_in_the_aws_guide(tmp_path: Path, run: Run) -> None:
    """A CA made with `openssl req -x509` (no keyUsage) and a v3 client certificate."""
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    cert, key = openssl_mint_device(
        tmp_path,
        ca_cert,
        ca_key,
        extensions="basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid",
    )
    root = make_greengrass_root(
        tmp_path / "gg", device_pem=cert.read_bytes(), key_pem_bytes=key.read_bytes()
    )
    results = run(make_context(root, {"certificates": {"caBundle": str(ca_cert)}}, now=_real_now()))
    assert {r.status for r in results} == {Status.OK}, [
        r for r in results if r.status is not Status.OK
    ]


def test_openssl_v1_device_cert_is_a_warning_when_signed_by_bundle(
    tmp_path: Path, run: Run
) -> None:
    """`openssl x509 -req` without extensions mints an X.509 v1 certificate."""
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    cert, key = openssl_mint_device(tmp_path, ca_cert, ca_key)
    assert "Version: 1" in openssl("x509", "-in", cert, "-noout", "-text")
    root = make_greengrass_root(
        tmp_path / "gg", device_pem=cert.read_bytes(), key_pem_bytes=key.read_bytes()
    )
    _, dev = _chain(run, root, {"certificates": {"caBundle": str(ca_cert)}}, now=_real_now())
    assert (dev.status, dev.details["reason"]) == (Status.WARNING, "v1_certificate")
    (tmp_path / "other").mkdir()
    other_ca, _ = openssl_mint_ca(tmp_path / "other", "Other CA")
    _, dev = _chain(run, root, {"certificates": {"caBundle": str(other_ca)}}, now=_real_now())
    assert (dev.status, dev.details["reason"]) == (Status.CRITICAL, "ca_bundle_verify_failed")


def _real_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def test_unreadable_files_give_no_false_chain_verdicts(
    tmp_path: Path, device: Issued, run: Run
) -> None:
    root = make_greengrass_root(tmp_path, device=device)
    Path(root.path("certificateFilePath") or "").write_text("not a certificate")
    Path(root.path("rootCaPath") or "").unlink()
    [dev] = run(make_context(root), ID)
    assert dev.target == root.path("certificateFilePath")
    assert (dev.status, dev.details["reason"]) == (Status.UNKNOWN, "certificate_unreadable")
