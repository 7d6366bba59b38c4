"""The ``gghealth`` named shadow: a compact, always-under-8-KB summary of the latest report.

Fleet Indexing indexes named shadows, so the fleet becomes queryable ("every device whose
certificate expires within 30 days") without a database of our own. The summary is published to
``$aws/things/<thing>/shadow/name/gghealth/update`` only when it changed or once a day, which keeps
a fleet of 100,000 devices cheap.
Topics: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-mqtt.html
Limit (8 KB per state document): https://docs.aws.amazon.com/general/latest/gr/iot-core.html#device-shadow-limits
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError
from agent.greengrass.ipc import IpcSession, IpcUnauthorized, IpcUnavailable
from agent.log import get_logger
from agent.report import HealthReport, Status
from agent.secrets import scrub

if TYPE_CHECKING:
    from agent.transports.connection import MqttConnection

log = get_logger(__name__)

SHADOW_NAME = "gghealth"
MAX_STATE_BYTES = 8 * 1024
SUMMARY_VERSION = 1
REPUBLISH_SECONDS = 24 * 3600
MAX_IDS_PER_STATUS = 24
MAX_ID_CHARS = 64
MAX_TARGET_CHARS = 200
VOLATILE_FIELDS = frozenset({"generated_at", "sequence"})
"""Fields that change every cycle and so must not count as a change of the summary."""

# Thing and shadow names: https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html
# and https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-comms-device.html
_THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
_SHADOW_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,64}")

Publish = Callable[[str, bytes], bool]
"""``publish(topic, payload) -> delivered``: the one thing a transport must offer the reporter."""


def shadow_topic(thing_name: str, shadow_name: str = SHADOW_NAME) -> str:
    """The named-shadow update topic; ConfigError for a name AWS IoT would refuse."""
    if not _THING_NAME.fullmatch(thing_name):
        raise ConfigError(
            f"cannot update a shadow of thing {thing_name!r}: a thing name is 1-128 characters "
            "of a-z A-Z 0-9 : _ - (set system.thingName in the Greengrass configuration)"
        )
    if not _SHADOW_NAME.fullmatch(shadow_name):
        raise ConfigError(
            f"invalid shadow name {shadow_name!r}: 1-64 characters of a-z A-Z 0-9 : _ -"
        )
    return f"$aws/things/{thing_name}/shadow/name/{shadow_name}/update"


class DeviceCertDays:
    """Days left on the device certificate, found among results that arrive in any order.

    The device certificate is the target of ``certificate.key_match``, of a ``certificate.readable``
    or ``certificate.validity`` result whose ``details.role`` is ``device_cert``, or the path the
    configuration names. With a chain in the file the earliest expiry counts: AWS IoT refuses the
    TLS handshake once any certificate the device presents has expired.
    """

    MAX_PENDING = 256
    """Validity results kept while the device certificate is not yet known (chunked reports)."""

    def __init__(self, device_cert: str | None = None) -> None:
        self._paths: set[str] = {device_cert} if device_cert else set()
        self._days: dict[str, int] = {}

    def add(self, check_id: str, target: str, details: Mapping[str, Any]) -> None:
        """Take one result into account."""
        role = details.get("role")
        if check_id == "certificate.key_match" or (
            check_id == "certificate.readable" and role == "device_cert"
        ):
            self._paths.add(target)
        elif check_id == "certificate.validity":
            days = details.get("days_left")
            if not isinstance(days, int) or isinstance(days, bool):
                return
            if role == "device_cert":
                self._paths.add(target)
            if target in self._paths or len(self._days) < self.MAX_PENDING:
                self._days[target] = min(days, self._days.get(target, days))

    def add_all(self, results: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Take several ``(id, target, details)`` results into account."""
        for check_id, target, details in results:
            self.add(check_id, target, details)

    def days_left(self) -> int | None:
        """The fewest days left on the device certificate (file), or None when not reported."""
        found = [d for path, d in self._days.items() if path in self._paths]
        return min(found) if found else None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _encode(document: Mapping[str, Any]) -> bytes:
    # ensure_ascii: one character per byte, so len() of the text is the size AWS IoT counts.
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def update_document(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The shadow update request for ``summary``."""
    return {"state": {"reported": dict(summary)}}


def encode_update(summary: Mapping[str, Any]) -> bytes:
    """The compact JSON payload of the shadow update for ``summary``."""
    return _encode(update_document(summary))


def build_summary(
    report: HealthReport, *, device_cert: str | None = None, max_bytes: int = MAX_STATE_BYTES
) -> dict[str, Any]:
    """The ``reported`` state for ``report``; its update document is at most ``max_bytes``.

    Every key is always present (``device_cert_days_left`` may be null, which removes it from the
    shadow), so an update never leaves a stale key behind. Arrays replace the stored arrays whole.
    """
    non_ok = sorted(
        (r for r in report.checks if r.status is not Status.OK),
        key=lambda r: (-r.status.severity, r.id, r.target),
    )
    ids: dict[Status, set[str]] = {
        Status.CRITICAL: set(),
        Status.WARNING: set(),
        Status.UNKNOWN: set(),
    }
    for r in non_ok:
        ids[r.status].add(r.id[:MAX_ID_CHARS])
    cert = DeviceCertDays(device_cert)
    cert.add_all((r.id, r.target, r.details) for r in report.checks)
    summary: dict[str, Any] = {
        "summary_version": SUMMARY_VERSION,
        "status": report.status.value,
        "counts": {s.value: int(report.summary.get(s.value, 0)) for s in Status},
        "critical_checks": sorted(ids[Status.CRITICAL])[:MAX_IDS_PER_STATUS],
        "warning_checks": sorted(ids[Status.WARNING])[:MAX_IDS_PER_STATUS],
        "unknown_checks": sorted(ids[Status.UNKNOWN])[:MAX_IDS_PER_STATUS],
        "device_cert_days_left": cert.days_left(),
        "issues": [],
        "issues_omitted": len(non_ok),
        "agent_version": report.agent_version[:32],
        "generated_at": report.generated_at[:40],
        "sequence": report.sequence,
    }
    # With catalogue ids the caps above bound the fixed part (< 6 KB); odd ids (escaped non-ASCII)
    # are trimmed until it fits. The issues then fill what is left, worst first; issues_omitted is
    # measured at its largest, so the final document can only shrink.
    lists = [summary[k] for k in ("critical_checks", "warning_checks", "unknown_checks")]
    while len(encode_update(summary)) > max_bytes and any(lists):
        max(lists, key=len).pop()
    budget = max_bytes - len(encode_update(summary))
    issues: list[dict[str, str]] = []
    for r in non_ok:
        item = {
            "id": r.id[:MAX_ID_CHARS],
            "status": r.status.value,
            # The shadow is readable fleet-wide: a pkcs11: URI target must not carry its PIN.
            "target": _clip(scrub(r.target), MAX_TARGET_CHARS),
        }
        size = len(_encode(item)) + (1 if issues else 0)  # + the separating comma
        if size > budget:
            break
        issues.append(item)
        budget -= size
    summary["issues"] = issues
    summary["issues_omitted"] = len(non_ok) - len(issues)
    return summary


def fingerprint(summary: Mapping[str, Any]) -> bytes:
    """A digest of what the summary says, ignoring the fields that change every cycle."""
    stable = {k: v for k, v in summary.items() if k not in VOLATILE_FIELDS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).digest()


class ShadowOutcome(str, enum.Enum):
    """What ``ShadowReporter.maybe_publish`` did."""

    PUBLISHED = "published"
    UNCHANGED = "unchanged"
    FAILED = "failed"


class ShadowReporter:
    """Publishes the summary when it changed, or when a day passed since the last publish.

    A failed publish is not remembered, so the next cycle tries again. ``monotonic`` is injectable
    so tests can move time; a wall-clock jump (NTP) never triggers or suppresses a publish.
    """

    def __init__(
        self,
        thing_name: str,
        publish: Publish,
        *,
        device_cert: str | None = None,
        shadow_name: str = SHADOW_NAME,
        republish_seconds: float = REPUBLISH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = shadow_topic(thing_name, shadow_name)
        self.device_cert = device_cert
        self.republish_seconds = republish_seconds
        self._publish = publish
        self._monotonic = monotonic
        self._last_fingerprint: bytes | None = None
        self._last_published_at: float | None = None

    def maybe_publish(self, report: HealthReport) -> ShadowOutcome:
        """Publish the summary of ``report`` if it is news (or a day old); never raises."""
        summary = build_summary(report, device_cert=self.device_cert)
        digest = fingerprint(summary)
        now = self._monotonic()
        due = (
            self._last_published_at is None
            or now - self._last_published_at >= self.republish_seconds
        )
        if digest == self._last_fingerprint and not due:
            return ShadowOutcome.UNCHANGED
        try:
            delivered = self._publish(self.topic, encode_update(summary))
        except Exception as exc:  # a transport bug must not stop the health cycle
            log.warning(
                "shadow_publish_error", topic=self.topic, error=f"{type(exc).__name__}: {exc}"
            )
            delivered = False
        if not delivered:
            return ShadowOutcome.FAILED
        self._last_fingerprint, self._last_published_at = digest, now
        log.info("shadow_updated", topic=self.topic, status=summary["status"])
        return ShadowOutcome.PUBLISHED


def ipc_publish(session: IpcSession, component: str = "gghealth.HealthAgent") -> Publish:
    """A ``Publish`` through the nucleus (PublishToIoTCore, QoS 1); a refusal is logged once."""
    last_refusal: list[str] = []

    def publish(topic: str, payload: bytes) -> bool:
        try:
            session.publish_to_iot_core(topic, payload)
        except IpcUnauthorized as exc:
            if last_refusal != [str(exc)]:
                last_refusal[:] = [str(exc)]
                log.error(
                    "shadow_publish_unauthorized",
                    topic=topic,
                    error=str(exc),
                    remediation=(
                        f"add to the accessControl of {component}: aws.greengrass.ipc.mqttproxy "
                        f"-> operations [aws.greengrass#PublishToIoTCore], resources ['{topic}']"
                    ),
                )
            return False
        except IpcUnavailable as exc:
            log.warning("shadow_publish_failed", topic=topic, error=str(exc))
            return False
        last_refusal.clear()
        return True

    return publish


# MQTT 5.0 section 3.4.2.1: 0x00 success, 0x10 no matching subscribers (still accepted).
_PUBACK_DELIVERED = {0x00, 0x10}


def mqtt_publish(connection: MqttConnection, timeout_s: float = 5.0) -> Publish:
    """A ``Publish`` on the MQTT transport's connection: QoS 1, delivered on PUBACK 0x00/0x10.

    Not spooled on purpose: the shadow holds state, not history, so an update that fails is
    replaced by the next cycle's rather than queued behind it.
    """

    def publish(topic: str, payload: bytes) -> bool:
        try:
            completion = connection.publish(topic, payload).result(timeout_s)
        except Exception as exc:  # not connected, timeout, client stopped
            log.warning("shadow_publish_failed", topic=topic, error=type(exc).__name__)
            return False
        code = int(getattr(getattr(completion, "puback", None), "reason_code", 0))
        if code in _PUBACK_DELIVERED:
            return True
        log.warning(
            "shadow_publish_refused",
            topic=topic,
            reason_code=f"0x{code:02x}",
            remediation=f"allow iot:Publish on topic/{topic} in the device's AWS IoT policy",
        )
        return False

    return publish
