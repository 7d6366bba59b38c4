"""The facts read from the DER (key parameters, cA, extended key usages, subject text) are the
ones ``cryptography``'s own objects give, for every kind of key and extension a device meets;
and on damaged certificates the DER readers never accept what the library refuses, except in
the two places the module says they do not look (an EC point's curve membership, and the
contents of extensions the checks do not judge)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.x509.der import certificate_tbs, single_pem_certificate, tbs_fields
from agent.x509.parse import (
    CertFacts,
    cert_facts,
    key_facts,
    name_text,
    parse_certificates,
    rfc3339,
    spki_key_facts,
)
from tests.pki import (
    cert_pem,
    ec_key,
    make_ca,
    make_roca_key,
    openssl_mint_ca,
    openssl_mint_device,
    rsa_key,
)

_NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
_CUSTOM_PURPOSE = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1.2")


def library_facts(cert: x509.Certificate) -> CertFacts:
    """The facts as the library's objects give them: the reference the DER readers must match.
    (Names are compared as encoded, RFC 5280 4.1.2.4, in both.)"""
    cert.subject.rfc4514_string()  # decodes: a Name the library cannot read raises here
    is_ca, eku = False, None
    for ext in cert.extensions:
        if isinstance(ext.value, x509.BasicConstraints):
            is_ca = ext.value.ca
        elif isinstance(ext.value, x509.ExtendedKeyUsage):
            eku = frozenset(oid.dotted_string for oid in ext.value)
    try:
        sig = cert.signature_hash_algorithm
        signature_hash = sig.name if sig is not None else None
    except UnsupportedAlgorithm:
        signature_hash = None
    raw = tbs_fields(cert.tbs_certificate_bytes)
    before, after = cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()
    return CertFacts(
        subject_der=raw.subject,
        self_issued=raw.issuer == raw.subject,
        not_before=before,
        not_after=after,
        not_before_text=rfc3339(before),
        not_after_text=rfc3339(after),
        is_ca=is_ca,
        eku=eku,
        signature_hash=signature_hash,
        key=key_facts(cert.public_key()),
        spki_sha256=hashlib.sha256(raw.subject_public_key_info).digest(),
    )


def _issue(subject_key: Any, cn: str, *extensions: tuple[x509.ExtensionType, bool]) -> bytes:
    """A certificate for ``subject_key`` signed by a P-256 CA, with ``extensions``."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DER facts CA")]))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - dt.timedelta(days=1))
        .not_valid_after(_NOW + dt.timedelta(days=90))
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return cert_pem(builder.sign(_CA_KEY, hashes.SHA256()))


_CA_KEY = ec_key()
_CLIENT = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
_LEAF = x509.BasicConstraints(ca=False, path_length=None)


def _corpus(shared_fixtures: Path, tmp_path: Path) -> dict[str, bytes]:
    """Every kind of key and of the two judged extensions, from two encoders and the wild."""
    corpus = {p.name: p.read_bytes() for p in sorted((shared_fixtures / "certs").glob("*.pem"))}
    keys: dict[str, Any] = {
        "rsa-1024": rsa_key(1024),
        "rsa-2048-e3": rsa_key(2048, exponent=3),
        "rsa-3072": rsa_key(3072),
        "rsa-roca": make_roca_key(512),
        "p256": ec_key(),
        "p384": ec_key(ec.SECP384R1()),
        "p521": ec_key(ec.SECP521R1()),
        "secp256k1": ec_key(ec.SECP256K1()),
        "secp224r1": ec_key(ec.SECP224R1()),  # not in the table: the library answers
        "brainpool": ec_key(ec.BrainpoolP256R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "ed448": ed448.Ed448PrivateKey.generate(),
        "dsa": dsa.generate_private_key(2048),
    }
    for name, key in keys.items():
        corpus[name] = _issue(key, name, (_LEAF, True), (_CLIENT, False))
    p256 = keys["p256"]
    corpus["no-extensions"] = _issue(p256, "bare")
    corpus["ca-pathlen-0"] = _issue(p256, "ca", (x509.BasicConstraints(True, 0), True))
    corpus["ca-no-pathlen"] = _issue(p256, "ca2", (x509.BasicConstraints(True, None), True))
    corpus["eku-many"] = _issue(
        p256,
        "many",
        (
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH, _CUSTOM_PURPOSE]
            ),
            True,
        ),
        (x509.SubjectAlternativeName([x509.DNSName("device.example")]), False),
        (x509.SubjectKeyIdentifier.from_public_key(p256.public_key()), False),
    )
    corpus["rsa-ca"] = make_ca("RSA CA", key=rsa_key()).pem()
    ca_cert, ca_key = openssl_mint_ca(tmp_path)
    corpus["openssl-ca"] = ca_cert.read_bytes()
    v1, _ = openssl_mint_device(tmp_path, ca_cert, ca_key, cn="v1")
    corpus["openssl-v1"] = v1.read_bytes()
    v3, _ = openssl_mint_device(
        tmp_path,
        ca_cert,
        ca_key,
        cn="v3",
        extensions="basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth,serverAuth\n",
    )
    corpus["openssl-v3"] = v3.read_bytes()
    return corpus


