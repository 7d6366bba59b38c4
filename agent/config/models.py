"""The agent's configuration: one pydantic model with the camelCase keys Greengrass components use.

How the sources are layered into one of these is ``agent.config.layering``; the names it holds
that AWS must accept (topics, buckets) are checked by ``agent.config.names``.
"""

from __future__ import annotations

import enum
import types
from pathlib import Path, PurePath
from typing import Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

from agent.config.names import (
    THING_NAME_VARIABLE,
    valid_bucket_name,
    validate_publish_topic,
    with_thing_name,
)

DEFAULT_COMPONENT_NAME = "gghealth.HealthAgent"
DEFAULT_HEALTH_TOPIC = f"dt/gghealth/{THING_NAME_VARIABLE}/health"
MAX_PROBE_PREFIX_BYTES = 512
"""S3 keys are at most 1024 bytes; the probe key adds the thing name (<= 128) and a UUID."""


def _numeric(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        args = set(get_args(annotation)) - {type(None)}
        return bool(args) and args <= {int, float}
    return False


class _Model(BaseModel):
    """Frozen, camelCase, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _plain_values(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML 1.1 reads yes/no/on/off as booleans and pydantic would take true as 1:
        # "intervalSeconds: yes" must not become a report every second.
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _numeric(field.annotation):
            raise ValueError("must be a number, not true/false")
        # No file name, topic or name can hold NUL; os calls would fail on it mid-cycle.
        items = value if isinstance(value, (list, tuple)) else (value,)
        if any(isinstance(v, (str, PurePath)) and "\x00" in str(v) for v in items):
            raise ValueError("must not contain a NUL byte")
        return value


class Transport(str, enum.Enum):
    """Where reports go."""

    IPC = "ipc"
    MQTT = "mqtt"
    STDOUT = "stdout"
    FILE = "file"


class CertificatesConfig(_Model):
    """``certificates.*``: thresholds and the extra certificates to audit."""

    warn_days: int = Field(30, ge=0)
    critical_days: int = Field(7, ge=0)
    extra_paths: tuple[Path, ...] = ()
    """Files or directories of PEM certificates (client devices, intermediates)."""
    ca_bundle: Path | None = None
    """A bring-your-own CA bundle the device certificate must chain to."""
    cache_file: Path | None = None
    """Keep the parsed certificate files here, so a ``check`` in a new process (cron, Nagios)
    re-reads only what changed (``agent/x509/disk_cache.py``); off when unset."""


class BucketAccess(str, enum.Enum):
    """What the service role must be able to do on a bucket."""

    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"


class BucketConfig(_Model):
    """One entry of ``s3.buckets``."""

    name: str = Field(min_length=3, max_length=63)
    access: BucketAccess = BucketAccess.READ

    @field_validator("name")
    @classmethod
    def _bucket_name(cls, name: str) -> str:
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
        if not valid_bucket_name(name):
            raise ValueError(
                "not a valid S3 bucket name (letters, digits, '.', '-'; no '..'; "
                "starting and ending with a letter or digit)"
            )
        return name


class CredentialsSource(str, enum.Enum):
    """Where S3 credentials come from."""

    DEFAULT = "default"
    TES = "tes"
    X509 = "x509"


class S3CredentialsConfig(_Model):
    """``s3.credentials.*``."""

    source: CredentialsSource = CredentialsSource.DEFAULT
    endpoint: str | None = None
    """x509 source: the AWS IoT credentials endpoint (``host``, ``host:port`` or an ``https://``
    URL) instead of the nucleus ``iotCredEndpoint``; for debugging against a test endpoint."""
    ca_path: Path | None = None
    """x509 source: CA bundle that signs the credentials endpoint's certificate (default: the
    nucleus ``rootCaPath``, else the system trust store)."""


class S3Config(_Model):
    """``s3.*``: the buckets the service role must reach."""

    buckets: tuple[BucketConfig, ...] = ()
    probe_prefix: str = "gghealth-probe/"
    expected_role: str | None = None
    check_artifacts: bool = True
    credentials: S3CredentialsConfig = S3CredentialsConfig()
    request_timeout_seconds: float = Field(5.0, gt=0, le=120)
    cycle_budget_seconds: float = Field(30.0, gt=0, le=600)
    """Wall-clock budget for all S3/STS work of one cycle; what is left over is UNKNOWN."""
    max_concurrency: int = Field(8, ge=1, le=32)
    """S3 requests in flight at once when many artifacts are checked."""
    refresh_seconds: int = Field(900, ge=0, le=7 * 24 * 3600)
    """A running agent reuses its S3/STS verdicts this long (0: probe every cycle), unless the
    deployed artifacts, the ``s3`` settings or the credentials change: access changes rarely,
    and every probe is billed requests (a PutObject per writable bucket) on every device."""

    @field_validator("probe_prefix")
    @classmethod
    def _probe_prefix(cls, prefix: str) -> str:
        # Probe objects only ever go under this prefix, and the role's write grant is scoped to
        # it: an empty one would need s3:PutObject on the whole bucket.
        if not prefix.strip("/"):
            raise ValueError(
                "must name a key prefix such as 'gghealth-probe/' (write probes go only there)"
            )
        if prefix.startswith("/"):
            raise ValueError("must not start with '/' (S3 object keys have no leading slash)")
        if len(prefix.encode("utf-8", "surrogatepass")) > MAX_PROBE_PREFIX_BYTES:
            raise ValueError(f"longer than {MAX_PROBE_PREFIX_BYTES} bytes")
        return prefix


class SubscriptionsConfig(_Model):
    """``subscriptions.*``."""

    iot_policy_file: Path | None = None
    fetch_iot_policy: bool = False
    required_topics: tuple[str, ...] = ()


class MqttConfig(_Model):
    """``mqtt.*``: the direct MQTT5 transport; unset values come from the nucleus config."""

    endpoint: str | None = None
    port: int = Field(8883, ge=1, le=65535)
    client_id: str | None = None
    ca_path: Path | None = None
    keep_alive_seconds: int = Field(300, ge=30, le=1200)
    """MQTT keep-alive; AWS IoT accepts 30-1200 s
    (https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits)."""
    probe: bool = True
    """With the mqtt transport, run the ``subscription.probe`` PUBACK/SUBACK probes."""


class Pkcs11Config(_Model):
    """``pkcs11.*``: the agent's own PKCS#11 settings; each unset key falls back to the
    ``aws.greengrass.crypto.Pkcs11Provider`` configuration (``library``, ``slot``, ``userPin``)."""

    library: Path | None = None
    slot: int | None = Field(None, ge=0)
    user_pin: SecretStr | None = None


class SpoolConfig(_Model):
    """``spool.*``: where undeliverable reports wait."""

    path: Path | None = None
    max_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024)


class FileTransportConfig(_Model):
    """``file.*``: the file transport."""

    path: Path = Path("gghealth-report.json")
    history_max_bytes: int = Field(0, ge=0)
    """Keep a rotated JSONL history of this many bytes beside the latest report (0: none)."""


class ShadowConfig(_Model):
    """``shadow.*``: the named-shadow summary Fleet Indexing indexes (docs/fleet.md)."""

    enabled: bool = False
    name: str = Field("gghealth", pattern=r"^[a-zA-Z0-9:_-]{1,64}$")
    """Shadow names: https://docs.aws.amazon.com/iot/latest/developerguide/iot-device-shadows.html"""
    republish_seconds: int = Field(24 * 3600, ge=300, le=7 * 24 * 3600)
    """Publish an unchanged summary again after this long, so a silent device stands out."""


