"""A stand-in for the AWS IoT credentials provider: mutual-TLS HTTPS on loopback.

``GET /role-aliases/<alias>/credentials`` with the ``x-amzn-iot-thingname`` header and a client
certificate signed by the device CA answers ``{"credentials": {accessKeyId, secretAccessKey,
sessionToken, expiration}}``, as the real endpoint does:
https://docs.aws.amazon.com/iot/latest/developerguide/authorizing-direct-aws.html
``mode`` makes it answer 403 (policy lacks iot:AssumeRoleWithCertificate) or 404 (no such alias).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.peers.tls import Pair, ca, leaf, mtls_http_server


@dataclass
class IotCredentialsProvider:
    """State and PKI of the stand-in."""

    role_alias: str
    server_ca: Pair
    device_ca: Pair
    device: Pair
    port: int = 0
    mode: str = "ok"
    """``ok``, ``forbidden`` (403) or ``missing_alias`` (404)."""
    credentials: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """``host:port`` as it would stand in ``iotCredEndpoint`` (or s3.credentials.endpoint)."""
        return f"127.0.0.1:{self.port}"

    def serve(self, creds: dict[str, Any]) -> None:
        """Hand out these STS-style credentials."""
        self.mode = "ok"
        self.credentials = {
            "accessKeyId": creds["AccessKeyId"],
            "secretAccessKey": creds["SecretAccessKey"],
            "sessionToken": creds["SessionToken"],
        }


def _handler(state: IotCredentialsProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 5  # seconds a connection may idle (handshake included)

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            peer = (
                self.connection.getpeercert()
                if isinstance(self.connection, ssl.SSLSocket)
                else None
            )
            thing = self.headers.get("x-amzn-iot-thingname")
            state.requests.append({"path": self.path, "thing": thing, "client_cert": bool(peer)})
            if (
                self.path != f"/role-aliases/{state.role_alias}/credentials"
                or state.mode == "missing_alias"
            ):
                return self._send(404, {"message": "Role alias does not exist"})
            if not thing:
                return self._send(400, {"message": "Invalid thing name passed"})
            if state.mode == "forbidden":
                return self._send(403, {"message": "Access Denied"})
            expiration = datetime.now(timezone.utc) + timedelta(hours=1)
            creds = {**state.credentials, "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ")}
            return self._send(200, {"credentials": creds})

    return Handler


@pytest.fixture
def iot_credentials(tmp_path: Path) -> Iterator[IotCredentialsProvider]:
    """A running mTLS credentials-provider stand-in with its own server CA and device CA."""
    pki = tmp_path / "iot-creds-pki"
    server_ca = ca(pki, "Test Server Root CA")
    device_ca = ca(pki, "Test Device CA")
    server = leaf(pki, server_ca, "credentials-provider", server=True)
    device = leaf(pki, device_ca, "pi-42", server=False)
    state = IotCredentialsProvider(
        "GreengrassCoreTokenExchangeRoleAlias", server_ca, device_ca, device
    )
    with mtls_http_server(_handler(state), server, device_ca, "iot-creds-standin") as port:
        state.port = port
        yield state
