"""PEM certificates and private keys parsed into small frozen facts.

Only what verdicts need is kept (dates, key facts, flags), so a cache of 10,000 parsed
certificates stays small; the ``cryptography`` objects themselves are kept only on request
(the device certificate and a CA bundle, which path validation needs).
"""

from __future__ import annotations

import functools
import hashlib
import time
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from agent.report import record
from agent.x509 import der
from agent.x509.der import certificate_tbs, single_pem_certificate, tbs_fields
from agent.x509.files import (
    BAD_PEM,
    ENCRYPTED_KEY,
    NO_CERTIFICATE_FOUND,
    UNSUPPORTED_KEY_TYPE,
    Problem,
)
from agent.x509.roca import is_roca_modulus

CERT_MARKER = b"-----BEGIN CERTIFICATE-----"
_LEGACY_CERT_MARKER = b"-----BEGIN X509 CERTIFICATE-----"
_PEM_MARKER = b"-----BEGIN "


def rfc3339(timestamp: float) -> str:
    """``timestamp`` (UTC) as RFC 3339, a four-digit year always: glibc's ``%Y`` writes year 2
    as "2" (https://www.rfc-editor.org/rfc/rfc3339#section-5.6 requires 4 digits)."""
    t = time.gmtime(timestamp)
    return f"{t.tm_year:04d}-" + time.strftime("%m-%dT%H:%M:%SZ", t)


