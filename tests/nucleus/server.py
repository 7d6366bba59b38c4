"""The stand-in's socket side: one thread, one selector, every client socket non-blocking.

All socket work happens on the server thread; other threads hand it work through ``call``,
which queues a function and wakes the selector through a socketpair. Nothing polls: the
thread sleeps in ``select()`` with no timeout until a socket or the wake-up pipe is ready.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import json
import selectors
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from tests.nucleus import rpc
from tests.nucleus.codec import CodecError, Header, MessageDecoder
from tests.nucleus.operations import CONFIGURATION_UPDATE_EVENTS, Subscription, handle
from tests.nucleus.operations import configuration_event as _event
from tests.nucleus.rpc import MessageFlag, MessageType, RpcMessage
from tests.nucleus.state import NucleusState

T = TypeVar("T")
_READ_SIZE = 64 * 1024


class _Client:
    """One client connection and its RPC state."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = MessageDecoder()
        self.out = bytearray()
        self.caller: str | None = None  # set once CONNECT was accepted
        self.streams: dict[int, Subscription | None] = {}  # open streams (subscriptions)
        self.last_stream = 0
        self.closing = False  # close once ``out`` is flushed; read nothing more
        self.closed = False
        self.events = selectors.EVENT_READ  # what the selector watches for this socket


