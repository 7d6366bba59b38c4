"""Shared plumbing of the peers: free ports, waiting for a port, and "fail under CI, else skip"."""

from __future__ import annotations

import os
import socket
import time

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