# cryptography decodes fields lazily, on first access, and reports malformed DER not only as
# ValueError: a name attribute of the wrong ASN.1 type is a TypeError, a bad version number,
# a repeated extension or an unknown general-name type have exceptions of their own.
_MALFORMED = (
    ValueError,
    TypeError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """The public key of a certificate, as key-quality verdicts need it."""

    algorithm: str
    """``RSA``, ``EC``, ``Ed25519``, ``Ed448``, ``DSA`` or the library's class name."""
    bits: int
    """Key size in bits (0 when meaningless)."""
    curve: str | None = None
    """EC curve name as ``cryptography`` spells it, e.g. ``secp256r1``."""
    exponent: int | None = None
    """RSA public exponent."""
    roca: bool = False
    """The RSA modulus carries the Infineon RSALib (ROCA) fingerprint."""


@record
class CertFacts:
    """One certificate of a PEM file."""

    subject_der: bytes
    """The subject Name as encoded (:attr:`subject` is its text, made when a message needs it:
    most results of a fleet's certificates never show it)."""
    self_issued: bool
    """Issuer equals subject, as encoded (RFC 5280 4.1.2.4): a root, whose own signature is not
    relied on."""
    not_before: float
    """POSIX timestamp of notBefore."""
    not_after: float
    """POSIX timestamp of notAfter."""
    not_before_text: str
    """notBefore, RFC 3339 with ``Z``."""
    not_after_text: str
    """notAfter, RFC 3339 with ``Z``."""
    is_ca: bool
    """basicConstraints present with cA=TRUE."""
    eku: frozenset[str] | None
    """Dotted OIDs of extendedKeyUsage; None when the extension is absent."""
    signature_hash: str | None
    """Hash of the issuer's signature (``sha256``, ``sha1``...); None for EdDSA or unknown."""
    key: KeyFacts
    """The subject public key."""
    spki_sha256: bytes
    """SHA-256 of the DER SubjectPublicKeyInfo (key match, trust-anchor identity)."""

    @property
    def subject(self) -> str:
        """RFC 4514 subject."""
        return name_text(self.subject_der)


@dataclass(frozen=True, slots=True)
class PemCertificates:
    """Every certificate of one PEM file, in file order."""

    certs: tuple[CertFacts, ...]
    objects: tuple[x509.Certificate, ...] = ()
    """The parsed certificates, when asked for (path validation); else empty."""


@dataclass(frozen=True, slots=True)
class PrivateKeyFacts:
    """A private key file, reduced to what is safe to keep: its public half's identity."""

    algorithm: str
    """``RSA`` or ``EC``."""
    bits: int
    spki_sha256: bytes
    """SHA-256 of the DER SubjectPublicKeyInfo of the matching public key."""


def spki_sha256(public_key: object) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo of a ``cryptography`` public key."""
    der = public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def parse_certificates(data: bytes, *, keep_objects: bool = False) -> PemCertificates | Problem:
    """Every CERTIFICATE block of a PEM file (CRLF or LF, text around blocks allowed)."""
    if CERT_MARKER not in data and _LEGACY_CERT_MARKER not in data:
        return _no_certificate(data)
    try:
        with warnings.catch_warnings():
            # e.g. the zero serial of Starfield Services Root G2: parse it, do not spam stderr.
            warnings.simplefilter("ignore")
            objects, der = _load_certificates(data)
            if der is not None:
                facts: tuple[CertFacts, ...] = (cert_facts(objects[0], certificate_tbs(der)),)
            else:
                facts = tuple(cert_facts(c) for c in objects)
    except _MALFORMED as exc:
        return Problem(BAD_PEM, f"has a CERTIFICATE block that does not parse: {_short(exc)}")
    except UnsupportedAlgorithm as exc:  # a public key algorithm no TLS stack here can use
        return Problem(UNSUPPORTED_KEY_TYPE, f"has a certificate with an unsupported key: {exc}")
    return PemCertificates(facts, tuple(objects) if keep_objects else ())


def _load_certificates(data: bytes) -> tuple[list[x509.Certificate], bytes | None]:
    """The certificates of a PEM file, with the DER when the file is a single certificate."""
    der = single_pem_certificate(data)
    if der is not None:
        try:
            return [x509.load_der_x509_certificate(der)], der
        except _MALFORMED:
            pass  # the PEM parser below gives the reason, as for every other file
    return x509.load_pem_x509_certificates(data), None


def cert_facts(cert: x509.Certificate, tbs: bytes | None = None) -> CertFacts:
    """The facts of one parsed certificate (``tbs``: its DER TBSCertificate, when at hand)."""
    # The encoded fields, not Name/key/extension objects: half of parsing a certificate (der.py).
    raw = tbs_fields(tbs if tbs is not None else cert.tbs_certificate_bytes)
    not_before = cert.not_valid_before_utc.timestamp()
    not_after = cert.not_valid_after_utc.timestamp()
    is_ca, eku = _extension_facts(raw.extensions) or _library_extension_facts(cert)
    try:
        sig = cert.signature_hash_algorithm
        signature_hash = sig.name if sig is not None else None
    except UnsupportedAlgorithm:
        signature_hash = None
    return CertFacts(
        subject_der=raw.subject,
        self_issued=raw.issuer == raw.subject,
        not_before=not_before,
        not_after=not_after,
        not_before_text=rfc3339(not_before),
        not_after_text=rfc3339(not_after),
        is_ca=is_ca,
        eku=eku,
        signature_hash=signature_hash,
        key=_shared(spki_key_facts(raw.subject_public_key_info) or key_facts(cert.public_key())),
        spki_sha256=hashlib.sha256(raw.subject_public_key_info).digest(),
    )


@functools.lru_cache(maxsize=256)
def _shared(key: KeyFacts) -> KeyFacts:
    """One object per kind of key: a fleet's thousands of certificates share a few."""
    return key


_BASIC_CONSTRAINTS = bytes.fromhex("551d13")  # 2.5.29.19
_EXTENDED_KEY_USAGE = bytes.fromhex("551d25")  # 2.5.29.37


def _extension_facts(extensions: bytes) -> tuple[bool, frozenset[str] | None] | None:
    """(cA, extended key usages) from the DER; None when the library must judge them."""
    if not extensions:
        return False, None
    try:
        found = der.extensions_by_oid(extensions)
        constraints = found.get(_BASIC_CONSTRAINTS)
        usages = found.get(_EXTENDED_KEY_USAGE)
        return (
            constraints is not None and der.basic_constraints_ca(der.extension_value(constraints)),
            None if usages is None else der.extended_key_usages(der.extension_value(usages)),
        )
    except ValueError:
        return None


def _library_extension_facts(cert: x509.Certificate) -> tuple[bool, frozenset[str] | None]:
    """(cA, extended key usages) as ``cryptography`` parses them (raises on a malformed one)."""
    is_ca = False
    eku: frozenset[str] | None = None
    for ext in cert.extensions:
        value = ext.value
        if isinstance(value, x509.BasicConstraints):
            is_ca = value.ca
        elif isinstance(value, x509.ExtendedKeyUsage):
            eku = frozenset(oid.dotted_string for oid in value)
    return is_ca, eku


_RSA = bytes.fromhex("2a864886f70d010101")  # rsaEncryption, RFC 3279 2.3.1
_EC = bytes.fromhex("2a8648ce3d0201")  # id-ecPublicKey, RFC 5480 2.1.1
_CURVES = {  # the named curves (RFC 5480 2.1.1.1) a device is likely to meet: name, bits
    bytes.fromhex("2a8648ce3d030107"): ("secp256r1", 256),
    bytes.fromhex("2b81040022"): ("secp384r1", 384),
    bytes.fromhex("2b81040023"): ("secp521r1", 521),
    bytes.fromhex("2b8104000a"): ("secp256k1", 256),
}
_EDWARDS = {  # RFC 8410 3: no parameters; key length in bytes
    bytes.fromhex("2b6570"): ("Ed25519", 256, 32),
    bytes.fromhex("2b6571"): ("Ed448", 456, 57),
}


def spki_key_facts(spki: bytes) -> KeyFacts | None:
    """The key facts of a DER SubjectPublicKeyInfo of the usual kinds, else None (the caller
    asks the library, which also rejects what is malformed).

    The EC point's format and length are checked, not that it lies on the curve: the library's
    public key object does that (a tenth of parsing a certificate), and a point off the curve,
    like a flipped bit of the signature, is corruption no certificate check here looks for.
    """
    for prefix, facts in _FIXED_SPKI.get(len(spki), ()):
        if spki.startswith(prefix):
            return facts
    try:
        info = der.public_key_info(spki)
        if info.algorithm == _RSA and info.parameters == der.NULL:
            n, e = der.rsa_public_numbers(info.key)
            # What the library refuses as an RSA key, it judges itself.
            if n % 2 and n > e >= 3 and e % 2:
                return KeyFacts("RSA", n.bit_length(), exponent=e, roca=is_roca_modulus(n))
        elif info.algorithm == _EC and (
            curve := _CURVES.get(der.named_curve(info.parameters) or b"")
        ):
            name, bits = curve
            size = (bits + 7) // 8
            point = info.key
            if (point[:1] == b"\x04" and len(point) == 1 + 2 * size) or (
                point[:1] in (b"\x02", b"\x03") and len(point) == 1 + size
            ):
                return KeyFacts("EC", bits, curve=name)
        elif (edwards := _EDWARDS.get(info.algorithm)) and info.parameters is None:
            name, bits, length = edwards
            if len(info.key) == length:
                return KeyFacts(name, bits)
    except ValueError:
        pass
    return None


def _fixed_spki() -> dict[int, list[tuple[bytes, KeyFacts]]]:
    """The DER of every SubjectPublicKeyInfo of a named-curve EC key or an EdDSA key, but for
    the key bytes, by its length: DER has one encoding of each, so a key of these kinds is
    known by a prefix and a length (the readers below reach the same facts, slower)."""
    # (AlgorithmIdentifier, the key's first byte, the length of the rest, facts)
    shapes: list[tuple[bytes, bytes, int, KeyFacts]] = []
    for oid, (name, bits) in _CURVES.items():
        algorithm = _tlv(0x30, _tlv(0x06, _EC) + _tlv(0x06, oid))
        size = (bits + 7) // 8
        facts = KeyFacts("EC", bits, curve=name)
        # Uncompressed (0x04) and compressed (0x02, 0x03) points, SEC 1 2.3.3.
        shapes += [(algorithm, b"\x04", 2 * size, facts)]
        shapes += [(algorithm, form, size, facts) for form in (b"\x02", b"\x03")]
    for oid, (name, bits, length) in _EDWARDS.items():
        shapes.append((_tlv(0x30, _tlv(0x06, oid)), b"", length, KeyFacts(name, bits)))
    table: dict[int, list[tuple[bytes, KeyFacts]]] = {}
    for algorithm, first, length, facts in shapes:
        whole = _tlv(0x30, algorithm + _tlv(0x03, b"\x00" + first + bytes(length)))
        table.setdefault(len(whole), []).append((whole[:-length], facts))
    return table


@functools.lru_cache(maxsize=1024)
def name_text(name: bytes) -> str:
    """The RFC 4514 text of a DER Name, as ``cryptography`` writes it.

    The library reads a Name only inside a larger structure, and keeping each certificate's
    object (or DER) to ask it later would hold megabytes for a large fleet; so the Name is
    placed in the smallest DER structure it parses that has one, a CRL with nothing in it but
    its issuer (RFC 5280 5.1), and the text is the library's own. A Name the library cannot
    decode (an attribute of the wrong string type) is shown as its DER in hex, as RFC 4514 2.4
    writes a value it cannot represent.
    """
    tbs_cert_list = _tlv(0x30, _CRL_SIGNATURE + name + _CRL_THIS_UPDATE)
    crl = _tlv(0x30, tbs_cert_list + _CRL_SIGNATURE + _CRL_NO_SIGNATURE)
    try:
        return x509.load_der_x509_crl(crl).issuer.rfc4514_string()
    except _MALFORMED:
        return f"(undecodable subject #{name.hex()})"


_CRL_SIGNATURE = bytes.fromhex("300a06082a8648ce3d040302")  # ecdsa-with-SHA256, never verified
_CRL_THIS_UPDATE = b"\x17\x0d700101000000Z"  # UTCTime 1970-01-01
_CRL_NO_SIGNATURE = b"\x03\x01\x00"  # an empty BIT STRING


def _tlv(tag: int, value: bytes) -> bytes:
    """One DER element (definite length, X.690 8.1.3)."""
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + value


def key_facts(public_key: object) -> KeyFacts:
    """Algorithm, size and weakness flags of a public key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return KeyFacts(
            "RSA", public_key.key_size, exponent=numbers.e, roca=is_roca_modulus(numbers.n)
        )
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return KeyFacts("EC", public_key.key_size, curve=public_key.curve.name)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return KeyFacts("Ed25519", 256)
    if isinstance(public_key, ed448.Ed448PublicKey):
        return KeyFacts("Ed448", 456)
    if isinstance(public_key, dsa.DSAPublicKey):
        return KeyFacts("DSA", public_key.key_size)
    return KeyFacts(type(public_key).__name__, 0)


def parse_private_key(data: bytes) -> PrivateKeyFacts | Problem:
    """An unencrypted RSA or EC private key (PKCS#8, PKCS#1 or SEC1 PEM).

    Greengrass reads the key without a passphrase, so an encrypted key is a defect. The key
    object is dropped at once: only the hash of its public half is returned.
    """
    if b"-----BEGIN ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data:
        # PKCS#8 EncryptedPrivateKeyInfo (RFC 5958) or legacy OpenSSL PEM encryption.
        return _encrypted()
    if b"PRIVATE KEY-----" not in data:
        if _PEM_MARKER in data:
            return Problem(BAD_PEM, "holds no PRIVATE KEY block")
        return Problem(BAD_PEM, "is not PEM (no -----BEGIN line)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        return _encrypted()
    except UnsupportedAlgorithm as exc:
        return Problem(
            UNSUPPORTED_KEY_TYPE, f"holds a key type this library cannot use: {_short(exc)}"
        )
    except ValueError as exc:
        return Problem(BAD_PEM, f"has a PRIVATE KEY block that does not parse: {_short(exc)}")
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = "RSA"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = "EC"
    else:
        name = type(key).__name__.removesuffix("PrivateKey").lstrip("_")
        return Problem(
            UNSUPPORTED_KEY_TYPE,
            f"holds a {name} key; Greengrass and AWS IoT use RSA or EC (P-256/P-384/P-521) keys",
        )
    return PrivateKeyFacts(algorithm, key.key_size, spki_sha256(key.public_key()))


def _encrypted() -> Problem:
    return Problem(
        ENCRYPTED_KEY, "is passphrase-encrypted; the nucleus cannot read an encrypted key"
    )


def _no_certificate(data: bytes) -> Problem:
    if _PEM_MARKER in data:
        return Problem(NO_CERTIFICATE_FOUND, "holds PEM blocks but no CERTIFICATE")
    if not data.strip():
        return Problem(BAD_PEM, "is empty")
    if data[:1] == b"\x30":
        return Problem(BAD_PEM, "looks like DER; Greengrass expects PEM")
    return Problem(BAD_PEM, "is not PEM (no -----BEGIN line)")


def _short(exc: Exception) -> str:
    text = str(exc)
    return text.split(" See https://", 1)[0].split(". See https://", 1)[0][:200]


_FIXED_SPKI = _fixed_spki()
