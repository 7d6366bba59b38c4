"""Peers for the "no answer" and "odd answer" paths: a closed port, a server that accepts and
never answers, and an HTTP server that gives one canned answer to every request (an S3
region redirect, an ExpiredToken, a 503 SlowDown...)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.peers.base import serving


@pytest.fixture
def closed_port() -> int:
    """A loopback port with no listener: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class Blackhole:
    """Accepts TCP connections and never sends a byte."""

    port: int
    accepted: list[socket.socket] = field(default_factory=list)


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    """A listener that accepts and then stays silent until the test ends."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    state = Blackhole(listener.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            state.accepted.append(conn)

    thread = threading.Thread(target=accept, name="blackhole", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(2)
        for conn in state.accepted:
            conn.close()
        listener.close()


@dataclass
class Canned:
    """Answers every request with ``status``, ``headers`` and ``body``; records what it got."""

    port: int = 0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    requests: list[dict[str, Any]] = field(default_factory=list)
    respond: Callable[[dict[str, Any]], tuple[int, dict[str, str], bytes]] | None = None
    """When set, computes the answer from the request (method, path, headers) instead."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``."""
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        """Set the canned answer (header names with ``_`` become ``-``)."""
        self.status, self.body = status, body
        self.headers = {k.replace("_", "-"): v for k, v in headers.items()}


@pytest.fixture
def canned() -> Iterator[Canned]:
    """An HTTP server with one configurable answer for every method and path."""
    state = Canned()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            request = {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "client_port": self.client_address[1],
            }
            state.requests.append(request)
            status, headers, body = state.status, state.headers, state.body
            if state.respond is not None:
                status, headers, body = state.respond(request)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            body = b"" if self.command == "HEAD" else body
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler), "canned") as port:
        state.port = port
        yield state
