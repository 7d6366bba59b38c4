"""A stand-in for the Greengrass token exchange service (TES): the container credentials endpoint.

Behaves like the nucleus's ``CredentialRequestHandler``: only
``GET /2016-11-01/credentialprovider/``; the ``Authorization`` header must equal the component's
token (else 403 with an empty body); a 200 carries ``{AccessKeyId, SecretAccessKey, Token,
Expiration}``. ``mode`` makes it relay an IoT-side 403 (the body the nucleus writes), answer
500, or hang without answering.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.peers.base import serving

PATH = "/2016-11-01/credentialprovider/"
# What the nucleus relays when the IoT credentials provider refuses the certificate.
FORBIDDEN_BODY = (
    b'TES responded with status code: 403. Caching response. {"message":"Access Denied"}'
)


@dataclass
class TokenExchangeService:
    """State of the stand-in; tests change ``mode`` and ``credentials`` between runs."""

    token: str
    port: int = 0
    mode: str = "ok"
    """``ok``, ``forbidden`` (IoT refused the certificate), ``error`` (500), ``hang``."""
    credentials: dict[str, str] = field(default_factory=dict)
    expiration: datetime = field(
        default_factory=lambda: datetime.now(timezone.utc) + timedelta(hours=1)
    )
    requests: list[dict[str, str | None]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def uri(self) -> str:
        """What the nucleus puts in AWS_CONTAINER_CREDENTIALS_FULL_URI."""
        return f"http://localhost:{self.port}{PATH}"

    def env(self) -> dict[str, str]:
        """The variables a component depending on TES receives."""
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.uri,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.token,
        }

    def serve(self, creds: dict[str, Any]) -> None:
        """Hand out these STS-style credentials (AccessKeyId, SecretAccessKey, SessionToken)."""
        self.mode = "ok"
        self.credentials = {
            "AccessKeyId": creds["AccessKeyId"],
            "SecretAccessKey": creds["SecretAccessKey"],
            "Token": creds.get("SessionToken", ""),
        }
        self.expiration = datetime.now(timezone.utc) + timedelta(hours=1)


def _handler(state: TokenExchangeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if body:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.requests.append(
                {"path": self.path, "authorization": self.headers.get("Authorization")}
            )
            if self.path != PATH:
                return self._send(400)
            if self.headers.get("Authorization") != state.token:
                return self._send(403)  # the nucleus's UnauthenticatedException: empty body
            if state.mode == "hang":
                state.release.wait(60)
                return None
            if state.mode == "forbidden":
                return self._send(403, FORBIDDEN_BODY)
            if state.mode == "error":
                return self._send(500, b"Failed to get connection")
            payload = {
                **state.credentials,
                "Expiration": state.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            return self._send(200, json.dumps(payload).encode())

    return Handler


@pytest.fixture
def tes() -> Iterator[TokenExchangeService]:
    """A running TES stand-in on a free loopback port (per test: its state is the test's)."""
    state = TokenExchangeService(token="tes-token-" + "7" * 24)
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _handler(state)), "tes-standin") as port:
        state.port = port
        try:
            yield state
        finally:
            state.release.set()  # let a held answer go before the server stops