class RpcServer:
    """Eventstream-RPC server on a Unix socket, answering from a ``NucleusState``."""

    def __init__(self, socket_path: Path, state: NucleusState) -> None:
        self.socket_path = socket_path
        self._state = state
        self._clients: set[_Client] = set()
        self._tasks: collections.deque[tuple[Callable[[], Any], Future[Any]]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        """Whether the server thread is up."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Bind and listen on the socket path, then start the server thread."""
        if self.running:
            raise RuntimeError("the stand-in is already running")
        path = self.socket_path
        if path.is_socket():  # left behind by a run that was killed
            path.unlink()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(str(path))
            self._listener.listen(16)
        except OSError:
            self._listener.close()
            raise
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._run_tasks)
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="nucleus-standin", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every client and the listener, remove the socket file, join the thread."""
        if self._thread is None:
            return
        if self._thread.is_alive():
            self.call(self._request_stop, timeout)
            self._thread.join(timeout)
        self._thread = None
        self.socket_path.unlink(missing_ok=True)

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn`` on the server thread and return its result."""
        if not self.running:
            raise RuntimeError("the stand-in is not running")
        future: Future[T] = Future()
        self._tasks.append((fn, future))
        # A full pipe means wake-ups are already pending: the thread will see this task too.
        with contextlib.suppress(BlockingIOError):
            self._wake_w.send(b"\0")
        return future.result(timeout)

    # -- server thread -------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._selector.select():
                    if isinstance(key.data, _Client):
                        self._service(key.data, mask)
                    else:
                        key.data()
        finally:
            for client in list(self._clients):
                self._close(client)
            for fn, future in self._drain():
                future.set_exception(RuntimeError(f"the stand-in stopped before running {fn}"))
            self._selector.close()
            for sock in (self._listener, self._wake_r, self._wake_w):
                sock.close()

    def _drain(self) -> list[tuple[Callable[[], Any], Future[Any]]]:
        tasks = []
        while self._tasks:
            tasks.append(self._tasks.popleft())
        return tasks

    def _run_tasks(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        for fn, future in self._drain():
            try:
                future.set_result(fn())
            except Exception as exc:  # handed back to the calling thread
                future.set_exception(exc)

    def _request_stop(self) -> None:
        self._stopping = True

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        client = _Client(sock)
        self._clients.add(client)
        self._selector.register(sock, selectors.EVENT_READ, client)
        self._state.adjust("open", 1)

    def _service(self, client: _Client, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush(client)
        if client.closed or client.closing or not mask & selectors.EVENT_READ:
            return
        try:
            data = client.sock.recv(_READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._close(client)
            return
        try:
            for message in client.decoder.feed(data):
                self._dispatch(client, rpc.parse(message))
                if client.closing or client.closed:
                    return
        except CodecError as exc:
            self._protocol_error(client, str(exc))
        except Exception as exc:  # a stand-in bug: tell the client, keep serving the others
            self._state.record_error(f"{type(exc).__name__}: {exc}")
            self._connection_error(client, MessageType.INTERNAL_ERROR, "internal error")

    def _dispatch(self, client: _Client, msg: RpcMessage) -> None:
        if client.caller is None:
            if msg.type is MessageType.CONNECT and msg.stream_id == 0:
                self._connect(client, msg)
            else:
                self._protocol_error(client, "the first message must be CONNECT on stream 0")
        elif msg.stream_id == 0:
            if msg.type is MessageType.PING:
                self._state.adjust("pings", 1)  # counted before the answer leaves: no race
                self._send(client, rpc.build(MessageType.PING_RESPONSE, payload=msg.payload))
            elif msg.type is not MessageType.PING_RESPONSE:
                self._protocol_error(client, f"{msg.type.name} is not valid on stream 0 here")
        elif msg.type not in (MessageType.APPLICATION_MESSAGE, MessageType.APPLICATION_ERROR):
            self._protocol_error(client, f"{msg.type.name} is not valid on stream {msg.stream_id}")
        elif msg.stream_id in client.streams:
            # Our operations take no client events; the client only ends the stream.
            if msg.flags & MessageFlag.TERMINATE_STREAM:
                self._end_stream(client, msg.stream_id)
        elif msg.stream_id > client.last_stream:
            self._operation(client, msg)
        # else: a late message on a stream we already ended; the C server ignores these too.

    def _connect(self, client: _Client, msg: RpcMessage) -> None:
        try:
            token = json.loads(msg.payload or b"{}").get("authToken")
        except (ValueError, AttributeError):
            token = None
        accepted = (
            msg.string(rpc.VERSION) == rpc.PROTOCOL_VERSION
            and isinstance(token, str)
            and hmac.compare_digest(token.encode(), self._state.svcuid.encode())
        )
        self._state.record_connect(msg.headers, accepted)
        flags = MessageFlag.CONNECTION_ACCEPTED if accepted else MessageFlag.NONE
        if accepted:
            client.caller = self._state.component_name
        else:
            client.closing = True  # a refused CONNECT_ACK ends the connection
        self._send(client, rpc.build(MessageType.CONNECT_ACK, flags=flags))

    def _operation(self, client: _Client, msg: RpcMessage) -> None:
        client.last_stream = msg.stream_id
        operation = msg.string(rpc.OPERATION)
        if operation is None:
            self._protocol_error(client, f"stream {msg.stream_id} opened without an operation")
            return
        assert client.caller is not None
        reply = handle(
            self._state, client.caller, operation, msg.string(rpc.SERVICE_MODEL_TYPE), msg.payload
        )
        stays_open = reply.subscription is not None and not msg.flags & MessageFlag.TERMINATE_STREAM
        kind = MessageType.APPLICATION_ERROR if reply.error else MessageType.APPLICATION_MESSAGE
        flags = MessageFlag.NONE if stays_open else MessageFlag.TERMINATE_STREAM
        if stays_open:  # registered before the response leaves, so the client sees it counted
            client.streams[msg.stream_id] = reply.subscription
            self._state.adjust("subs", 1)
        self._send(client, rpc.json_reply(kind, msg.stream_id, flags, reply.model, reply.body))

    def _end_stream(self, client: _Client, stream_id: int) -> None:
        if client.streams.pop(stream_id, None) is not None:
            self._state.adjust("subs", -1)

    def _protocol_error(self, client: _Client, message: str) -> None:
        self._connection_error(client, MessageType.PROTOCOL_ERROR, message)

    def _connection_error(self, client: _Client, kind: MessageType, message: str) -> None:
        """Send a connection-level error (JSON ``{"message": ...}``) and close after it."""
        headers = (Header.string(rpc.CONTENT_TYPE, rpc.JSON),)
        body = json.dumps({"message": message}).encode()
        client.closing = True
        self._send(client, rpc.build(kind, 0, headers=headers, payload=body))

    def _send(self, client: _Client, data: bytes) -> None:
        if not client.closed:
            client.out += data
            self._flush(client)

    def _flush(self, client: _Client) -> None:
        try:
            while client.out:
                del client.out[: client.sock.send(client.out)]
        except BlockingIOError:
            pass
        except OSError:
            self._close(client)
            return
        if client.closing and not client.out:
            self._close(client)
            return
        events = 0 if client.closing else selectors.EVENT_READ
        events |= selectors.EVENT_WRITE if client.out else 0
        if events != client.events:  # most sends flush at once: spare the epoll_ctl call
            client.events = events
            self._selector.modify(client.sock, events, client)

    def _close(self, client: _Client) -> None:
        if client.closed:
            return
        client.closed = True
        self._clients.discard(client)
        self._selector.unregister(client.sock)
        client.sock.close()
        self._state.adjust("open", -1)
        open_subs = sum(1 for sub in client.streams.values() if sub is not None)
        if open_subs:
            self._state.adjust("subs", -open_subs)

    # -- run through ``call`` by the façade ----------------------------------------------------

    def drop_all(self) -> int:
        """Close every client socket without a goodbye; return how many were open."""
        clients = list(self._clients)
        for client in clients:
            self._close(client)
        return len(clients)

    def broadcast_update(self, component: str, key_path: tuple[str, ...]) -> int:
        """Send a ConfigurationUpdateEvents to each covering subscription; return how many."""
        sent = 0
        for client in list(self._clients):
            for stream_id, sub in list(client.streams.items()):
                if sub is not None and sub.covers(component, key_path):
                    body = _event(component, key_path)
                    self._send(
                        client,
                        rpc.json_reply(
                            MessageType.APPLICATION_MESSAGE,
                            stream_id,
                            MessageFlag.NONE,
                            CONFIGURATION_UPDATE_EVENTS,
                            body,
                        ),
                    )
                    sent += 1
        return sent

    def ping_all(self, headers: tuple[Header, ...], payload: bytes) -> int:
        """Send a PING to every connected (authenticated) client; return how many."""
        clients = [c for c in self._clients if c.caller is not None and not c.closing]
        for client in clients:
            self._send(client, rpc.build(MessageType.PING, headers=headers, payload=payload))
        return len(clients)
