"""A real Mosquitto 2 broker on loopback: TLS, client certificates as identities, per-client ACLs.

``require_certificate true`` + ``use_identity_as_username true`` make the certificate's CN the
username, as AWS IoT makes the certificate the identity; the dynamic-security plugin gives each
username publish/subscribe ACLs and, unlike ``acl_file``, refuses a subscription in the SUBACK
(0x87) rather than silently dropping messages. ``persistence true`` keeps the queued messages of
persistent-session subscribers across :meth:`Mosquitto.stop`/:meth:`Mosquitto.start`, which
tests use to simulate an outage on the same port.

    broker = Mosquitto(tmp_path)
    broker.allow("pi-42", publish=["dt/gghealth/pi-42/#"], subscribe=["cmd/pi-42/#"])
    broker.start()
    device = broker.client_cert("pi-42")      # Pair(cert_path, key_path) signed by broker.ca
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.peers import tls
from tests.peers.base import free_port, unavailable, wait_for_port

DYNSEC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if not found:
        unavailable(f"{name} is not installed (apt-get install mosquitto mosquitto-clients)")
        raise AssertionError("unreachable")
    return found


def dynsec_plugin() -> str:
    """Path of the dynamic-security plugin shipped with the Debian mosquitto package."""
    for candidate in DYNSEC_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "mosquitto"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        listing = ""
    for line in listing.splitlines():
        if line.endswith("mosquitto_dynamic_security.so"):
            return line
    unavailable("mosquitto_dynamic_security.so not found (Debian package mosquitto >= 2.0)")
    raise AssertionError("unreachable")


@dataclass
class Role:
    """One client's ACLs, in dynamic-security terms."""

    publish: list[str] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)


class Mosquitto:
    """One broker process; restartable on the same port with the same state."""

    def __init__(self, workdir: Path) -> None:
        self.binary = _binary("mosquitto")
        self.plugin = dynsec_plugin()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = tls.ca(self.dir / "pki", "Test Broker CA")
        self.server = tls.leaf(self.dir / "pki", self.ca, "broker", server=True)
        self.port = free_port()
        self.roles: dict[str, Role] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The broker's log (every packet: ``log_type all``)."""
        return self.dir / "mosquitto.log"

    def client_cert(self, username: str) -> tls.Pair:
        """A client certificate whose CN is ``username`` (the broker's identity for it)."""
        return tls.leaf(self.dir / "clients", self.ca, username, server=False)

    def allow(
        self, username: str, *, publish: Sequence[str] = (), subscribe: Sequence[str] = ()
    ) -> None:
        """Grant ``username`` these publish topics and subscribe filters (applied at start)."""
        self.roles[username] = Role(list(publish), list(subscribe))

    def _write_config(self) -> Path:
        acls = {
            name: [
                *({"acltype": "publishClientSend", "topic": t, "allow": True} for t in r.publish),
                *({"acltype": "subscribePattern", "topic": t, "allow": True} for t in r.subscribe),
            ]
            for name, r in self.roles.items()
        }
        dynsec = {
            # Deny by default; receiving is allowed so a granted subscription gets its messages.
            "defaultACLAccess": {
                "publishClientSend": False,
                "publishClientReceive": True,
                "subscribe": False,
                "unsubscribe": True,
            },
            "clients": [{"username": n, "roles": [{"rolename": n}]} for n in self.roles],
            "groups": [],
            "roles": [{"rolename": n, "acls": a} for n, a in acls.items()],
        }
        (self.dir / "dynsec.json").write_text(json.dumps(dynsec, indent=1))
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    "user root",  # stay root so the files in the private tmp dir stay readable
                    "persistence true",
                    f"persistence_location {self.dir}/",
                    f"log_dest file {self.log_path}",
                    "log_type all",
                    f"plugin {self.plugin}",
                    f"plugin_opt_config_file {self.dir / 'dynsec.json'}",
                    f"listener {self.port} 127.0.0.1",
                    f"cafile {self.ca.cert_path}",
                    f"certfile {self.server.cert_path}",
                    f"keyfile {self.server.key_path}",
                    "require_certificate true",
                    "use_identity_as_username true",
                    "",
                ]
            )
        )
        return conf

    def start(self) -> None:
        """Start (or restart) the broker on its port and wait until it accepts connections."""
        assert self.proc is None, "already running"
        conf = self._write_config()
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for_port(self.port, 20):
            self.stop()
            pytest.fail(f"mosquitto did not listen on {self.port}: {self.log_tail()}")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM: connections closed, persistence saved)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the broker log, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Subscriber:
    """``mosquitto_sub`` with a persistent session: it misses nothing across broker restarts."""

    def __init__(self, broker: Mosquitto, username: str, topic_filter: str) -> None:
        broker.allow(username, subscribe=[topic_filter])
        self.broker = broker
        self.username = username
        self.filter = topic_filter
        self.cert = broker.client_cert(username)
        self.out = broker.dir / f"sub-{username}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Connect (the broker must be running) and print one payload per line to a file."""
        with open(self.out, "ab") as sink:
            self.proc = subprocess.Popen(
                [
                    _binary("mosquitto_sub"),
                    *("-h", "127.0.0.1", "-p", str(self.broker.port)),
                    *("--cafile", str(self.broker.ca.cert_path)),
                    *("--cert", str(self.cert.cert_path), "--key", str(self.cert.key_path)),
                    *("-V", "mqttv5", "-q", "1", "-c", "-i", self.username, "-x", "3600"),
                    *("-t", self.filter, "-F", "%p"),
                ],
                stdout=sink,
                stderr=subprocess.DEVNULL,
            )

    def payloads(self) -> list[bytes]:
        """Every payload received so far."""
        try:
            return [line for line in self.out.read_bytes().splitlines() if line]
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        """Stop the client process."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker object, not yet started: add ACLs with ``allow`` then ``start()``."""
    broker = Mosquitto(tmp_path / "mosquitto")
    try:
        yield broker
    finally:
        broker.stop()
