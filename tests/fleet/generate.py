"""A seeded fleet of health reports, with the answers fleet-summary must find.

The reports are built with the agent's own model (``HealthReport.build``) and published shape
(``agent.transports.sizing.payloads``, chunked where large), so they are what an IoT rule
would store.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from agent.report import CheckResult, HealthReport, Status, worst
from agent.transports.sizing import payloads

DEVICE_CERT = "/greengrass/v2/thingCert.crt"
CHUNK_LIMIT = 4096  # small, so the devices with many findings go out as several chunks
START = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _r(check_id: str, status: Status, target: str, **details: Any) -> CheckResult:
    return CheckResult(
        check_id, status, target, f"{check_id} {status.value}", details,
        None if status is Status.OK else "change something",
    )  # fmt: skip


def _validity(days: int) -> Status:
    if days < 7:
        return Status.CRITICAL
    return Status.WARNING if days < 30 else Status.OK


@dataclass
class Expected:
    """What the newest report of every device says."""

    status: dict[str, Status] = field(default_factory=dict)
    failing: dict[str, dict[str, Status]] = field(default_factory=dict)
    cert_days: dict[str, int | None] = field(default_factory=dict)


@dataclass
class Fleet:
    """Published payloads (oldest first per device, devices interleaved) and the answers."""

    payloads: list[tuple[str, datetime, bytes]]
    expected: Expected
    reports: int


def _results(
    rng: random.Random, *, certs: bool, many: bool
) -> tuple[list[CheckResult], int | None]:
    results: list[CheckResult] = []
    days: int | None = None
    if certs:
        days = rng.randint(-5, 400)
        results += [
            _r("certificate.readable", Status.OK, DEVICE_CERT, role="device_cert", certificates=1),
            _r("certificate.key_match", Status.OK, DEVICE_CERT),
            _r("certificate.validity", _validity(days), DEVICE_CERT, days_left=days),
        ]
        if many:  # a device with many client-device certificates about to expire
            results += [
                _r("certificate.validity", Status.WARNING, f"/greengrass/v2/clients/c{k:03d}.pem",
                   days_left=20 + k % 5)
                for k in range(60)
            ]  # fmt: skip
    results.append(
        _r("s3.artifact", Status.CRITICAL if rng.random() < 0.1 else Status.OK,
           f"s3://artifacts/comp-{rng.randint(1, 5)}.zip")
    )  # fmt: skip
    if rng.random() < 0.05:
        results.append(_r("subscription.policy_lint", Status.WARNING, "comp:mqttproxy:1"))
    if rng.random() < 0.03:
        results.append(_r("s3.credentials", Status.UNKNOWN, "tes"))
    return results, days


def generate(devices: int = 1000, seed: int = 20261129) -> Fleet:
    """``devices`` devices, 1-3 reports each; restarts reset the sequence, some reports share
    a timestamp, a few devices send chunked reports, some report no certificate area."""
    rng = random.Random(seed)
    out: list[tuple[str, datetime, bytes]] = []
    expected = Expected()
    reports = 0
    for i in range(devices):
        thing = f"pi-{i:04d}"
        certs = rng.random() > 0.03
        many = certs and rng.random() < 0.05
        when = START + timedelta(seconds=rng.randint(0, 86400))
        sequence = rng.randint(1, 500)
        for n in range(rng.randint(1, 3)):
            if n:
                restart = rng.random() < 0.3
                same_second = not restart and rng.random() < 0.2
                when += timedelta(seconds=0 if same_second else rng.randint(60, 3600))
                sequence = 1 if restart else sequence + 1
            results, days = _results(rng, certs=certs, many=many)
            report = HealthReport.build(
                results,
                agent_version="0.1.0",
                thing_name=thing,
                generated_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                sequence=sequence,
                duration_ms=30.0,
            )
            reports += 1
            for payload in payloads(report, limit=CHUNK_LIMIT):
                out.append((thing, when, payload))
            failing: dict[str, Status] = {}
            for r in results:
                if r.status is not Status.OK and (
                    r.id not in failing or r.status.severity > failing[r.id].severity
                ):
                    failing[r.id] = r.status
            expected.status[thing] = worst(r.status for r in results)
            expected.failing[thing] = failing
            expected.cert_days[thing] = days
    return Fleet(out, expected, reports)


def as_json(payload: bytes) -> dict[str, Any]:
    """A payload as a JSON object."""
    value: dict[str, Any] = json.loads(payload)
    return value
