"""Event-stream RPC conventions on top of the framing in ``codec``.

Every RPC message carries three int32 headers: ``:message-type``, ``:message-flags`` and
``:stream-id`` (the names and values of aws-c-event-stream's ``event_stream_rpc.h``, which the
awsiotsdk client is built on). Stream 0 carries connection-level messages (CONNECT, ping,
errors); each operation opens the next stream id with a message naming its ``operation``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

from tests.nucleus.codec import CodecError, Header, HeaderType, Message, encode_message

MESSAGE_TYPE = ":message-type"
MESSAGE_FLAGS = ":message-flags"
STREAM_ID = ":stream-id"
OPERATION = "operation"
VERSION = ":version"
CONTENT_TYPE = ":content-type"
SERVICE_MODEL_TYPE = "service-model-type"
JSON = "application/json"
PROTOCOL_VERSION = "0.1.0"

_RPC_HEADERS = {MESSAGE_TYPE.lower(), MESSAGE_FLAGS.lower(), STREAM_ID.lower()}


class MessageType(IntEnum):
    """``:message-type`` values."""

    APPLICATION_MESSAGE = 0
    APPLICATION_ERROR = 1
    PING = 2
    PING_RESPONSE = 3
    CONNECT = 4
    CONNECT_ACK = 5
    PROTOCOL_ERROR = 6
    INTERNAL_ERROR = 7


class MessageFlag(IntFlag):
    """``:message-flags`` bits."""

    NONE = 0
    CONNECTION_ACCEPTED = 1
    TERMINATE_STREAM = 2


@dataclass(frozen=True)
class RpcMessage:
    """A decoded RPC message: its metadata, the other headers, and the payload."""

    type: MessageType
    flags: MessageFlag
    stream_id: int
    headers: tuple[Header, ...]
    payload: bytes

    def string(self, name: str) -> str | None:
        """The value of the STRING header ``name``, or None when absent or of another type."""
        lowered = name.lower()
        for header in self.headers:
            if header.name.lower() == lowered and header.type is HeaderType.STRING:
                assert isinstance(header.value, str)
                return header.value
        return None


def parse(message: Message) -> RpcMessage:
    """Read the RPC metadata of a framed message; CodecError names a missing or bad header."""
    values: dict[str, int] = {}
    for name in (MESSAGE_TYPE, MESSAGE_FLAGS, STREAM_ID):
        header = message.get(name)
        if header is None or header.type is not HeaderType.INT32:
            raise CodecError(f"RPC message lacks the int32 header {name}")
        assert isinstance(header.value, int)
        values[name] = header.value
    try:
        kind = MessageType(values[MESSAGE_TYPE])
    except ValueError:
        raise CodecError(f"unknown {MESSAGE_TYPE} {values[MESSAGE_TYPE]}") from None
    if values[STREAM_ID] < 0:
        raise CodecError(f"negative {STREAM_ID} {values[STREAM_ID]}")
    others = tuple(h for h in message.headers if h.name.lower() not in _RPC_HEADERS)
    return RpcMessage(
        kind, MessageFlag(values[MESSAGE_FLAGS]), values[STREAM_ID], others, message.payload
    )


def build(
    kind: MessageType,
    stream_id: int = 0,
    flags: MessageFlag = MessageFlag.NONE,
    headers: tuple[Header, ...] = (),
    payload: bytes = b"",
) -> bytes:
    """Frame an RPC message: the three metadata headers, then ``headers``, then ``payload``."""
    meta = (
        Header.int32(MESSAGE_TYPE, int(kind)),
        Header.int32(MESSAGE_FLAGS, int(flags)),
        Header.int32(STREAM_ID, stream_id),
    )
    return encode_message(meta + headers, payload)


def json_reply(
    kind: MessageType, stream_id: int, flags: MessageFlag, model: str, body: dict[str, Any]
) -> bytes:
    """An application message or error carrying a JSON shape named ``model``."""
    headers = (Header.string(CONTENT_TYPE, JSON), Header.string(SERVICE_MODEL_TYPE, model))
    return build(kind, stream_id, flags, headers, json.dumps(body).encode("utf-8"))