def test_the_der_facts_are_the_library_facts(shared_fixtures: Path, tmp_path: Path) -> None:
    corpus = _corpus(shared_fixtures, tmp_path)
    seen_keys = set()
    for label, pem in corpus.items():
        for cert in x509.load_pem_x509_certificates(pem):
            facts = cert_facts(cert)
            assert facts == library_facts(cert), label
            assert facts.subject == cert.subject.rfc4514_string(), label
            seen_keys.add(facts.key.algorithm)
        found = parse_certificates(pem)  # the single-PEM shortcut, when the file is one block
        assert not isinstance(found, Exception)
        assert [library_facts(c) for c in x509.load_pem_x509_certificates(pem)] == list(
            getattr(found, "certs", ())
        ), label
    assert seen_keys == {"RSA", "EC", "Ed25519", "Ed448", "DSA"}
    facts = cert_facts(x509.load_pem_x509_certificate(corpus["eku-many"]))
    assert facts.eku == {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2", "1.3.6.1.4.1.99999.1.2"}
    assert cert_facts(x509.load_pem_x509_certificate(corpus["ca-pathlen-0"])).is_ca
    roca = cert_facts(x509.load_pem_x509_certificate(corpus["rsa-roca"])).key
    assert roca.roca and roca.algorithm == "RSA"


def test_a_subject_with_every_escape_reads_as_the_library_writes_it() -> None:
    tricky = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Acme, "Inc" + <Sons>; #1 '),
            x509.NameAttribute(NameOID.COMMON_NAME, " Gerät Nº 7 \\ = "),
            x509.NameAttribute(x509.ObjectIdentifier("1.2.3.4.5"), "custom"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(tricky)
        .issuer_name(tricky)
        .public_key(_CA_KEY.public_key())
        .serial_number(1)
        .not_valid_before(_NOW)
        .not_valid_after(_NOW + dt.timedelta(days=1))
        .sign(_CA_KEY, hashes.SHA256())
    )
    raw = tbs_fields(cert.tbs_certificate_bytes)
    assert name_text(raw.subject) == cert.subject.rfc4514_string()
    assert name_text(b"\x30\x00") == ""  # an empty subject
    # A Name the library cannot decode still gives a text, never an exception in a message.
    assert name_text(b"\x30\x03\x02\x01\x01") == "(undecodable subject #3003020101)"


def _damaged(der: bytes) -> list[tuple[int, bytes]]:
    """Every single-byte change of the TBSCertificate (two per byte), with its offset."""
    tbs = certificate_tbs(der)
    at = der.index(tbs)
    out = []
    for i in range(at, at + len(tbs)):
        for flip in (0x01, 0x80):
            out.append((i, der[:i] + bytes([der[i] ^ flip]) + der[i + 1 :]))
    return out


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        return type(exc)


# Damage can make a serial number zero or negative: the library still loads it, with a warning.
@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@pytest.mark.parametrize("kind", ["p256", "rsa-2048-e3", "eku-many", "ca-pathlen-0"])
def test_damage_never_gets_a_different_answer(
    kind: str, shared_fixtures: Path, tmp_path: Path
) -> None:
    der = single_pem_certificate(_corpus_one(kind))
    assert der is not None
    original = tbs_fields(certificate_tbs(der))
    subject = der.index(original.subject)
    subject_end = subject + len(original.subject)
    key_bits = der.index(original.subject_public_key_info) + len(original.subject_public_key_info)
    ext_start = der.index(original.extensions) if original.extensions else len(der)
    loaded = unvalidated = 0
    for offset, damaged in _damaged(der):
        try:
            cert = x509.load_der_x509_certificate(damaged)
        except (ValueError, x509.InvalidVersion):
            continue  # the library refuses the structure: so does every path of the agent
        loaded += 1
        ours = _outcome(lambda: cert_facts(cert, certificate_tbs(damaged)))  # noqa: B023
        reference = _outcome(lambda: library_facts(cert))  # noqa: B023
        if isinstance(ours, CertFacts) and isinstance(reference, CertFacts):
            assert ours == reference, offset
        elif isinstance(ours, CertFacts):
            # Only where the readers say they do not look: the subject (decoded when a message
            # names it, and then never raising), the key bits (an EC point off its curve) or an
            # extension the checks do not judge.
            unvalidated += 1
            in_subject = subject <= offset < subject_end
            in_key = key_bits - 80 <= offset < key_bits
            assert in_subject or in_key or offset >= ext_start, (offset, reference)
            assert ours.subject  # a text, if only the encoded bytes
        else:
            assert not isinstance(reference, CertFacts), (offset, ours)
    assert loaded > 100  # the damage reached the readers, not only the library's loader
    assert unvalidated < loaded


def _corpus_one(kind: str) -> bytes:
    keys = {"p256": ec_key(), "rsa-2048-e3": rsa_key(2048, exponent=3)}
    if kind in keys:
        return _issue(keys[kind], kind, (_LEAF, True), (_CLIENT, False))
    if kind == "ca-pathlen-0":
        return _issue(ec_key(), "ca", (x509.BasicConstraints(True, 0), True))
    key = ec_key()
    return _issue(
        key,
        "many",
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, _CUSTOM_PURPOSE]), True),
        (x509.SubjectAlternativeName([x509.DNSName("device.example")]), False),
    )


@pytest.mark.parametrize(
    "curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1(), ec.SECP256K1()], ids=lambda c: c.name
)
def test_a_compressed_point_is_known_as_the_library_knows_it(curve: ec.EllipticCurve) -> None:
    public = ec_key(curve).public_key()
    uncompressed = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    # SEQUENCE { AlgorithmIdentifier, BIT STRING }: the identifier kept, the point replaced.
    at = 2 if uncompressed[1] < 0x80 else 3
    algorithm = uncompressed[at : at + 2 + uncompressed[at + 1]]
    compressed = _der(0x30, algorithm + _der(0x03, b"\x00" + point))
    library = key_facts(serialization.load_der_public_key(compressed))
    assert spki_key_facts(compressed) == spki_key_facts(uncompressed) == library


def _der(tag: int, value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n])
    return bytes([tag]) + length + value
