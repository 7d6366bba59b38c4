"""fleet-summary on 1,000 generated devices in every shape AWS stores reports, and on junk."""

from __future__ import annotations

import gzip
import heapq
import json
import os
import random
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agent.fleet.summary import (
    FleetInputError,
    fleet_summary,
    fleet_summary_json,
    read_fleet,
    run_fleet_summary,
)
from agent.report import Status
from tests.fleet.generate import Fleet, as_json, generate

ORDER = ["CRITICAL", "UNKNOWN", "WARNING", "OK"]


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return generate(1000)


def _expected(fleet: Fleet) -> dict[str, Any]:
    e = fleet.expected
    by_status = Counter(s.value for s in e.status.values())
    failing: dict[str, Counter[str]] = {}
    for checks in e.failing.values():
        for check_id, status in checks.items():
            failing.setdefault(check_id, Counter())[status.value] += 1
    known = [(d, t) for t, d in e.cert_days.items() if d is not None]
    return {
        "devices": 1000,
        "reports": fleet.reports,
        "status": "CRITICAL",
        "by_status": {s: by_status.get(s, 0) for s in ORDER},
        "failing": {k: dict(v) for k, v in failing.items()},
        "nearest": heapq.nsmallest(10, known),
        "cert_unknown_devices": 1000 - len(known),
    }


def _check(summary: dict[str, Any], fleet: Fleet) -> None:
    want = _expected(fleet)
    assert summary["devices"] == want["devices"]
    assert summary["reports"] == want["reports"]
    assert summary["status"] == want["status"]
    assert summary["by_status"] == want["by_status"]
    got_failing = {
        row["id"]: {s: n for s, n in row["by_status"].items() if n}
        for row in summary["failing_checks"]
    }
    assert got_failing == want["failing"]
    counts = [row["devices"] for row in summary["failing_checks"]]
    assert counts == sorted(counts, reverse=True)  # most common first
    assert [(r["days_left"], r["thing_name"]) for r in summary["nearest_cert_expiry"]] == want[
        "nearest"
    ]
    for row in summary["nearest_cert_expiry"]:
        assert row["status"] == fleet.expected.status[row["thing_name"]].value
    assert summary["cert_unknown_devices"] == want["cert_unknown_devices"]
    assert summary["skipped"] == {"lines": 0, "reasons": {}}


def _s3_tree(fleet: Fleet, root: Path) -> Path:
    """One object per message, keyed like an IoT rule's S3 action would: thing/date/time-n."""
    for n, (thing, when, payload) in enumerate(fleet.payloads):
        key = root / "dt/gghealth" / thing / when.strftime("%Y/%m/%d") / f"{when:%H%M%S}-{n}.json"
        key.parent.mkdir(parents=True, exist_ok=True)
        if n % 11 == 0:
            key.with_suffix(".json.gz").write_bytes(gzip.compress(payload))
        elif n % 7 == 0:
            key.write_text(json.dumps(as_json(payload), indent=2))  # someone ran jq on it
        else:
            key.write_bytes(payload)
    return root


def _jsonl(fleet: Fleet, path: Path) -> Path:
    lines = [p for _, _, p in fleet.payloads]
    random.Random(1).shuffle(lines)  # arrival order is not report order
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _logs_export(fleet: Fleet, root: Path) -> Path:
    """``aws logs create-export-task`` output: gzip files of "<timestamp> <message>" lines."""
    half = len(fleet.payloads) // 2
    for i, part in enumerate((fleet.payloads[:half], fleet.payloads[half:])):
        path = root / "exportedlogs/task-1" / f"stream-{i}" / "000000.gz"
        path.parent.mkdir(parents=True)
        lines = [f"{when:%Y-%m-%dT%H:%M:%S}.000Z ".encode() + p for _, when, p in part]
        path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return root


