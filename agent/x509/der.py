"""The raw DER of the Name and key fields of a TBSCertificate, without building objects.

Comparing issuer and subject as ``x509.Name`` objects builds two Python object trees per
certificate, and hashing the key re-encodes it; with 10,000 certificates that is a sixth of a
first check. RFC 5280 4.1.2.4 says a name comparison of the encoded forms is what conforming
implementations may do (and what makes a certificate self-issued, 3.2), and the SPKI hash is
over the DER as it is in the certificate, so both only need the bytes. And a file holding
exactly one PEM certificate - every client-device certificate - is decoded here, so the DER is
at hand without asking the parsed certificate to encode its TBSCertificate again.

TBSCertificate (RFC 5280 4.1)::

    SEQUENCE { [0] EXPLICIT version OPTIONAL, serialNumber INTEGER, signature AlgorithmIdentifier,
               issuer Name, validity Validity, subject Name, subjectPublicKeyInfo SEQUENCE, ... }
"""

from __future__ import annotations

import binascii
from typing import NamedTuple

_SEQUENCE = 0x30
_VERSION = 0xA0  # [0] EXPLICIT, constructed
_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class TbsFields(NamedTuple):
    """Complete TLVs (tag, length and value) of three TBSCertificate fields."""

    issuer: bytes
    subject: bytes
    subject_public_key_info: bytes


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
        while len(fields) < 7 and at < end:
            tag, _start, stop = _element(tbs, at)
            if not fields and tag != _VERSION:
                fields.append(b"")  # v1: no version field
            fields.append(tbs[at:stop])
            at = stop
    except IndexError:
        raise ValueError("truncated DER") from None
    if len(fields) < 7 or any(f[:1] != b"\x30" for f in (fields[3], fields[5], fields[6])):
        raise ValueError("TBSCertificate lacks its issuer, subject or key")
    return TbsFields(fields[3], fields[5], fields[6])


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
