"""Builders shared by the MQTT tests: connection settings and Greengrass roots for the broker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agent.greengrass.root import GreengrassRoot
from agent.pkcs11 import TokenKey, parse_uri
from agent.transports.mqtt_settings import MqttSettings
from tests.peers.mosquitto import Mosquitto
from tests.peers.softhsm import SoftHsm, TokenObject
from tests.pki import THING, make_greengrass_root

TOPIC = f"dt/gghealth/{THING}/health"
WAIT_S = 30.0  # a liveness bound for reconnects with backoff, not a performance assertion


def settings_for(
    broker: Mosquitto,
    cert_path: Path,
    key_path: Path | None = None,
    *,
    client_id: str = THING,
    token: TokenKey | None = None,
    ca_path: Path | None = None,
) -> MqttSettings:
    """Settings that connect to ``broker`` with the given identity."""
    return MqttSettings(
        endpoint="127.0.0.1",
        port=broker.port,
        client_id=client_id,
        cert_path=str(cert_path),
        key_path=str(key_path) if key_path else None,
        token=token,
        ca_path=str(ca_path or broker.ca.cert_path),
        keep_alive_s=60,
    )


def token_key(hsm: SoftHsm, obj: TokenObject, pin: str | None = None) -> TokenKey:
    """A TokenKey for one of the SoftHSM objects."""
    return TokenKey(hsm.library, parse_uri(obj.uri), None, hsm.user_pin if pin is None else pin)


def greengrass_root(
    tmp_path: Path,
    broker: Mosquitto,
    *,
    agent_config: Mapping[str, Any] | None = None,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    system: Mapping[str, Any] | None = None,
    services: Mapping[str, Any] | None = None,
) -> GreengrassRoot:
    """A Greengrass root whose device identity is a client of ``broker`` (CN = thing name)."""
    if cert_pem is None or key_pem is None:
        device = broker.client_cert(THING)
        cert_pem, key_pem = device.cert_pem, device.key_path.read_bytes()
    root = make_greengrass_root(
        tmp_path,
        device_pem=cert_pem,
        key_pem_bytes=key_pem,
        root_ca_pem=broker.ca.cert_pem,
        endpoint=f"127.0.0.1:{broker.port}",
        system_overrides=system,
        agent_config=agent_config,
    )
    if services:
        import yaml

        doc = yaml.safe_load(root.config_path.read_text())
        doc["services"].update(services)
        root.config_path.write_text(yaml.safe_dump(doc))
        from agent.greengrass.root import load_root

        root = load_root(root.root)
    return root


def wait_for(condition: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    """Poll ``condition`` (test side only) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        threading.Event().wait(0.1)
    return condition()


def reports(payloads: list[bytes]) -> list[dict[str, Any]]:
    """Parse received payloads as reports."""
    return [json.loads(p) for p in payloads]


def cert_for_token_key(broker: Mosquitto, key: object, tmp_path: Path) -> Path:
    """A client certificate (CN = thing) for a key whose private half lives on the token."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, THING)]))
        .issuer_name(broker.ca.cert.subject)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(broker.ca.key, hashes.SHA256())
    )
    path = tmp_path / f"hsm-{x509.random_serial_number()}.pem.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path