def _filter_log_events(fleet: Fleet, root: Path) -> Path:
    """``aws logs filter-log-events`` output, pretty-printed, 500 events per page."""
    root.mkdir()
    for page in range(0, len(fleet.payloads), 500):
        events = [
            {"logStreamName": "s", "timestamp": int(when.timestamp() * 1000), "message": p.decode()}
            for _, when, p in fleet.payloads[page : page + 500]
        ]
        (root / f"page-{page}.json").write_text(json.dumps({"events": events}, indent=4))
    return root


def _firehose(fleet: Fleet, root: Path) -> Path:
    """An IoT rule -> Firehose -> S3: records back to back, no separator, gzip'd objects."""
    root.mkdir()
    for i in range(0, len(fleet.payloads), 700):
        blob = b"".join(p for _, _, p in fleet.payloads[i : i + 700])
        (root / f"gghealth-{i}").write_bytes(gzip.compress(blob) if i % 1400 else blob)
    return root


@pytest.mark.parametrize(
    "shape", [_s3_tree, _logs_export, _filter_log_events, _firehose], ids=lambda f: f.__name__[1:]
)
def test_directory_shapes(fleet: Fleet, tmp_path: Path, shape: Any) -> None:
    source = shape(fleet, tmp_path / "src")
    _check(read_fleet(source), fleet)


def test_jsonl_file_text_and_exit_status(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _jsonl(fleet, tmp_path / "reports.jsonl")
    _check(json.loads(fleet_summary_json(source)), fleet)

    assert run_fleet_summary(str(source), "text") == Status.CRITICAL.exit_code
    text = capsys.readouterr().out
    assert text == fleet_summary(source)
    want = _expected(fleet)
    assert text.startswith(
        f"Fleet: 1000 device(s), newest report of each ({fleet.reports} report(s) read)"
    )
    for status, n in want["by_status"].items():
        assert f"  {status:<9} {n:>7}" in text
    days, thing = want["nearest"][0]
    assert f"  {thing:<34} {days:>6} days" in text
    assert text.rstrip().endswith("Overall: CRITICAL")
    assert "skipped" not in text


def test_stdin(fleet: Fleet, tmp_path: Path) -> None:
    source = _jsonl(fleet, tmp_path / "reports.jsonl")
    code = (
        "import sys; from agent.fleet.summary import run_fleet_summary; "
        "sys.exit(run_fleet_summary('-', 'json'))"
    )
    with open(source, "rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", code], stdin=stdin, capture_output=True, timeout=120, check=False
        )
    assert done.returncode == 2, done.stderr
    _check(json.loads(done.stdout), fleet)


def test_newest_wins_by_time_then_sequence(tmp_path: Path) -> None:
    def report(seq: int, at: str, status: str) -> str:
        return json.dumps({
            "schema_version": 1, "agent_version": "0.1.0", "thing_name": "pi-1",
            "generated_at": at, "sequence": seq, "duration_ms": 1.0, "status": status,
            "summary": {}, "checks": [],
        })  # fmt: skip

    lines = [
        report(57, "2026-11-29T18:00:00Z", "CRITICAL"),
        report(1, "2026-11-29T18:05:00Z", "WARNING"),  # restarted: lower sequence, but newer
        report(2, "2026-11-29T18:04:59.999+00:00", "CRITICAL"),  # older, other notation
        report(3, "2026-11-29T18:05:00Z", "OK"),  # same second, higher sequence: newest
        report(2, "2026-11-29T18:05:00Z", "UNKNOWN"),  # same second, lower sequence
    ]
    source = tmp_path / "r.jsonl"
    source.write_text("\n".join(lines) + "\n")
    summary = read_fleet(source)
    assert summary["by_status"] == {"CRITICAL": 0, "UNKNOWN": 0, "WARNING": 0, "OK": 1}
    assert summary["reports"] == 5


