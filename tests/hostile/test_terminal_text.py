"""Text shown to a person carries no terminal control sequence from the data it shows (issue 19
item 9): file names, thing names, topics and messages are escaped, a newline cannot forge a row,
and the only escape sequences left are the renderer's own colours."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from agent.printable import printable
from agent.render import render_text
from agent.report import CheckResult, HealthReport, Status, to_json
from tests.hostile.conftest import Device, cli_env, run_cli

HOSTILE = "evil\x1b]0;owned\x07\x1b[2J\nCRITICAL forged.row\r\u202etxt.exe\x9b31m"
COLOUR = re.compile(r"\x1b\[(?:3[1-5](?:;1)?|0)m")
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _report(results: list[CheckResult], thing: str = "pi") -> HealthReport:
    return HealthReport.build(
        results,
        agent_version="0.1.0",
        thing_name=thing,
        generated_at="2026-12-06T00:00:00Z",
        sequence=1,
        duration_ms=1.0,
    )


def _expected_lines(results: list[CheckResult]) -> int:
    areas = {r.area for r in results}
    fixes = sum(1 for r in results if r.status is not Status.OK and r.remediation)
    return 1 + 2 * len(areas) + len(results) + fixes + 2


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("a\x1b[31mb\nc\td\u202e") == "a\\x1b[31mb\\nc\\td\\u202e"
    assert printable("dt/pi-42/health é 😀") == "dt/pi-42/health é 😀"


@given(
    texts=st.lists(st.text(max_size=40), min_size=4, max_size=4),
    status=st.sampled_from(list(Status)),
    colour=st.booleans(),
)
def test_any_text_in_any_field_renders_inert(
    texts: list[str], status: Status, colour: bool
) -> None:
    target, message, remediation, thing = texts
    results = [
        CheckResult("certificate.validity", status, target, message, remediation or None),
        CheckResult("subscription.policy_lint", Status.OK, "x", "fine"),
    ]
    text = render_text(_report(results, thing), colour=colour)
    plain = COLOUR.sub("", text)
    assert CONTROL.search(plain) is None, plain
    assert len(text.splitlines()) == _expected_lines(results)
    assert (COLOUR.search(text) is not None) is colour


def test_a_hostile_file_name_reaches_the_table_escaped(healthy: Device, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / f"client{HOSTILE}.pem").write_bytes(healthy.device.pem())
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"certificates": {"extraPaths": [str(store)]}}))
    args = ["check", "--only", "certificate", "--greengrass-root", str(healthy.root)]
    proc = run_cli([*args, "--config", str(config)], cli_env(tmp_path))
    assert proc.returncode in (0, 1, 2), proc.stderr
    assert "\\r\\u202etxt.exe\\x9b31m.pem" in proc.stdout  # the table keeps a path's end
    assert CONTROL.search(proc.stdout) is None
    assert not any(line.startswith("CRITICAL forged.row") for line in proc.stdout.splitlines())


def test_error_messages_and_authorize_answers_are_escaped(healthy: Device, tmp_path: Path) -> None:
    missing = tmp_path / f"conf{HOSTILE}.yaml"
    args = ["check", "--greengrass-root", str(healthy.root), "--config", str(missing)]
    proc = run_cli(args, cli_env(tmp_path))
    assert proc.returncode == 3
    assert "does not exist" in proc.stderr and CONTROL.search(proc.stderr.rstrip("\n")) is None
    request = ["authorize", "--greengrass-root", str(healthy.root), "c"]
    answer = run_cli(
        [*request, "aws.greengrass.ipc.pubsub", "aws.greengrass#PublishToTopic", HOSTILE],
        cli_env(tmp_path),
    )
    assert answer.returncode == 1
    assert answer.stdout.startswith("REFUSED") and answer.stdout.count("\n") == 1
    assert CONTROL.search(answer.stdout.rstrip("\n")) is None


def test_fleet_summary_text_escapes_thing_names(tmp_path: Path) -> None:
    validity = CheckResult(
        "certificate.validity",
        Status.CRITICAL,
        "/greengrass/v2/thingCert.crt",
        "expired",
        details={"role": "device_cert", "days_left": -3},
    )
    report = _report([validity], HOSTILE)
    reports = tmp_path / "reports.jsonl"
    reports.write_text(to_json(report) + "\n")
    proc = run_cli(["fleet-summary", str(reports)], cli_env(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert "\\x1b]0;owned" in proc.stdout and CONTROL.search(proc.stdout.replace("\n", "")) is None
