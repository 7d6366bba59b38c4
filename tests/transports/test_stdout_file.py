"""stdout and file transports: one JSON line per report, atomic replacement, rotated history."""

from __future__ import annotations

import io
import json
from pathlib import Path

from agent.report import CheckResult, Delivery, HealthReport, Status
from agent.transports.file import FilePublisher
from agent.transports.stdout import StdoutPublisher


def _report(seq: int, n: int = 1) -> HealthReport:
    results = [CheckResult("certificate.validity", Status.OK, f"/c/{i}", "fine") for i in range(n)]
    return HealthReport.build(
        results,
        agent_version="0.1.0",
        thing_name="pi",
        generated_at="2026-11-29T18:00:00Z",
        sequence=seq,
        duration_ms=1.0,
    )


def test_stdout_writes_one_json_line_per_report() -> None:
    buf = io.StringIO()
    pub = StdoutPublisher(buf)
    assert pub.publish(_report(1)).delivery is Delivery.DELIVERED
    assert pub.publish(_report(2)).delivery is Delivery.DELIVERED
    lines = buf.getvalue().splitlines()
    assert [json.loads(line)["sequence"] for line in lines] == [1, 2]


def test_stdout_closed_pipe_is_a_failed_delivery() -> None:
    buf = io.StringIO()
    buf.close()
    outcome = StdoutPublisher(buf).publish(_report(1))
    assert outcome.delivery is Delivery.FAILED
    assert "stdout" in outcome.message


def test_file_transport_replaces_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "health.json"
    pub = FilePublisher(target)
    for seq in (1, 2, 3):
        assert pub.publish(_report(seq)).delivery is Delivery.DELIVERED
    assert json.loads(target.read_text())["sequence"] == 3
    assert sorted(p.name for p in target.parent.iterdir()) == ["health.json"]


def test_file_history_rotates_at_its_limit(tmp_path: Path) -> None:
    target = tmp_path / "health.json"
    line_size = len(json.dumps(_report(1).to_dict(), separators=(",", ":"))) + 1
    pub = FilePublisher(target, history_max_bytes=line_size * 3)
    for seq in range(1, 8):
        pub.publish(_report(seq))
    current = [
        json.loads(x)["sequence"] for x in (tmp_path / "health.json.jsonl").read_text().splitlines()
    ]
    rotated = [
        json.loads(x)["sequence"]
        for x in (tmp_path / "health.json.jsonl.1").read_text().splitlines()
    ]
    # Room for three lines: the 4th and the 7th report each start a new generation.
    assert (rotated, current) == ([4, 5, 6], [7])


def test_file_transport_unwritable_path_is_a_failed_delivery(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    outcome = FilePublisher(blocker / "health.json").publish(_report(1))
    assert outcome.delivery is Delivery.FAILED
    assert outcome.remediation and "writable" in outcome.remediation
