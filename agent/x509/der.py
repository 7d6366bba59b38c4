"""The raw DER of the fields of a TBSCertificate the checks read, without building objects.

Comparing issuer and subject as ``x509.Name`` objects builds two Python object trees per
certificate, and hashing the key re-encodes it; with 10,000 certificates that is a sixth of a
first check. RFC 5280 4.1.2.4 says a name comparison of the encoded forms is what conforming
implementations may do (and what makes a certificate self-issued, 3.2), and the SPKI hash is
over the DER as it is in the certificate, so both only need the bytes. And a file holding
exactly one PEM certificate - every client-device certificate - is decoded here, so the DER is
at hand without asking the parsed certificate to encode its TBSCertificate again.

The key parameters and the two extensions the checks judge (basicConstraints, extendedKeyUsage)
are read here too: asking ``cryptography`` for its public key object and its extension objects
was two fifths of parsing a certificate. ``cryptography`` has always loaded the certificate
first, which checks its whole structure down to each extension's (extnID, critical, extnValue),
so these readers slice DER known to be well formed; what they decode further they decode
strictly (DER, X.690 section 10), and anything unusual raises ValueError, after which the caller
asks the library instead (``agent/x509/parse.py``), so the verdict on an odd certificate is
always the library's.

TBSCertificate (RFC 5280 4.1)::

    SEQUENCE { [0] EXPLICIT version OPTIONAL, serialNumber INTEGER, signature AlgorithmIdentifier,
               issuer Name, validity Validity, subject Name, subjectPublicKeyInfo SEQUENCE,
               [1] issuerUniqueID OPTIONAL, [2] subjectUniqueID OPTIONAL,
               [3] EXPLICIT extensions OPTIONAL }
"""

from __future__ import annotations

import binascii
import functools
from typing import NamedTuple

_SEQUENCE = 0x30
_VERSION = 0xA0  # [0] EXPLICIT, constructed
_EXTENSIONS = 0xA3  # [3] EXPLICIT, constructed
_BOOLEAN = 0x01
_INTEGER = 0x02
_BIT_STRING = 0x03
_OCTET_STRING = 0x04
_NULL = 0x05
_OID = 0x06
_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class TbsFields(NamedTuple):
    """Complete TLVs (tag, length and value) of four TBSCertificate fields."""

    issuer: bytes
    subject: bytes
    subject_public_key_info: bytes
    extensions: bytes
    """The ``Extensions`` SEQUENCE; empty when the certificate has none (v1, v2)."""


class PublicKeyInfo(NamedTuple):
    """A SubjectPublicKeyInfo taken apart (RFC 5280 4.1.2.7)."""

    algorithm: bytes
    """The value (content octets) of the algorithm OID."""
    parameters: tuple[int, bytes] | None
    """(tag, value) of the algorithm parameters; None when absent."""
    key: bytes
    """The subjectPublicKey BIT STRING's bits (no unused bits allowed)."""


