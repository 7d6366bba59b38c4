"""The stand-in's RPC protocol rules, over its real socket with a hand-driven client."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.nucleus import rpc
from tests.nucleus.codec import Header, MessageDecoder
from tests.nucleus.rpc import MessageFlag, MessageType, RpcMessage
from tests.nucleus.standin import NucleusStandIn

pytestmark = pytest.mark.peer


class RawClient:
    """A minimal blocking eventstream-RPC client built on the stand-in's own codec."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.decoder = MessageDecoder()
        self.pending: list[RpcMessage] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> RpcMessage | None:
        """The next message, or None once the stand-in has closed the connection."""
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.pending += [rpc.parse(m) for m in self.decoder.feed(data)]
        return self.pending.pop(0)

    def connect(self, token: str) -> RpcMessage | None:
        headers = (Header.string(rpc.VERSION, rpc.PROTOCOL_VERSION),)
        payload = json.dumps({"authToken": token}).encode()
        self.send(rpc.build(MessageType.CONNECT, headers=headers, payload=payload))
        return self.receive()


@pytest.fixture
def raw(nucleus: NucleusStandIn) -> Iterator[RawClient]:
    client = RawClient(str(nucleus.socket_path))
    try:
        yield client
    finally:
        client.sock.close()


def _error_text(message: RpcMessage | None, kind: MessageType) -> str:
    assert message is not None and message.type is kind
    assert message.string(rpc.CONTENT_TYPE) == rpc.JSON
    text = json.loads(message.payload)["message"]
    assert isinstance(text, str)
    return text


def test_connect_ack_carries_the_accepted_flag(nucleus: NucleusStandIn, raw: RawClient) -> None:
    ack = raw.connect(nucleus.svcuid)
    assert ack is not None
    assert (ack.type, ack.flags, ack.stream_id) == (
        MessageType.CONNECT_ACK,
        MessageFlag.CONNECTION_ACCEPTED,
        0,
    )


def test_refused_connect_ack_lacks_the_flag_then_the_socket_closes(
    nucleus: NucleusStandIn, raw: RawClient
) -> None:
    ack = raw.connect("wrong")
    assert ack is not None and ack.type is MessageType.CONNECT_ACK
    assert ack.flags == MessageFlag.NONE
    assert raw.receive() is None
    assert nucleus.auth_failures == 1


def test_ping_is_answered_with_its_payload(nucleus: NucleusStandIn, raw: RawClient) -> None:
    raw.connect(nucleus.svcuid)
    raw.send(rpc.build(MessageType.PING, payload=b"are you there"))
    pong = raw.receive()
    assert pong is not None
    assert (pong.type, pong.stream_id, pong.payload) == (
        MessageType.PING_RESPONSE,
        0,
        b"are you there",
    )
    assert nucleus.pings_answered == 1


def test_a_message_before_connect_is_a_protocol_error(raw: RawClient) -> None:
    raw.send(rpc.build(MessageType.PING))
    assert "first message must be CONNECT" in _error_text(raw.receive(), MessageType.PROTOCOL_ERROR)
    assert raw.receive() is None


def test_a_corrupt_frame_is_a_protocol_error_naming_the_crc(
    nucleus: NucleusStandIn, raw: RawClient
) -> None:
    raw.connect(nucleus.svcuid)
    frame = bytearray(rpc.build(MessageType.PING, payload=b"x"))
    frame[-5] ^= 0xFF  # the payload byte
    raw.send(bytes(frame))
    assert "message CRC mismatch" in _error_text(raw.receive(), MessageType.PROTOCOL_ERROR)
    assert raw.receive() is None
    assert nucleus.wait_for(lambda: nucleus.open_connections == 0)


def test_a_stream_without_an_operation_is_a_protocol_error(
    nucleus: NucleusStandIn, raw: RawClient
) -> None:
    raw.connect(nucleus.svcuid)
    raw.send(rpc.build(MessageType.APPLICATION_MESSAGE, stream_id=1, payload=b"{}"))
    text = _error_text(raw.receive(), MessageType.PROTOCOL_ERROR)
    assert text == "stream 1 opened without an operation"


def test_a_second_connect_is_a_protocol_error(nucleus: NucleusStandIn, raw: RawClient) -> None:
    raw.connect(nucleus.svcuid)
    assert "CONNECT is not valid" in _error_text(
        raw.connect(nucleus.svcuid), MessageType.PROTOCOL_ERROR
    )


def test_operation_reply_ends_the_stream_and_names_its_model(
    nucleus: NucleusStandIn, raw: RawClient
) -> None:
    raw.connect(nucleus.svcuid)
    headers = (
        Header.string(rpc.OPERATION, "aws.greengrass#UpdateState"),
        Header.string(rpc.CONTENT_TYPE, rpc.JSON),
        Header.string(rpc.SERVICE_MODEL_TYPE, "aws.greengrass#UpdateStateRequest"),
    )
    raw.send(
        rpc.build(
            MessageType.APPLICATION_MESSAGE, 1, headers=headers, payload=b'{"state": "RUNNING"}'
        )
    )
    reply = raw.receive()
    assert reply is not None
    assert (reply.type, reply.flags, reply.stream_id) == (
        MessageType.APPLICATION_MESSAGE,
        MessageFlag.TERMINATE_STREAM,
        1,
    )
    assert reply.string(rpc.SERVICE_MODEL_TYPE) == "aws.greengrass#UpdateStateResponse"
    assert json.loads(reply.payload) == {}
    # A request whose model does not match the operation is refused, not guessed at.
    wrong = (*headers[:2], Header.string(rpc.SERVICE_MODEL_TYPE, "aws.greengrass#Other"))
    raw.send(rpc.build(MessageType.APPLICATION_MESSAGE, 2, headers=wrong, payload=b"{}"))
    error = raw.receive()
    assert error is not None and error.type is MessageType.APPLICATION_ERROR
    assert error.string(rpc.SERVICE_MODEL_TYPE) == "aws.greengrass#ServiceError"
    assert nucleus.states == ["RUNNING"]
