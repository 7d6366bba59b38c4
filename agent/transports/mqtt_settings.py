"""Where and as whom the direct MQTT5 connection connects, from ``mqtt.*`` and the nucleus config.

Defaults follow the device's own identity (SPEC, Configuration): endpoint = nucleus
``iotDataEndpoint``, port 8883, client id = thing name, CA = ``system.rootCaPath``,
certificate = ``system.certificateFilePath``, key = ``system.privateKeyPath`` (a file or a
``pkcs11:`` URI). AWS IoT requires the client id to match what the thing policy allows for
``iot:Connect``, usually the thing name
(https://docs.aws.amazon.com/iot/latest/developerguide/connect-policy.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.config.files import MAX_IDENTITY_FILE_BYTES, InputError, vet_file
from agent.config.models import AgentConfig
from agent.errors import ConfigError
from agent.greengrass.root import GreengrassRoot
from agent.pkcs11 import Pkcs11Error, TokenKey, token_key


@dataclass(frozen=True)
class MqttSettings:
    """A resolved connection: endpoint, identity, trust and keep-alive."""

    endpoint: str
    port: int
    client_id: str
    cert_path: str
    key_path: str | None
    """A key file, or None when the key is on a token (``token``)."""
    token: TokenKey | None
    ca_path: str | None
    """None: the system trust store."""
    keep_alive_s: int

    @property
    def address(self) -> str:
        """``endpoint:port`` for messages."""
        return f"{self.endpoint}:{self.port}"


def split_endpoint(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port`` or ``mqtts://host:port`` into (host, port)."""
    host = text.strip()
    for scheme in ("mqtts://", "ssl://", "tls://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme) :]
    host = host.rstrip("/")
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return name.strip("[]"), int(port)
    return host.strip("[]"), default_port


def resolve(config: AgentConfig, greengrass: GreengrassRoot, thing_name: str) -> MqttSettings:
    """The connection settings; ConfigError names the missing or bad key."""
    raw_endpoint = config.mqtt.endpoint or greengrass.iot_data_endpoint
    if not raw_endpoint:
        raise ConfigError(
            "transport 'mqtt' needs an endpoint: set mqtt.endpoint, or iotDataEndpoint in the "
            f"{greengrass.nucleus_name} configuration"
        )
    endpoint, port = split_endpoint(raw_endpoint, config.mqtt.port)
    cert = greengrass.path("certificateFilePath")
    key = greengrass.path("privateKeyPath")
    if not cert or not key:
        missing = "certificateFilePath" if not cert else "privateKeyPath"
        raise ConfigError(
            f"transport 'mqtt' needs the device identity: system.{missing} is not set in "
            f"{greengrass.config_path}"
        )
    token = None
    if key.lower().startswith("pkcs11:"):
        try:
            token = token_key(key, config, greengrass)
        except Pkcs11Error as exc:
            raise ConfigError(f"system.privateKeyPath: {exc}") from None
    ca = str(config.mqtt.ca_path) if config.mqtt.ca_path else greengrass.path("rootCaPath")
    # awscrt reads these files itself, without bound: a FIFO would hang the transport, a
    # device or a sparse file exhaust memory. Checked here, they are a configuration error.
    for path, setting in (
        (cert, "system.certificateFilePath"),
        (None if token else key, "system.privateKeyPath"),
        (ca, "mqtt.caPath or system.rootCaPath"),
    ):
        if path and not path.lower().startswith("pkcs11:"):
            try:
                vet_file(Path(path), MAX_IDENTITY_FILE_BYTES)
            except InputError as exc:
                raise ConfigError(f"transport 'mqtt': {setting}: {exc}") from None
    return MqttSettings(
        endpoint=endpoint,
        port=port,
        client_id=config.mqtt.client_id or thing_name,
        cert_path=cert,
        key_path=None if token else key,
        token=token,
        ca_path=ca,
        keep_alive_s=config.mqtt.keep_alive_seconds,
    )