def _element(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at ``at``; ValueError if broken."""
    tag = der[at]
    if tag & 0x1F == 0x1F:
        raise ValueError("high-tag-number form does not occur in a TBSCertificate")
    first = der[at + 1]
    start = at + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 0 < count <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    end = start + length
    if end > len(der):
        raise ValueError("DER element runs past its container")
    return tag, start, end


def tbs_fields(tbs: bytes) -> TbsFields:
    """Issuer, subject and SPKI of a DER TBSCertificate; ValueError when it is not one."""
    try:
        tag, at, end = _element(tbs, 0)
        if tag != _SEQUENCE or end != len(tbs):
            raise ValueError("not a TBSCertificate SEQUENCE")
        fields: list[bytes] = []
        extensions = b""
        while at < end:
            tag, start, stop = _element(tbs, at)
            if not fields and tag != _VERSION:
                fields.append(b"")  # v1: no version field
            if len(fields) < 7:
                fields.append(tbs[at:stop])
            elif tag == _EXTENSIONS:
                extensions = tbs[start:stop]
            at = stop
    except IndexError:
        raise ValueError("truncated DER") from None
    if len(fields) < 7 or any(f[:1] != b"\x30" for f in (fields[3], fields[5], fields[6])):
        raise ValueError("TBSCertificate lacks its issuer, subject or key")
    return TbsFields(fields[3], fields[5], fields[6], extensions)


def _elements(der: bytes) -> list[tuple[int, bytes]]:
    """(tag, value) of each element of a run of DER elements; ValueError when broken."""
    found = []
    at = 0
    try:
        while at < len(der):
            tag, start, end = _element(der, at)
            found.append((tag, der[start:end]))
            at = end
    except IndexError:
        raise ValueError("truncated DER") from None
    return found


def _inside(der: bytes, tag: int) -> list[tuple[int, bytes]]:
    """The elements inside ``der``, which must be exactly one element of type ``tag``."""
    outer = _elements(der)
    if len(outer) != 1 or outer[0][0] != tag:
        raise ValueError(f"expected one element of tag {tag:#04x}")
    return _elements(outer[0][1])


def extensions_by_oid(extensions: bytes) -> dict[bytes, bytes]:
    """Each extension of an ``Extensions`` SEQUENCE by the value of its ``extnID``, as the DER
    that follows the ``extnID`` (``critical`` and ``extnValue``: :func:`extension_value`);
    ValueError on a repeated extension (RFC 5280 4.2 allows one of each) or an odd shape.

    Only the identifiers are read: the checks judge two extensions and leave the rest alone.
    """
    found: dict[bytes, bytes] = {}
    try:
        tag, at, end = _element(extensions, 0)
        if tag != _SEQUENCE or end != len(extensions):
            raise ValueError("Extensions is not one SEQUENCE")
        while at < end:
            tag, start, stop = _element(extensions, at)
            oid_tag, oid_start, oid_end = _element(extensions, start)
            if tag != _SEQUENCE or oid_tag != _OID or oid_end > stop:
                raise ValueError("an extension does not start with its extnID")
            oid = extensions[oid_start:oid_end]
            if oid in found:
                raise ValueError("a repeated extension")
            found[oid] = extensions[oid_end:stop]
            at = stop
    except IndexError:
        raise ValueError("truncated DER") from None
    return found


def extension_value(rest: bytes) -> bytes:
    """The ``extnValue`` content of an extension's DER after its ``extnID``."""
    parts = _elements(rest)
    if (
        not 1 <= len(parts) <= 2
        or parts[-1][0] != _OCTET_STRING
        # DER omits a DEFAULT value: a critical flag present is TRUE, encoded 0xFF.
        or (len(parts) == 2 and parts[0] != (_BOOLEAN, b"\xff"))
    ):
        raise ValueError("an extension is not (extnID, critical, extnValue)")
    return parts[-1][1]


def basic_constraints_ca(value: bytes) -> bool:
    """The cA flag of a basicConstraints ``extnValue`` (RFC 5280 4.2.1.9)."""
    parts = _inside(value, _SEQUENCE)
    ca = bool(parts) and parts[0] == (_BOOLEAN, b"\xff")
    path_length = parts[1:] if ca else parts
    if len(path_length) > 1 or (path_length and path_length[0][0] != _INTEGER):
        raise ValueError("basicConstraints is not (cA TRUE, pathLenConstraint)")
    if path_length:
        positive_integer(path_length[0][1], allow_zero=True)
    return ca


def extended_key_usages(value: bytes) -> frozenset[str]:
    """The dotted purpose OIDs of an extendedKeyUsage ``extnValue`` (RFC 5280 4.2.1.12)."""
    parts = _inside(value, _SEQUENCE)
    if not parts or any(tag != _OID for tag, _ in parts):
        raise ValueError("extendedKeyUsage is not a SEQUENCE SIZE (1..MAX) OF OID")
    return frozenset(oid_text(body) for _, body in parts)


@functools.lru_cache(maxsize=256)
def oid_text(body: bytes) -> str:
    """The dotted form of an OID's content octets (X.690 8.19), strictly DER."""
    arcs: list[int] = []
    value = 0
    for i, byte in enumerate(body):
        if value == 0 and byte == 0x80 and (i == 0 or body[i - 1] < 0x80):
            raise ValueError("an OID subidentifier with a leading 0x80")
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            arcs.append(value)
            value = 0
    if not body or body[-1] >= 0x80:
        raise ValueError("a truncated OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def public_key_info(spki: bytes) -> PublicKeyInfo:
    """The algorithm, its parameters and the key bits of a SubjectPublicKeyInfo."""
    parts = _inside(spki, _SEQUENCE)
    if len(parts) != 2 or parts[0][0] != _SEQUENCE or parts[1][0] != _BIT_STRING:
        raise ValueError("SubjectPublicKeyInfo is not (AlgorithmIdentifier, BIT STRING)")
    algorithm = _elements(parts[0][1])
    bits = parts[1][1]
    if not 1 <= len(algorithm) <= 2 or algorithm[0][0] != _OID or bits[:1] != b"\x00":
        raise ValueError("SubjectPublicKeyInfo with an odd algorithm or key")
    parameters = algorithm[1] if len(algorithm) == 2 else None
    return PublicKeyInfo(algorithm[0][1], parameters, bits[1:])


def rsa_public_numbers(key: bytes) -> tuple[int, int]:
    """(modulus, public exponent) of an RSAPublicKey (RFC 8017 A.1.1)."""
    parts = _inside(key, _SEQUENCE)
    if len(parts) != 2 or parts[0][0] != _INTEGER or parts[1][0] != _INTEGER:
        raise ValueError("RSAPublicKey is not (modulus, publicExponent)")
    return positive_integer(parts[0][1]), positive_integer(parts[1][1])


def positive_integer(value: bytes, *, allow_zero: bool = False) -> int:
    """A DER INTEGER's value that must be positive (or zero) and minimally encoded."""
    if not value or value[0] >= 0x80 or (len(value) > 1 and value[0] == 0 and value[1] < 0x80):
        raise ValueError("not a minimal non-negative INTEGER")
    number = int.from_bytes(value, "big")
    if number == 0 and not allow_zero:
        raise ValueError("a zero INTEGER")
    return number


NULL = (_NULL, b"")
"""The (tag, value) of ASN.1 NULL, as the rsaEncryption parameters are (RFC 3279 2.3.1)."""


def named_curve(parameters: tuple[int, bytes] | None) -> bytes | None:
    """The OID value of id-ecPublicKey parameters naming a curve (RFC 5480 2.1.1), else None."""
    return parameters[1] if parameters is not None and parameters[0] == _OID else None


def single_pem_certificate(data: bytes) -> bytes | None:
    """The DER of a file that is one CERTIFICATE block and nothing else (RFC 7468 strict
    base64 lines, LF or CRLF), else None: anything unusual is left to the full PEM parser."""
    text = data.strip()
    if not (text.startswith(_BEGIN) and text.endswith(_END)) or text.count(b"-----") != 4:
        return None
    body = text[len(_BEGIN) : -len(_END)].replace(b"\r\n", b"").replace(b"\n", b"")
    data = body.rstrip(b"=")
    # a2b_base64 skips stray characters; only a clean body may bypass the PEM parser.
    if len(body) % 4 or len(body) - len(data) > 2 or data.translate(None, _BASE64):
        return None
    try:
        return binascii.a2b_base64(body)
    except binascii.Error:
        return None


def certificate_tbs(der: bytes) -> bytes:
    """The TBSCertificate of a DER Certificate (its first element); ValueError when broken."""
    try:
        tag, at, end = _element(der, 0)
        if tag != _SEQUENCE or end != len(der):
            raise ValueError("not a Certificate SEQUENCE")
        tag, _start, stop = _element(der, at)
    except IndexError:
        raise ValueError("truncated DER") from None
    if tag != _SEQUENCE:
        raise ValueError("Certificate does not start with a TBSCertificate")
    return der[at:stop]
