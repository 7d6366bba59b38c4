"""The raw-DER shortcuts give exactly what the ``cryptography`` objects give, for every shape of
certificate and PEM file, and fall back to the full PEM parser for anything unusual."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from agent.x509.der import certificate_tbs, single_pem_certificate, tbs_fields
from agent.x509.files import Problem
from agent.x509.parse import PemCertificates, cert_facts, parse_certificates
from tests.pki import (
    Issued,
    cert_pem,
    ec_key,
    make_ca,
    make_device_cert,
    make_self_signed,
    openssl_mint_ca,
    openssl_mint_device,
)


def _spki_hash(cert: x509.Certificate) -> bytes:
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def _certificates(shared_fixtures: Path, tmp_path: Path, device_ca: Issued) -> list[bytes]:
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    v1, _ = openssl_mint_device(tmp_path, ca_cert, ca_key, cn="v1-device")  # no extensions
    return [
        (shared_fixtures / "certs" / "AmazonRootCA1.pem").read_bytes(),
        (shared_fixtures / "certs" / "AmazonRootCA3.pem").read_bytes(),
        device_ca.pem(),
        make_device_cert(device_ca, "rsa-leaf").pem(),
        make_device_cert(make_ca("EC CA", key=ec_key()), "ec-leaf", key=ec_key()).pem(),
        make_self_signed("self-signed").pem(),
        ca_cert.read_bytes(),
        v1.read_bytes(),
    ]


def test_tbs_fields_match_the_parsed_certificate(
    shared_fixtures: Path, tmp_path: Path, device_ca: Issued
) -> None:
    for pem in _certificates(shared_fixtures, tmp_path, device_ca):
        cert = x509.load_pem_x509_certificate(pem)
        raw = tbs_fields(cert.tbs_certificate_bytes)
        assert (raw.issuer == raw.subject) is (cert.issuer == cert.subject), cert.subject
        assert hashlib.sha256(raw.subject_public_key_info).digest() == _spki_hash(cert)
        der = single_pem_certificate(pem)
        assert der == cert.public_bytes(serialization.Encoding.DER)
        assert certificate_tbs(der) == cert.tbs_certificate_bytes


def test_the_v1_certificate_has_no_version_field_and_still_parses(
    tmp_path: Path,
) -> None:
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    v1, _ = openssl_mint_device(tmp_path, ca_cert, ca_key, cn="v1-device")
    cert = x509.load_pem_x509_certificate(v1.read_bytes())
    assert cert.version is x509.Version.v1
    raw = tbs_fields(cert.tbs_certificate_bytes)
    assert raw.issuer != raw.subject


@pytest.mark.parametrize(
    "broken",
    [b"", b"\x30", b"\x30\x05\x02\x01\x01", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff", b"\x30\x81"],
)
def test_broken_der_is_a_value_error(broken: bytes) -> None:
    with pytest.raises(ValueError):
        tbs_fields(broken)
    with pytest.raises(ValueError):
        certificate_tbs(broken)


def _edit_body(pem: bytes, replacement: bytes) -> bytes:
    """``pem`` with the 10th base64 character of its first body line replaced."""
    head, line, rest = pem.split(b"\n", 2)
    return b"\n".join([head, line[:9] + replacement + line[10:], rest])


def test_only_a_lone_strict_certificate_block_takes_the_shortcut(device_ca: Issued) -> None:
    pem = make_device_cert(device_ca, "leaf").pem()
    assert single_pem_certificate(pem) is not None
    assert single_pem_certificate(pem.replace(b"\n", b"\r\n")) is not None
    assert single_pem_certificate(b"\n  " + pem + b"\n\n") is not None
    for other in (
        pem + device_ca.pem(),  # a bundle
        b"# client 7\n" + pem,  # text before the block
        pem.replace(b"CERTIFICATE", b"X509 CERTIFICATE"),  # legacy label
        pem.replace(b"\n", b"\n ", 3),  # indented base64
        _edit_body(pem, b"*"),  # not base64
        _edit_body(pem, b"="),  # padding inside the data
        _edit_body(pem, b""),  # a character lost: not a multiple of 4
    ):
        assert single_pem_certificate(other) is None


def test_both_paths_give_the_same_facts_and_the_same_problems(device_ca: Issued) -> None:
    leaf = make_device_cert(device_ca, "leaf")
    pem = leaf.pem()
    fast = parse_certificates(pem)
    assert isinstance(fast, PemCertificates)
    assert fast.certs == (cert_facts(leaf.cert),)
    bundle = parse_certificates(b"# comment\n" + pem)  # the full PEM parser
    assert isinstance(bundle, PemCertificates) and bundle.certs == fast.certs
    # A block that decodes to something that is not a certificate: the PEM parser's reason.
    garbage = b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n"
    assert single_pem_certificate(garbage) == b"\x30\x03\x02\x01\x01"
    found = parse_certificates(garbage)
    assert isinstance(found, Problem) and found.reason == "bad_pem"
    assert found == parse_certificates(b"text\n" + garbage)


def test_keep_objects_keeps_the_certificate_on_the_shortcut(device_ca: Issued) -> None:
    leaf = make_device_cert(device_ca, "leaf")
    found = parse_certificates(cert_pem(leaf.cert), keep_objects=True)
    assert isinstance(found, PemCertificates)
    assert found.objects == (leaf.cert,)
