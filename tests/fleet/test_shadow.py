"""The gghealth named-shadow summary and the reporter that decides when to publish it."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.demo import THING, build_demo_root
from agent.errors import ConfigError
from agent.fleet.shadow import (
    MAX_STATE_BYTES,
    DeviceCertDays,
    ShadowOutcome,
    ShadowReporter,
    build_summary,
    encode_update,
    ipc_publish,
    shadow_topic,
)
from agent.greengrass.ipc import IpcSession
from agent.report import CheckResult, HealthReport, Status
from agent.runner import check_once, load_settings
from tests.nucleus.standin import NucleusStandIn

DEVICE_CERT = "/greengrass/v2/thingCert.crt"
TOPIC = "$aws/things/pi-42/shadow/name/gghealth/update"
DAY = 24 * 3600.0


def _report(
    results: list[CheckResult], *, sequence: int = 1, at: str = "2026-11-29T18:00:00Z"
) -> HealthReport:
    return HealthReport.build(
        results,
        agent_version="0.1.0",
        thing_name="pi-42",
        generated_at=at,
        sequence=sequence,
        duration_ms=12.0,
    )


def _r(check_id: str, status: Status, target: str, **details: Any) -> CheckResult:
    fix = None if status is Status.OK else "fix it"
    return CheckResult(check_id, status, target, "m", details, fix)


def _reported(payload: bytes) -> dict[str, Any]:
    document = json.loads(payload)
    assert list(document) == ["state"] and list(document["state"]) == ["reported"]
    reported: dict[str, Any] = document["state"]["reported"]
    return reported


class Recorder:
    """A Publish that records what it was given and answers ``delivered``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.delivered = True

    def __call__(self, topic: str, payload: bytes) -> bool:
        self.calls.append((topic, payload))
        return self.delivered


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the summary -----------------------------------------------------------------------------


def test_ten_thousand_results_fit_in_8_kb_worst_first() -> None:
    rng = random.Random(9)
    ids = ["s3.artifact", "certificate.validity", "subscription.bridge", "s3.bucket"]
    statuses = [Status.OK, Status.WARNING, Status.CRITICAL, Status.UNKNOWN]
    results = [
        _r(
            rng.choice(ids),
            rng.choice(statuses),
            f"s3://bucket-{i}/components/very/long/prefix/{'x' * rng.randint(0, 300)}/{i}.zip",
        )
        for i in range(10_000)
    ]
    report = _report(results)
    non_ok = [r for r in results if r.status is not Status.OK]
    assert len(non_ok) > 7000

    summary = build_summary(report)
    payload = encode_update(summary)

    assert len(payload) <= MAX_STATE_BYTES
    reported = _reported(payload)
    assert reported["counts"] == {s.value: sum(r.status is s for r in results) for s in Status}
    assert reported["status"] == "CRITICAL"
    issues = reported["issues"]
    assert 10 < len(issues) < len(non_ok)
    assert len(issues) + reported["issues_omitted"] == len(non_ok)
    assert {i["status"] for i in issues} == {"CRITICAL"}  # the worst come first
    assert all(len(i["target"]) <= 200 for i in issues)
    assert reported["critical_checks"] == sorted(ids)
    # Nearly full: the budget is used, not wasted.
    assert len(payload) > MAX_STATE_BYTES - 600


def test_odd_ids_and_huge_targets_still_fit() -> None:
    results = [_r(f"ünïcødé.{'é' * 80}{i}", Status.CRITICAL, "目标" * 5000) for i in range(200)] + [
        _r(f"x.{i:060d}", Status.WARNING, "t") for i in range(200)
    ]
    payload = encode_update(build_summary(_report(results)))
    assert len(payload) <= MAX_STATE_BYTES
    reported = _reported(payload)
    assert len(reported["issues"]) + reported["issues_omitted"] == 400


def test_all_ok_report_has_empty_lists_and_every_key() -> None:
    reported = _reported(
        encode_update(build_summary(_report([_r("s3.bucket", Status.OK, "b")], sequence=5)))
    )
    assert reported == {
        "summary_version": 1,
        "status": "OK",
        "counts": {"OK": 1, "WARNING": 0, "CRITICAL": 0, "UNKNOWN": 0},
        "critical_checks": [],
        "warning_checks": [],
        "unknown_checks": [],
        "device_cert_days_left": None,  # null removes a stale value from the shadow
        "issues": [],
        "issues_omitted": 0,
        "agent_version": "0.1.0",
        "generated_at": "2026-11-29T18:00:00Z",
        "sequence": 5,
    }


