"""Issue 9 end to end, through the wiring the lead owns (agent/cli.py, agent/config/,
agent/service.py): ``gg-health-agent fleet-summary`` and ``run`` with ``shadow.enabled`` over
the nucleus stand-in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.demo import THING, build_demo_root
from agent.fleet.shadow import MAX_STATE_BYTES
from tests.fleet.generate import generate
from tests.nucleus.standin import NucleusStandIn

COMPONENT = "gghealth.HealthAgent"
SHADOW_TOPIC = f"$aws/things/{THING}/shadow/name/gghealth/update"
HEALTH_TOPIC = f"dt/gghealth/{THING}/health"
WAIT_S = 20.0  # a liveness bound, not a performance assertion


def _cli(*args: str, stdin: Any = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=stdin,
    )


def test_fleet_summary_command(tmp_path: Path) -> None:
    fleet = generate(200, seed=7)
    source = tmp_path / "reports.jsonl"
    source.write_bytes(b"\n".join(p for _, _, p in fleet.payloads) + b"\nnot a report\n")

    text = _cli("fleet-summary", str(source))
    assert text.returncode == 2, text.stderr  # the worst device is CRITICAL
    assert text.stdout.startswith("Fleet: 200 device(s)")
    assert "1 line(s) skipped: not JSON" in text.stdout

    with open(source, "rb") as fh:
        as_json = subprocess.run(
            [sys.executable, "-m", "agent", "fleet-summary", "-", "--format", "json"],
            stdin=fh,
            capture_output=True,
            timeout=120,
            check=False,
        )
    summary = json.loads(as_json.stdout)
    assert summary["devices"] == 200
    assert summary["by_status"]["CRITICAL"] == sum(
        s.value == "CRITICAL" for s in fleet.expected.status.values()
    )


def test_fleet_summary_bad_path_is_one_clear_line(tmp_path: Path) -> None:
    proc = _cli("fleet-summary", str(tmp_path / "missing"))
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert "cannot read" in proc.stderr and "missing" in proc.stderr
    assert proc.stdout == ""
    usage = _cli("fleet-summary", str(tmp_path), "--format", "xml")
    assert usage.returncode == 3 and "Traceback" not in usage.stderr


def test_run_updates_the_named_shadow_through_the_nucleus(
    tmp_path: Path, nucleus: NucleusStandIn
) -> None:
    root = build_demo_root(tmp_path / "gg")
    nucleus.set_configuration(
        COMPONENT, {"intervalSeconds": 1, "transport": "ipc", "shadow": {"enabled": True}}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(nucleus.env())
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--log-level", "INFO", "run",
         "--greengrass-root", str(root), "--only", "certificate,agent"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def reports() -> list[Any]:
            return [p for p in nucleus.publishes if p.topic == HEALTH_TOPIC]

        assert nucleus.wait_for(lambda: len(reports()) >= 4, WAIT_S)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err

    updates = [p for p in nucleus.publishes if p.topic == SHADOW_TOPIC]
    # The first cycle updates the shadow; later cycles with the same findings do not. The second
    # report may differ once (agent.publish learns how the first publish went).
    assert 1 <= len(updates) <= 2, [json.loads(u.payload) for u in updates]
    assert all(len(u.payload) <= MAX_STATE_BYTES for u in updates)
    reported = json.loads(updates[-1].payload)["state"]["reported"]
    last_report = json.loads(reports()[-1].payload)
    assert reported["status"] == last_report["status"]
    assert reported["counts"] == last_report["summary"]
    (validity,) = [
        c
        for c in last_report["checks"]
        if c["id"] == "certificate.validity" and c["target"].endswith("thingCert.crt")
    ]
    assert reported["device_cert_days_left"] == validity["details"]["days_left"]
