"""Two more loopback peers for odd answers: an HTTP server whose answers trickle in (headers at
once, then the body a few bytes at a time: a slow body, not a slow start), and a canned-answer
server behind mutual TLS, standing in for the AWS IoT credentials provider.

Use them from a test module with ``from tests.hostile.peers import trickle, tls_canned``.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.peers.base import serving
from tests.peers.tls import Pair, ca, leaf, mtls_http_server


@dataclass
class Trickle:
    """An HTTP/1.1 server whose answers come slowly: a GET gets its headers at once and then
    ``body`` in ``chunk``-byte pieces, one per ``interval``; a HEAD gets its headers after
    ``head_delay``. Keep-alive connections are served request after request."""

    port: int = 0
    body: bytes = b"{" + b" " * 99_999
    chunk: int = 1
    interval: float = 0.2
    head_delay: float = 60.0
    requests: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``."""
        return f"http://127.0.0.1:{self.port}"


def _read_request(conn: socket.socket, pending: bytes) -> tuple[str, bytes] | None:
    """(request line, leftover bytes) of the next request, its body skipped; None at EOF."""
    while b"\r\n\r\n" not in pending:
        if len(pending) > 65536:
            return None
        chunk = conn.recv(4096)
        if not chunk:
            return None
        pending += chunk
    head, _, rest = pending.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return lines[0], rest[length:]


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    """A slow-answer HTTP server on a free loopback port."""
    state = Trickle()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn: socket.socket = self.request
            pending = b""
            try:
                while not state.stop.is_set():
                    read = _read_request(conn, pending)
                    if read is None:
                        return
                    line, pending = read
                    state.requests.append(line)
                    if not self._answer(conn, line.split(" ", 1)[0]):
                        return
            except OSError:  # the client gave up: what the tests want to see
                return

        def _answer(self, conn: socket.socket, method: str) -> bool:
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
                + f"Content-Length: {len(state.body)}\r\n\r\n".encode()
            )
            if method == "HEAD":
                if state.stop.wait(state.head_delay):
                    return False
                conn.sendall(head)
                return True
            conn.sendall(head)
            for start in range(0, len(state.body), state.chunk):
                if state.stop.wait(state.interval):
                    return False
                conn.sendall(state.body[start : start + state.chunk])
            return True

    with serving(socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler), "trickle") as port:
        state.port = port
        try:
            yield state
        finally:
            state.stop.set()  # end the answers in flight before the server stops


@dataclass
class TlsCanned:
    """An HTTPS server (server cert from its own CA) with one canned answer for every GET."""

    server_ca: Pair
    device_ca: Pair
    device: Pair
    port: int = 0
    status: int = 200
    body: bytes = b"{}"
    requests: list[str] = field(default_factory=list)
    respond: Callable[[str], tuple[int, bytes]] | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` as ``s3.credentials.endpoint`` takes it."""
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def tls_canned(tmp_path: Path) -> Iterator[TlsCanned]:
    """Mutual TLS like the AWS IoT credentials provider, answering whatever the test sets."""
    pki = tmp_path / "tls-canned-pki"
    server_ca = ca(pki, "Canned Server CA")
    device_ca = ca(pki, "Canned Device CA")
    state = TlsCanned(server_ca, device_ca, leaf(pki, device_ca, "pi-42", server=False))
    server_pair = leaf(pki, server_ca, "canned-credentials", server=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 5

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            state.requests.append(self.path)
            status, body = state.status, state.body
            if state.respond is not None:
                status, body = state.respond(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with mtls_http_server(Handler, server_pair, device_ca, "tls-canned") as port:
        state.port = port
        yield state
