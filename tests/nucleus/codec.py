"""AWS event-stream message framing: encode and decode messages and their typed headers.

Wire format (big-endian), as documented for AWS event streams
(https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html and the S3 Select appendix
https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html)::

    total_len u32 | headers_len u32 | prelude_crc u32 | headers | payload | message_crc u32

``prelude_crc`` is the CRC32 of the first 8 bytes, ``message_crc`` the CRC32 of everything before
it. A header is ``name_len u8 | name | type u8 | value``. The size limits are those of the C
implementation the awsiotsdk client uses (aws-c-event-stream): a message of at most 16 MiB with
at most 128 KiB of headers, so a peer that announces more is refused before we buffer it.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

PRELUDE_LEN = 12
CRC_LEN = 4
MIN_MESSAGE_LEN = PRELUDE_LEN + CRC_LEN
MAX_MESSAGE_LEN = 16 * 1024 * 1024
MAX_HEADERS_LEN = 128 * 1024

HeaderValue = bool | int | bytes | str | uuid.UUID


class CodecError(ValueError):
    """A message cannot be encoded or decoded; the text says which rule it breaks."""


class HeaderType(IntEnum):
    """The value type tag of a header, as it appears on the wire."""

    BOOL_TRUE = 0
    BOOL_FALSE = 1
    BYTE = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    BYTES = 6
    STRING = 7
    TIMESTAMP = 8  # int64 milliseconds since the Unix epoch
    UUID = 9


# Fixed-width integer types: struct format and inclusive range.
_INT_FORMATS = {
    HeaderType.BYTE: ">b",
    HeaderType.INT16: ">h",
    HeaderType.INT32: ">i",
    HeaderType.INT64: ">q",
    HeaderType.TIMESTAMP: ">q",
}


@dataclass(frozen=True)
class Header:
    """One typed header. ``value`` is a bool, int, bytes, str or UUID according to ``type``."""

    name: str
    type: HeaderType
    value: HeaderValue

    @classmethod
    def string(cls, name: str, value: str) -> Header:
        """A STRING header (UTF-8 on the wire)."""
        return cls(name, HeaderType.STRING, value)

    @classmethod
    def int32(cls, name: str, value: int) -> Header:
        """An INT32 header."""
        return cls(name, HeaderType.INT32, value)

    @classmethod
    def boolean(cls, name: str, value: bool) -> Header:
        """A BOOL_TRUE or BOOL_FALSE header (the type carries the value)."""
        return cls(name, HeaderType.BOOL_TRUE if value else HeaderType.BOOL_FALSE, value)


@dataclass(frozen=True)
class Message:
    """A decoded message: its headers in wire order and its payload."""

    headers: tuple[Header, ...]
    payload: bytes = b""

    def get(self, name: str) -> Header | None:
        """The first header called ``name`` (names compare case-insensitively), or None."""
        lowered = name.lower()
        return next((h for h in self.headers if h.name.lower() == lowered), None)


def _encode_header(header: Header) -> bytes:
    name = header.name.encode("utf-8")
    if not 1 <= len(name) <= 255:
        raise CodecError(f"header name {header.name!r} must be 1..255 bytes of UTF-8")
    kind = HeaderType(header.type)
    head = bytes([len(name)]) + name + bytes([kind])
    value = header.value
    if kind in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
        return head
    if kind in _INT_FORMATS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CodecError(f"header {header.name!r}: {kind.name} needs an int")
        try:
            return head + struct.pack(_INT_FORMATS[kind], value)
        except struct.error:
            raise CodecError(f"header {header.name!r}: {value} does not fit {kind.name}") from None
    if kind is HeaderType.UUID:
        if not isinstance(value, uuid.UUID):
            raise CodecError(f"header {header.name!r}: UUID needs a uuid.UUID")
        return head + value.bytes
    if kind is HeaderType.STRING:
        if not isinstance(value, str):
            raise CodecError(f"header {header.name!r}: STRING needs a str")
        raw = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    else:
        raise CodecError(f"header {header.name!r}: BYTES needs bytes")
    if len(raw) > 0xFFFF:
        raise CodecError(f"header {header.name!r}: value of {len(raw)} bytes exceeds 65535")
    return head + struct.pack(">H", len(raw)) + raw


def encode_message(headers: Iterable[Header], payload: bytes = b"") -> bytes:
    """Frame ``headers`` and ``payload`` into one message with both CRCs."""
    header_bytes = b"".join(_encode_header(h) for h in headers)
    if len(header_bytes) > MAX_HEADERS_LEN:
        raise CodecError(f"headers of {len(header_bytes)} bytes exceed {MAX_HEADERS_LEN}")
    total = MIN_MESSAGE_LEN + len(header_bytes) + len(payload)
    if total > MAX_MESSAGE_LEN:
        raise CodecError(f"message of {total} bytes exceeds {MAX_MESSAGE_LEN}")
    prelude = struct.pack(">II", total, len(header_bytes))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + header_bytes + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _take(data: bytes, pos: int, size: int, what: str) -> tuple[bytes, int]:
    if pos + size > len(data):
        raise CodecError(f"headers truncated inside {what}")
    return data[pos : pos + size], pos + size


def decode_headers(data: bytes) -> tuple[Header, ...]:
    """Decode a headers block; every byte must belong to a well-formed header."""
    headers: list[Header] = []
    pos = 0
    while pos < len(data):
        name_len = data[pos]
        if name_len == 0:
            raise CodecError(f"header at offset {pos} has an empty name")
        raw_name, pos = _take(data, pos + 1, name_len, "a header name")
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise CodecError(f"header name at offset {pos - name_len} is not UTF-8") from None
        type_byte, pos = _take(data, pos, 1, f"the type of header {name!r}")
        try:
            kind = HeaderType(type_byte[0])
        except ValueError:
            raise CodecError(f"header {name!r} has unknown type {type_byte[0]}") from None
        value: HeaderValue
        if kind in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
            value = kind is HeaderType.BOOL_TRUE
        elif kind in _INT_FORMATS:
            fmt = _INT_FORMATS[kind]
            raw, pos = _take(data, pos, struct.calcsize(fmt), f"the value of {name!r}")
            value = struct.unpack(fmt, raw)[0]
        elif kind is HeaderType.UUID:
            raw, pos = _take(data, pos, 16, f"the value of {name!r}")
            value = uuid.UUID(bytes=raw)
        else:
            raw_len, pos = _take(data, pos, 2, f"the length of {name!r}")
            raw, pos = _take(data, pos, struct.unpack(">H", raw_len)[0], f"the value of {name!r}")
            if kind is HeaderType.STRING:
                try:
                    value = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise CodecError(f"header {name!r} is a STRING but not UTF-8") from None
            else:
                value = raw
        headers.append(Header(name, kind, value))
    return tuple(headers)


def check_prelude(prelude: bytes, max_len: int = MAX_MESSAGE_LEN) -> tuple[int, int]:
    """Validate a 12-byte prelude; return (total_len, headers_len)."""
    total, headers_len, crc = struct.unpack(">III", prelude)
    computed = zlib.crc32(prelude[:8])
    if crc != computed:
        raise CodecError(
            f"prelude CRC mismatch: message says {crc:#010x}, computed {computed:#010x}"
        )
    if total < MIN_MESSAGE_LEN:
        raise CodecError(f"total length {total} is below the {MIN_MESSAGE_LEN}-byte minimum")
    if total > max_len:
        raise CodecError(f"total length {total} exceeds the {max_len}-byte limit")
    if headers_len > MAX_HEADERS_LEN or headers_len > total - MIN_MESSAGE_LEN:
        raise CodecError(f"headers length {headers_len} does not fit a {total}-byte message")
    return total, headers_len


def decode_message(data: bytes) -> Message:
    """Decode exactly one complete message (no bytes before or after it)."""
    if len(data) < MIN_MESSAGE_LEN:
        raise CodecError(f"{len(data)} bytes is shorter than the {MIN_MESSAGE_LEN}-byte minimum")
    total, headers_len = check_prelude(data[:PRELUDE_LEN])
    if total != len(data):
        raise CodecError(f"prelude announces {total} bytes but {len(data)} were given")
    (crc,) = struct.unpack(">I", data[-CRC_LEN:])
    computed = zlib.crc32(data[:-CRC_LEN])
    if crc != computed:
        raise CodecError(
            f"message CRC mismatch: message says {crc:#010x}, computed {computed:#010x}"
        )
    headers_end = PRELUDE_LEN + headers_len
    return Message(decode_headers(data[PRELUDE_LEN:headers_end]), data[headers_end:-CRC_LEN])


class MessageDecoder:
    """Incremental decoder for a byte stream; buffers at most one partial message."""

    def __init__(self, max_len: int = MAX_MESSAGE_LEN) -> None:
        self._buffer = bytearray()
        self._max_len = max_len

    def feed(self, data: bytes) -> list[Message]:
        """Add received bytes; return the messages they complete. Raises CodecError."""
        self._buffer += data
        messages: list[Message] = []
        while len(self._buffer) >= PRELUDE_LEN:
            # Check the prelude as soon as it arrives, so an absurd length is refused before
            # we wait for (and buffer) the bytes it announces.
            total, _ = check_prelude(bytes(self._buffer[:PRELUDE_LEN]), self._max_len)
            if len(self._buffer) < total:
                break
            messages.append(decode_message(bytes(self._buffer[:total])))
            del self._buffer[:total]
        return messages

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete message."""
        return len(self._buffer)
