"""Shared plumbing of the peers: free ports, serving on loopback, "fail under CI, else skip"."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def unavailable(reason: str) -> None:
    """A peer cannot start: a test failure under CI (env var CI set), a skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"peer unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"peer unavailable: {reason}")


def wait_for_port(port: int, timeout: float = 20.0) -> bool:
    """Whether 127.0.0.1:port accepts a connection within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@contextmanager
def serving(server: socketserver.TCPServer, name: str) -> Iterator[int]:
    """Serve a threading ``server`` bound to loopback on a daemon thread; yield its port.

    Its handler threads are daemons, so a handler a test left blocked cannot hold the suite;
    the server is shut down and closed on the way out.
    """
    server.daemon_threads = True  # type: ignore[attr-defined]  # a ThreadingMixIn server
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
