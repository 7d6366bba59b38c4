"""The event-stream codec of the stand-in: framing, CRCs, every header type, limits."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.nucleus import rpc
from tests.nucleus.codec import (
    MAX_MESSAGE_LEN,
    CodecError,
    Header,
    HeaderType,
    MessageDecoder,
    decode_headers,
    decode_message,
    encode_message,
)

# The empty message of the event-stream test vectors (aws-c-event-stream tests): total length
# 16, no headers, prelude CRC 0x05c248eb, message CRC 0x7d98c8ff.
EMPTY_MESSAGE = bytes.fromhex("000000100000000005c248eb7d98c8ff")

EVERY_TYPE = (
    Header("t", HeaderType.BOOL_TRUE, True),
    Header("f", HeaderType.BOOL_FALSE, False),
    Header("byte-min", HeaderType.BYTE, -128),
    Header("byte-max", HeaderType.BYTE, 127),
    Header("i16", HeaderType.INT16, -32768),
    Header("i32", HeaderType.INT32, 2**31 - 1),
    Header("i64", HeaderType.INT64, -(2**63)),
    Header("bytes", HeaderType.BYTES, bytes(range(256))),
    Header("empty", HeaderType.BYTES, b""),
    Header("str", HeaderType.STRING, "grüße / 東京 ✓"),
    Header("ts", HeaderType.TIMESTAMP, 1_700_000_000_123),
    Header("id", HeaderType.UUID, uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")),
)


def _frame(header_bytes: bytes, payload: bytes = b"") -> bytes:
    """Frame raw header bytes with correct CRCs, to test the header decoder on bad input."""
    total = 16 + len(header_bytes) + len(payload)
    prelude = struct.pack(">II", total, len(header_bytes))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + header_bytes + payload
    return body + struct.pack(">I", zlib.crc32(body))


def test_empty_message_matches_the_published_test_vector() -> None:
    assert encode_message([]) == EMPTY_MESSAGE
    assert decode_message(EMPTY_MESSAGE).headers == ()


def test_every_header_type_round_trips_with_its_wire_layout() -> None:
    data = encode_message(EVERY_TYPE, b'{"k": 1}')
    decoded = decode_message(data)
    assert decoded.headers == EVERY_TYPE
    assert decoded.payload == b'{"k": 1}'
    # Spot-check the layout: name_len, name, type, then a big-endian u16 length for strings.
    string_header = "grüße / 東京 ✓".encode()
    assert b"\x03str\x07" + struct.pack(">H", len(string_header)) + string_header in data
    assert b"\x02ts\x08" + struct.pack(">q", 1_700_000_000_123) in data


def test_longest_values_round_trip() -> None:
    headers = (Header("n" * 255, HeaderType.STRING, "x" * 0xFFFF),)
    assert decode_message(encode_message(headers)).headers == headers


_header = st.one_of(
    st.booleans().map(lambda b: Header.boolean("b", b)),
    st.integers(-(2**7), 2**7 - 1).map(lambda i: Header("i8", HeaderType.BYTE, i)),
    st.integers(-(2**15), 2**15 - 1).map(lambda i: Header("i16", HeaderType.INT16, i)),
    st.integers(-(2**31), 2**31 - 1).map(lambda i: Header.int32("i32", i)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: Header("i64", HeaderType.INT64, i)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: Header("ts", HeaderType.TIMESTAMP, i)),
    st.binary(max_size=300).map(lambda b: Header("bin", HeaderType.BYTES, b)),
    st.text(max_size=100).map(lambda s: Header.string("s", s)),
    st.uuids().map(lambda u: Header("u", HeaderType.UUID, u)),
)


@given(st.lists(_header, max_size=12), st.binary(max_size=2000), st.integers(1, 64))
def test_streamed_messages_round_trip_in_any_chunking(
    headers: list[Header], payload: bytes, chunk: int
) -> None:
    data = encode_message(headers, payload) * 2
    decoder = MessageDecoder()
    messages = []
    for start in range(0, len(data), chunk):
        messages += decoder.feed(data[start : start + chunk])
    assert [(m.headers, m.payload) for m in messages] == [(tuple(headers), payload)] * 2
    assert decoder.pending == 0


def test_corrupt_prelude_is_refused_by_its_crc() -> None:
    data = bytearray(encode_message([Header.string("a", "b")]))
    data[5] ^= 0x01  # headers_len
    with pytest.raises(CodecError, match="prelude CRC mismatch"):
        decode_message(bytes(data))
    with pytest.raises(CodecError, match="prelude CRC mismatch"):
        MessageDecoder().feed(bytes(data))


def test_corrupt_payload_is_refused_by_the_message_crc() -> None:
    data = bytearray(encode_message([Header.string("a", "b")], b"payload"))
    data[-6] ^= 0x80
    with pytest.raises(CodecError, match="message CRC mismatch"):
        decode_message(bytes(data))


def test_decoder_refuses_an_oversized_message_from_its_prelude_alone() -> None:
    prelude = struct.pack(">II", MAX_MESSAGE_LEN + 1, 0)
    prelude += struct.pack(">I", zlib.crc32(prelude))
    with pytest.raises(CodecError, match="exceeds"):
        MessageDecoder().feed(prelude)


@pytest.mark.parametrize(
    ("header_bytes", "reason"),
    [
        (b"\x00\x00", "empty name"),
        (b"\x05ab", "truncated inside a header name"),
        (b"\x01a\x0a", "unknown type 10"),
        (b"\x01a\x04\x00\x00", "truncated inside the value"),
        (b"\x01a\x07\x00\x05abc", "truncated inside the value"),
        (b"\x01a\x07\x00\x01\xff", "not UTF-8"),
        (b"\x01a", "truncated inside the type"),
    ],
)
def test_malformed_headers_are_refused_with_the_reason(header_bytes: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match=reason):
        decode_message(_frame(header_bytes))


def _prelude(total: int, headers_len: int) -> bytes:
    head = struct.pack(">II", total, headers_len)
    return head + struct.pack(">I", zlib.crc32(head))


def test_lengths_that_do_not_add_up_are_refused() -> None:
    with pytest.raises(CodecError, match="shorter than the 16-byte minimum"):
        decode_message(EMPTY_MESSAGE[:10])
    with pytest.raises(CodecError, match="announces 16 bytes but 21 were given"):
        decode_message(EMPTY_MESSAGE + b"extra")
    with pytest.raises(CodecError, match="below the 16-byte minimum"):
        MessageDecoder().feed(_prelude(8, 0))
    with pytest.raises(CodecError, match="headers length 1 does not fit a 16-byte message"):
        MessageDecoder().feed(_prelude(16, 1))
    assert decode_headers(b"") == ()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (Header("i8", HeaderType.BYTE, 128), "does not fit BYTE"),
        (Header("i32", HeaderType.INT32, True), "needs an int"),
        (Header("", HeaderType.STRING, "x"), "1..255 bytes"),
        (Header("n" * 256, HeaderType.STRING, "x"), "1..255 bytes"),
        (Header("s", HeaderType.STRING, "x" * 0x10000), "exceeds 65535"),
        (Header("s", HeaderType.STRING, b"x"), "needs a str"),
        (Header("u", HeaderType.UUID, "not-a-uuid"), "needs a uuid"),
        (Header("b", HeaderType.BYTES, 3), "needs bytes"),
    ],
)
def test_unencodable_headers_are_refused_with_the_reason(header: Header, reason: str) -> None:
    with pytest.raises(CodecError, match=reason):
        encode_message([header])


def test_rpc_parse_requires_the_three_int32_metadata_headers() -> None:
    built = decode_message(rpc.build(rpc.MessageType.PING, 0, payload=b"hi"))
    parsed = rpc.parse(built)
    assert (parsed.type, parsed.flags, parsed.stream_id, parsed.payload) == (
        rpc.MessageType.PING,
        rpc.MessageFlag.NONE,
        0,
        b"hi",
    )
    no_stream = decode_message(
        encode_message([Header.int32(":message-type", 2), Header.int32(":message-flags", 0)])
    )
    with pytest.raises(CodecError, match=":stream-id"):
        rpc.parse(no_stream)
    wrong_type = decode_message(
        encode_message(
            [
                Header.string(":message-type", "2"),
                Header.int32(":message-flags", 0),
                Header.int32(":stream-id", 0),
            ]
        )
    )
    with pytest.raises(CodecError, match=":message-type"):
        rpc.parse(wrong_type)
    unknown = decode_message(
        encode_message(
            [
                Header.int32(":message-type", 42),
                Header.int32(":message-flags", 0),
                Header.int32(":stream-id", 0),
            ]
        )
    )
    with pytest.raises(CodecError, match="unknown :message-type 42"):
        rpc.parse(unknown)
