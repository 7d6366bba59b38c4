"""The report model, its JSON Schema, and folding/chunking to AWS IoT's 128 KB limit."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from agent.report import (
    CheckResult,
    Chunk,
    Finding,
    HealthReport,
    Status,
    fold,
    json_chunks,
    json_schema,
    to_json,
    worst,
)
from agent.transports.sizing import MAX_PAYLOAD_BYTES, payloads


def _report(results: list[CheckResult]) -> HealthReport:
    return HealthReport.build(
        results,
        agent_version="0.1.0",
        thing_name="pi-42",
        generated_at="2026-11-29T18:00:00Z",
        sequence=17,
        duration_ms=41.73,
    )


def _r(
    status: Status, target: str, check_id: str = "certificate.validity", msg: str = "m"
) -> CheckResult:
    return CheckResult(
        check_id, status, target, msg, {"days_left": 3}, None if status is Status.OK else "fix it"
    )


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Status.UNKNOWN),
        ([Status.OK], Status.OK),
        ([Status.OK, Status.WARNING], Status.WARNING),
        ([Status.WARNING, Status.UNKNOWN], Status.UNKNOWN),
        ([Status.UNKNOWN, Status.CRITICAL, Status.OK], Status.CRITICAL),
    ],
)
def test_overall_status_is_the_worst(statuses: list[Status], expected: Status) -> None:
    assert worst(statuses) is expected
    assert _report([_r(s, f"t{i}") for i, s in enumerate(statuses)]).status is expected


def test_exit_codes_follow_monitoring_plugins() -> None:
    assert [s.exit_code for s in Status] == [0, 1, 2, 3]


def test_report_shape_matches_spec_and_schema() -> None:
    report = _report([_r(Status.OK, "a"), _r(Status.WARNING, "b")])
    doc = report.to_dict()
    assert doc["schema_version"] == 1
    assert doc["summary"] == {"OK": 1, "WARNING": 1, "CRITICAL": 0, "UNKNOWN": 0}
    assert doc["checks"][0]["status"] == "WARNING"  # worst first
    assert "remediation" not in doc["checks"][1]
    jsonschema.validate(doc, json_schema())
    bad = dict(doc, status="SORT_OF_OK")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schema())


def test_small_report_is_published_whole() -> None:
    report = _report([_r(Status.OK, f"/c/{i}.pem") for i in range(10)])
    out = payloads(report)
    assert len(out) == 1
    assert len(json.loads(out[0])["checks"]) == 10


def test_ten_thousand_ok_results_fold_and_keep_every_finding() -> None:
    results = [
        _r(Status.OK, f"/greengrass/v2/clients/device-{i:05d}.pem.crt") for i in range(10_000)
    ]
    results += [_r(Status.CRITICAL, f"/bad/{i}.pem") for i in range(5)]
    out = payloads(_report(results))
    assert len(out) == 1 and len(out[0]) <= MAX_PAYLOAD_BYTES
    doc = json.loads(out[0])
    critical = [c for c in doc["checks"] if c["status"] == "CRITICAL"]
    assert sorted(c["target"] for c in critical) == sorted(f"/bad/{i}.pem" for i in range(5))
    (aggregate,) = [c for c in doc["checks"] if c["status"] == "OK"]
    assert aggregate["details"]["count"] == 10_000
    assert len(aggregate["details"]["targets_sample"]) == 10
    assert doc["summary"]["OK"] == 10_000  # the summary still counts every result


def test_too_many_findings_are_chunked_not_dropped() -> None:
    results = [
        _r(Status.WARNING, f"/clients/{i:05d}.pem", msg="expires soon " * 10) for i in range(3000)
    ]
    out = payloads(_report(results))
    assert len(out) > 1
    docs = [json.loads(p) for p in out]
    assert all(len(p) <= MAX_PAYLOAD_BYTES for p in out)
    assert [d["chunk"] for d in docs] == [
        {"index": i + 1, "total": len(out)} for i in range(len(out))
    ]
    assert {d["sequence"] for d in docs} == {17}
    targets = [c["target"] for d in docs for c in d["checks"]]
    assert sorted(targets) == sorted(r.target for r in results)


def test_a_single_giant_result_is_shrunk_but_keeps_its_verdict() -> None:
    giant = CheckResult(
        "subscription.policy_lint", Status.CRITICAL, "p", "m", {"blob": "x" * 200_000}, "fix"
    )
    out = payloads(_report([giant]))
    assert len(out) == 1 and len(out[0]) <= MAX_PAYLOAD_BYTES
    (c,) = json.loads(out[0])["checks"]
    assert c["status"] == "CRITICAL" and c["details"] == {"truncated": True}


def test_one_compact_encoding_for_reports_and_results() -> None:
    report = _report([_r(Status.OK, "a"), _r(Status.WARNING, "b")])
    for item in (report, report.checks[0]):
        assert to_json(item) == json.dumps(item.to_dict(), separators=(",", ":"))


def test_fold_says_a_shared_consequence_once_after_every_finding() -> None:
    breaks = "the next deployment fails"
    findings = [
        Finding(Status.WARNING, "elsewhere", "in another region", "move it"),
        Finding(Status.CRITICAL, "denied", "access denied", "grant it", breaks),
        Finding(Status.CRITICAL, "missing", "no such object", "upload it", breaks),
        Finding(Status.OK, "fine", "readable"),
    ]
    folded = fold("s3.artifact", "s3://b/k", findings, "readable", {"bucket": "b"})
    assert folded.status is Status.CRITICAL
    assert folded.message == f"access denied; no such object; in another region; {breaks}"
    assert folded.remediation == "grant it; upload it; move it"
    assert folded.details["reason"] == "denied"
    assert folded.details["reasons"] == ["denied", "missing", "elsewhere"]
    # Each finding's own message, without the consequence it shares with others.
    assert [f["message"] for f in folded.details["findings"]] == [
        "access denied",
        "no such object",
        "in another region",
    ]
    assert fold("s3.artifact", "s3://b/k", findings[3:], "readable").message == "readable"


@pytest.mark.parametrize("count", [0, 1, 7, 2500])
@pytest.mark.parametrize("chunked", [False, True])
def test_json_in_pieces_is_the_same_text(count: int, chunked: bool) -> None:
    # check --format json writes the report in pieces (issue 20); a key-like text inside a
    # target or thing name must not be taken for the "checks" key.
    results = [
        CheckResult("certificate.readable", Status.OK, f'/c/"checks":[]{i}', "ok", {"n": i})
        for i in range(count)
    ]
    report = HealthReport.build(
        results,
        agent_version="1.0.0",
        thing_name='thing "checks":[]',
        generated_at="2026-01-01T00:00:00Z",
        sequence=3,
        duration_ms=1.0,
    )
    if chunked:
        report = dataclasses.replace(report, chunk=Chunk(index=1, total=2))
    for batch in (1, 3, 1000):
        assert "".join(json_chunks(report, batch)) == to_json(report)