def test_junk_lines_are_counted_never_fatal(fleet: Fleet, tmp_path: Path) -> None:
    good = [p for _, _, p in fleet.payloads[:40]]
    valid = json.loads(good[0])
    junk: dict[str, list[bytes]] = {
        "not JSON": [
            b"hello world",
            good[1][: len(good[1]) // 2],  # truncated mid-report
            b"\xff\xfe\x00garbage",  # not UTF-8
            b"[" * 200_000,  # absurd nesting
            b"{'single': 'quotes'}",
        ],
        "not a health report": [
            b'{"foo": 1}',
            b"42",
            b'"a string"',
            b"[1, 2]",  # two records
            json.dumps({**valid, "thing_name": None}).encode(),
            json.dumps({**valid, "status": "FINE"}).encode(),
            json.dumps({**valid, "status": ["CRITICAL"]}).encode(),
            json.dumps({**valid, "generated_at": "yesterday"}).encode(),
            json.dumps({**valid, "sequence": True}).encode(),
            json.dumps({**valid, "checks": "none"}).encode(),
            json.dumps({"message": '{"not": "a report"}'}).encode(),
        ],
        "line too long": [b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'],
    }
    lines = list(good)
    for i, bad in enumerate(line for group in junk.values() for line in group):
        lines.insert(3 * i % len(lines), bad)
    lines += [b"", b"   ", b"\t"]  # blank lines are not junk
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(b"\n".join(lines))  # and no final newline

    summary = read_fleet(source)

    expected_reasons = {reason: len(group) for reason, group in junk.items()}
    expected_reasons["not a health report"] += 1  # [1, 2] holds two
    assert summary["skipped"] == {
        "lines": sum(expected_reasons.values()),
        "reasons": expected_reasons,
    }
    things = {json.loads(p)["thing_name"] for p in good}
    assert summary["devices"] == len(things)
    text = fleet_summary(source)
    reasons = "not a health report (12), not JSON (5), line too long (1)"
    assert f"{sum(expected_reasons.values())} line(s) skipped: {reasons}" in text


def test_one_reason_reads_as_the_issue_says(tmp_path: Path) -> None:
    source = tmp_path / "r.jsonl"
    source.write_text('{"x": 1}\n{"y": 2}\n[3]\n')
    assert "3 line(s) skipped: not a health report\n" in fleet_summary(source)


def test_broken_files_in_a_tree(fleet: Fleet, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "deep/er").mkdir(parents=True)
    (root / "deep/er/ok.json").write_bytes(fleet.payloads[0][2])
    (root / "empty.json").write_bytes(b"")
    (root / "binary.bin").write_bytes(bytes(range(256)) * 10)
    (root / "truncated.gz").write_bytes(gzip.compress(fleet.payloads[1][2])[:40])
    (root / "pretty-broken.json").write_text('{\n  "schema_version": 1,\n')
    (root / ".hidden.json").write_text("ignored")
    os.mkfifo(root / "a-fifo")  # opening it would block: must be skipped, not read
    summary = read_fleet(root)
    assert summary["devices"] == 1
    assert summary["skipped"]["reasons"] == {
        "binary file": 1,
        "not JSON": 1,
        "unreadable file": 2,  # the FIFO and the truncated gzip
    }


def test_empty_source_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert run_fleet_summary(str(tmp_path / "empty")) == 3
    out = capsys.readouterr().out
    assert out.startswith("Fleet: 0 device(s)")
    assert "(none)" in out and "Overall: UNKNOWN" in out


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FleetInputError, match=r"cannot read .*nope\.jsonl: No such file"):
        read_fleet(tmp_path / "nope.jsonl")


def test_memory_is_bounded_by_devices_not_reports(fleet: Fleet, tmp_path: Path) -> None:
    # 40 devices' payloads repeated to ~15 MB: the reader must stream, not hold the file.
    sample = [p for _, _, p in fleet.payloads[:60]]
    source = tmp_path / "big.jsonl"
    with open(source, "wb") as fh:
        while fh.tell() < 15 * 1024 * 1024:
            fh.write(b"\n".join(sample) + b"\n")
    tracemalloc.start()
    try:
        summary = read_fleet(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary["devices"] == len({json.loads(p)["thing_name"] for p in sample})
    assert peak < 2 * 1024 * 1024, peak