def test_no_pin_in_the_shadow() -> None:
    uri = "pkcs11:object=greengrass-key;type=private?pin-value=87654321"
    summary = build_summary(_report([_r("certificate.readable", Status.CRITICAL, uri)]))
    payload = encode_update(summary)
    assert b"87654321" not in payload
    assert summary["issues"][0]["target"].startswith("pkcs11:object=greengrass-key")


@pytest.mark.parametrize(
    ("results", "device_cert", "expected"),
    [
        # The configured device certificate path.
        ([_r("certificate.validity", Status.WARNING, DEVICE_CERT, days_left=20)], DEVICE_CERT, 20),
        # Found through certificate.key_match, whatever the order of results.
        (
            [
                _r("certificate.validity", Status.OK, "/x/client.crt", days_left=3),
                _r("certificate.validity", Status.OK, DEVICE_CERT, days_left=90),
                _r("certificate.key_match", Status.OK, DEVICE_CERT),
            ],
            None,
            90,
        ),
        # Found through certificate.readable's role; a chain in the file: the earliest counts.
        (
            [
                _r("certificate.readable", Status.OK, DEVICE_CERT, role="device_cert"),
                _r("certificate.validity", Status.OK, DEVICE_CERT, days_left=300, index=0),
                _r("certificate.validity", Status.CRITICAL, DEVICE_CERT, days_left=-2, index=1),
            ],
            None,
            -2,
        ),
        # A role on the validity result itself.
        ([_r("certificate.validity", Status.OK, "/a", days_left=44, role="device_cert")], None, 44),
        # No marker: other certificates never pass for the device's.
        ([_r("certificate.validity", Status.WARNING, "/x/client.crt", days_left=3)], None, None),
        # A device certificate that could not be read has no days_left.
        (
            [_r("certificate.readable", Status.CRITICAL, DEVICE_CERT, role="device_cert")],
            None,
            None,
        ),
    ],
)
def test_device_cert_days_left(
    results: list[CheckResult], device_cert: str | None, expected: int | None
) -> None:
    summary = build_summary(_report(results), device_cert=device_cert)
    assert summary["device_cert_days_left"] == expected


def test_device_cert_days_across_chunks_in_any_order() -> None:
    days = DeviceCertDays()
    days.add("certificate.validity", DEVICE_CERT, {"days_left": 12})  # chunk 1
    assert days.days_left() is None
    days.add("certificate.key_match", DEVICE_CERT, {})  # chunk 2
    assert days.days_left() == 12


def test_summary_of_a_real_report(tmp_path: Path) -> None:
    root = build_demo_root(tmp_path / "gg")
    settings = load_settings(root)
    report = check_once(settings, ["certificate"])
    device_cert = settings.greengrass.path("certificateFilePath")
    (validity,) = [
        r for r in report.checks if r.id == "certificate.validity" and r.target == device_cert
    ]

    by_path = build_summary(report, device_cert=device_cert)
    by_markers = build_summary(report)

    assert by_path == by_markers
    assert by_path["device_cert_days_left"] == validity.details["days_left"]
    assert by_path["status"] == report.status.value
    non_ok = [r for r in report.checks if r.status is not Status.OK]
    assert [(i["id"], i["target"]) for i in by_path["issues"]] == [(r.id, r.target) for r in non_ok]
    assert set(by_path["critical_checks"]) == {r.id for r in non_ok if r.status is Status.CRITICAL}


@pytest.mark.parametrize("thing", ["", "a/b", "thing+", "#", "x" * 129, "pi 42"])
def test_invalid_thing_names_are_refused(thing: str) -> None:
    with pytest.raises(ConfigError, match="thing name"):
        shadow_topic(thing)


def test_topic() -> None:
    assert shadow_topic("pi-42") == TOPIC
    with pytest.raises(ConfigError, match="shadow name"):
        shadow_topic("pi-42", "no/slashes")


# -- when to publish -------------------------------------------------------------------------


def _warning_report(sequence: int, days: int = 20) -> HealthReport:
    return _report(
        [
            _r("certificate.validity", Status.WARNING, DEVICE_CERT, days_left=days),
            _r("certificate.key_match", Status.OK, DEVICE_CERT),
        ],
        sequence=sequence,
        at=f"2026-11-29T18:{sequence % 60:02d}:00Z",
    )