class SystemConfig(_Model):
    """``system.*``: the clock and endpoint checks (not the nucleus's own ``system`` block)."""

    refresh_seconds: int = Field(900, ge=0, le=7 * 24 * 3600)
    """Probe the endpoints, and send a request only to read AWS's ``Date``, at most this often
    (0: every cycle); the endpoints again at once when the nucleus endpoints, the device
    certificate, key or root CA bundle change."""
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    """Per endpoint handshake, and for the one ``Date`` request."""


class AgentConfig(_Model):
    """The whole configuration of the agent."""

    component_name: str = DEFAULT_COMPONENT_NAME
    interval_seconds: int = Field(300, ge=1, le=7 * 24 * 3600)
    health_topic: str = DEFAULT_HEALTH_TOPIC
    transport: Transport = Transport.IPC
    certificates: CertificatesConfig = CertificatesConfig()
    s3: S3Config = S3Config()
    subscriptions: SubscriptionsConfig = SubscriptionsConfig()
    mqtt: MqttConfig = MqttConfig()
    pkcs11: Pkcs11Config = Pkcs11Config()
    spool: SpoolConfig = SpoolConfig()
    file: FileTransportConfig = FileTransportConfig()
    shadow: ShadowConfig = ShadowConfig()
    system: SystemConfig = SystemConfig()
    access_control: dict[str, Any] = Field(default_factory=dict)
    """The component's own IPC authorization; the nucleus reads it, the agent audits it."""

    @field_validator("health_topic")
    @classmethod
    def _publishable_topic(cls, topic: str) -> str:
        return validate_publish_topic(topic)

    def health_topic_for(self, thing_name: str) -> str:
        """``healthTopic`` with the recipe variable ``{iot:thingName}`` resolved."""
        return with_thing_name(self.health_topic, thing_name)
