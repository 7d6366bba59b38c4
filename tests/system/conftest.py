"""Peers of the system checks: TLS servers with openssl-minted chains, an HTTP server whose
``Date`` is whatever the test says, and Greengrass roots pointing the nucleus at them."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.checks.base import CheckContext, Kept
from agent.checks.system import CHECKS
from agent.report import CheckResult, HealthReport
from agent.runner import build_report, check_once, load_settings
from tests.peers.base import serving
from tests.peers.silent import blackhole, closed_port  # noqa: F401  (fixtures)
from tests.pki import openssl_mint_ca, openssl_mint_device

SERVER_EXT = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"
CLIENT_EXT = "extendedKeyUsage=clientAuth"


@dataclass(frozen=True)
class Pki:
    """Two trust chains minted by the openssl CLI: the one the device trusts, and another."""

    root: Path
    """The device's root CA bundle (``rootCaPath``)."""
    server: tuple[Path, Path]
    """An endpoint certificate and key the bundle verifies."""
    rogue: tuple[Path, Path]
    """An endpoint certificate from another root: not verified by the bundle."""
    device_ca: Path
    device: tuple[Path, Path]
    """The device certificate and key, issued by ``device_ca``."""
    stranger: tuple[Path, Path]
    """A client certificate from another CA: servers that trust ``device_ca`` refuse it."""


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("system-pki")
    root, root_key = openssl_mint_ca(d, "Endpoint Root CA")
    other, other_key = openssl_mint_ca(d, "Other Root CA")
    device_ca, device_ca_key = openssl_mint_ca(d, "Device CA")
    server = openssl_mint_device(d, root, root_key, cn="endpoint", kind="ec", extensions=SERVER_EXT)
    rogue = openssl_mint_device(d, other, other_key, cn="rogue", kind="ec", extensions=SERVER_EXT)
    device = openssl_mint_device(
        d, device_ca, device_ca_key, cn="pi-42", kind="ec", extensions=CLIENT_EXT
    )
    stranger = openssl_mint_device(
        d, other, other_key, cn="stranger", kind="ec", extensions=CLIENT_EXT
    )
    return Pki(root, server, rogue, device_ca, device, stranger)


@dataclass
class TlsPeer:
    """A TLS server on loopback; what each connection did."""

    port: int = 0
    handshakes: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settled(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The connections, once ``count`` of them have ended (or ``timeout`` passed)."""
        deadline = threading.Event()
        for _ in range(int(timeout / 0.05)):
            with self.lock:
                done = [h for h in self.handshakes if "received" in h]
                if len(done) >= count:
                    return done
            deadline.wait(0.05)
        with self.lock:
            return list(self.handshakes)


@contextmanager
def tls_server(
    cert: tuple[Path, Path], *, client_ca: Path | None = None, alpn: list[str] | None = None
) -> Iterator[TlsPeer]:
    """Serve TLS with ``cert``; with ``client_ca`` a client certificate it verifies is required.

    Each connection records whether the handshake succeeded, the ALPN protocol chosen, and how
    many bytes the client sent after the handshake before it closed (the checks send none).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert[0], cert[1])
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    if alpn:
        context.set_alpn_protocols(alpn)
    peer = TlsPeer()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            record: dict[str, Any] = {}
            with peer.lock:
                peer.handshakes.append(record)
            sock: socket.socket = self.request
            sock.settimeout(5)
            try:
                tls = context.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                record.update(ok=False, error=str(exc), received=0)
                return
            record.update(ok=True, alpn=tls.selected_alpn_protocol())
            received = 0
            try:
                while chunk := tls.recv(4096):
                    received += len(chunk)
            except (ssl.SSLError, OSError):
                pass
            record["received"] = received

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    with serving(server, "tls-peer") as port:
        peer.port = port
        yield peer


@dataclass
class DatePeer:
    """An HTTP server answering every request with a ``Date`` of the test's choosing."""

    port: int = 0
    date: str = ""
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``."""
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def date_peer() -> Iterator[DatePeer]:
    state = DatePeer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self) -> None:
            state.requests.append(f"{self.command} {self.path}")
            # send_response_only: no Date of the server's own beside the planted one.
            self.send_response_only(403)
            self.send_header("Date", state.date)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_POST = _answer

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler), "date-peer") as port:
        state.port = port
        yield state


def write_root(
    root: Path,
    pki: Pki,
    nucleus: Mapping[str, Any],
    *,
    device: tuple[Path, Path] | None = None,
    root_ca: Path | None = None,
    agent: Mapping[str, Any] | None = None,
    key_uri: str | None = None,
    services: Mapping[str, Any] | None = None,
) -> Path:
    """A Greengrass root whose nucleus configuration is ``nucleus`` and identity the PKI's
    (``key_uri``: a ``pkcs11:`` key instead of the file; ``services``: more components)."""
    cert, key = device or pki.device
    config = {
        "system": {
            "certificateFilePath": str(cert),
            "privateKeyPath": key_uri or str(key),
            "rootCaPath": str(root_ca or pki.root),
            "rootpath": str(root),
            "thingName": "pi-42",
        },
        "services": {
            "aws.greengrass.Nucleus": {
                "version": "2.14.3",
                "configuration": {"awsRegion": "eu-west-1", **nucleus},
            },
            "gghealth.HealthAgent": {"configuration": dict(agent or {})},
            **(services or {}),
        },
    }
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "effectiveConfig.yaml").write_text(yaml.safe_dump(config))
    return root


def loopback(
    data_port: int, cred_port: int, plane_port: int, host: str = "localhost"
) -> dict[str, Any]:
    """Nucleus settings naming three loopback endpoints (the data plane on the data host)."""
    return {
        "iotDataEndpoint": host,
        "mqtt": {"port": data_port},
        "iotCredEndpoint": f"{host}:{cred_port}",
        "greengrassDataPlaneEndpoint": "iotdata",
        "greengrassDataPlanePort": plane_port,
    }


def run_system(
    root: Path,
    env: Mapping[str, str] | None = None,
    kept: Kept | None = None,
    *,
    only: str | None = "system.endpoint",
    **context: Any,
) -> HealthReport:
    """One cycle of the system area on ``root``: only ``only`` (a check id), or both checks."""
    if only is None:
        return check_once(
            load_settings(root), ["system"], kept=kept, env=dict(env or {}), **context
        )
    settings = load_settings(root)
    ctx = CheckContext(
        config=settings.config,
        greengrass=settings.greengrass,
        kept=kept or Kept(),
        env=dict(env or {}),
        **context,
    )
    return build_report([c for c in CHECKS if c.id == only], ctx)


def results(report: HealthReport, check_id: str) -> list[CheckResult]:
    """The results of ``check_id``."""
    return [r for r in report.checks if r.id == check_id]


def by_role(report: HealthReport) -> dict[str, CheckResult]:
    """``system.endpoint`` results by endpoint role."""
    return {str(r.details.get("role")): r for r in results(report, "system.endpoint")}