def test_publishes_only_changes_or_once_a_day() -> None:
    publish, clock = Recorder(), Clock()
    reporter = ShadowReporter("pi-42", publish, monotonic=clock)

    assert reporter.maybe_publish(_warning_report(1)) is ShadowOutcome.PUBLISHED
    # Same findings, new sequence and timestamp: nothing to say.
    clock.now += 300
    assert reporter.maybe_publish(_warning_report(2)) is ShadowOutcome.UNCHANGED
    # A changed summary goes out at once.
    clock.now += 300
    assert reporter.maybe_publish(_warning_report(3, days=19)) is ShadowOutcome.PUBLISHED
    # Unchanged for just under a day: still quiet; a day after the last publish: re-published.
    clock.now += DAY - 1
    assert reporter.maybe_publish(_warning_report(4, days=19)) is ShadowOutcome.UNCHANGED
    clock.now += 1
    assert reporter.maybe_publish(_warning_report(5, days=19)) is ShadowOutcome.PUBLISHED

    assert [t for t, _ in publish.calls] == [TOPIC] * 3
    sent = [_reported(p) for _, p in publish.calls]
    assert [s["sequence"] for s in sent] == [1, 3, 5]
    assert [s["device_cert_days_left"] for s in sent] == [20, 19, 19]


def test_a_failed_publish_is_retried_next_cycle() -> None:
    publish, clock = Recorder(), Clock()
    reporter = ShadowReporter("pi-42", publish, monotonic=clock)
    publish.delivered = False
    assert reporter.maybe_publish(_warning_report(1)) is ShadowOutcome.FAILED
    publish.delivered = True
    clock.now += 300
    assert reporter.maybe_publish(_warning_report(2)) is ShadowOutcome.PUBLISHED
    clock.now += 300
    assert reporter.maybe_publish(_warning_report(3)) is ShadowOutcome.UNCHANGED
    assert len(publish.calls) == 2


def test_a_publish_that_raises_is_a_failure_not_a_crash() -> None:
    def broken(topic: str, payload: bytes) -> bool:
        raise RuntimeError("transport bug")

    reporter = ShadowReporter("pi-42", broken)
    assert reporter.maybe_publish(_warning_report(1)) is ShadowOutcome.FAILED


# -- through the nucleus (IPC PublishToIoTCore) ------------------------------------------------


@pytest.fixture
def session(nucleus: NucleusStandIn) -> Iterator[IpcSession]:
    s = IpcSession(socket_path=str(nucleus.socket_path), token=nucleus.svcuid)
    yield s
    s.close()


def test_shadow_update_through_the_nucleus(
    tmp_path: Path, nucleus: NucleusStandIn, session: IpcSession
) -> None:
    root = build_demo_root(tmp_path / "gg")
    settings = load_settings(root)
    topic = f"$aws/things/{THING}/shadow/name/gghealth/update"
    refused = [True]
    nucleus.deny_publish(lambda t: refused[0] and t == topic)
    clock = Clock()
    reporter = ShadowReporter(
        THING,
        ipc_publish(session),
        device_cert=settings.greengrass.path("certificateFilePath"),
        monotonic=clock,
    )

    # Refused by the nucleus (accessControl lacks the grant): a failure, retried next cycle.
    report = check_once(settings, ["certificate"], sequence=1)
    assert reporter.maybe_publish(report) is ShadowOutcome.FAILED
    assert [p.topic for p in nucleus.denied_publishes] == [topic]

    refused[0] = False
    clock.now += 300
    report = check_once(settings, ["certificate"], sequence=2)
    assert reporter.maybe_publish(report) is ShadowOutcome.PUBLISHED
    (update,) = [p for p in nucleus.publishes if p.topic == topic]
    assert update.qos == "1"
    assert len(update.payload) <= MAX_STATE_BYTES
    reported = _reported(update.payload)
    assert reported["status"] == report.status.value
    assert reported["sequence"] == 2
    assert reported["counts"] == report.summary
    assert isinstance(reported["device_cert_days_left"], int)

    # The next cycle finds nothing new: no second update.
    clock.now += 300
    assert reporter.maybe_publish(check_once(settings, ["certificate"], sequence=3)) is (
        ShadowOutcome.UNCHANGED
    )
    assert len([p for p in nucleus.publishes if p.topic == topic]) == 1
