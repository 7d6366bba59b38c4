"""The MQTT will: a report the broker publishes for us when we vanish without a DISCONNECT.

Subscribers of the health topic then learn that the agent disconnected unexpectedly (process
killed, crash, power or network loss) without waiting for a missed interval. It is shaped like
every other report so the same consumers parse it: ``status`` UNKNOWN, ``sequence`` 0 (real
reports count from 1) and one ``agent.publish`` result with ``details.will: true``. A clean
stop sends DISCONNECT with reason 0x00, which tells the broker to discard the will
(MQTT 5.0 section 3.14.2.1).
"""

from __future__ import annotations

from datetime import datetime, timezone

from agent import __version__
from agent.report import CheckResult, HealthReport, Status
from agent.transports.sizing import encode

WILL_SEQUENCE = 0


def will_payload(thing_name: str, client_id: str, endpoint: str) -> bytes:
    """The will report for a connection set up now."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = CheckResult(
        "agent.publish",
        Status.UNKNOWN,
        "mqtt",
        f"gg-health-agent on {thing_name} disconnected from the broker unexpectedly "
        "(the broker sent its will message); no health report until it reconnects",
        {"will": True, "client_id": client_id, "endpoint": endpoint, "connected_at": now},
        f"check that the gg-health-agent component on {thing_name} is running "
        "(greengrass-cli component list, or its log) and that the device is online",
    )
    report = HealthReport.build(
        [result],
        agent_version=__version__,
        thing_name=thing_name,
        generated_at=now,
        sequence=WILL_SEQUENCE,
        duration_ms=0.0,
    )
    return encode(report)


def is_will(report: dict[str, object]) -> bool:
    """Whether a received report is the will message rather than a real report."""
    checks = report.get("checks")
    return (
        report.get("sequence") == WILL_SEQUENCE
        and isinstance(checks, list)
        and any(isinstance(c, dict) and (c.get("details") or {}).get("will") for c in checks)
    )
