"""Closed or failing standard streams (issue 19 item 10): the exit status still says what was
found or that the output was lost - never "internal error", never a WARNING made up by a failed
log line, never "delivered" for a report a reader did not get whole."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.hostile.conftest import Device, cli_env

AGENT = f"{shlex.quote(sys.executable)} -m agent"


def shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def check(dev: Device) -> str:
    return f"{AGENT} check --only certificate --greengrass-root {shlex.quote(str(dev.root))}"


def test_closed_stderr_keeps_the_verdicts_exit_status(healthy: Device, tmp_path: Path) -> None:
    healthy.path("privateKeyPath").chmod(0o644)  # a CRITICAL finding: exit 2
    env = cli_env(tmp_path)
    normal = shell(f"{check(healthy)} >/dev/null", env)
    closed = shell(f"{check(healthy)} >/dev/null 2>&-", env)
    assert normal.returncode == 2, normal.stderr
    assert closed.returncode == normal.returncode


def test_closed_or_full_stdout_is_said_and_exits_3(healthy: Device, tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    closed = shell(f"{check(healthy)} >&-", env)
    full = shell(f"{check(healthy)} >/dev/full", env)
    assert closed.returncode == 3 and "stdout is closed" in closed.stderr
    assert full.returncode == 3 and "No space left on device" in full.stderr
    for proc in (closed, full):
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_run_with_stdout_closed_is_undelivered(healthy: Device, tmp_path: Path) -> None:
    command = (
        f"{AGENT} run --once --transport stdout --only certificate "
        f"--greengrass-root {shlex.quote(str(healthy.root))} >&-"
    )
    proc = shell(command, cli_env(tmp_path))
    assert proc.returncode == 4, proc.stderr
    assert "internal error" not in proc.stderr


def test_a_reader_that_leaves_mid_report_is_no_delivery(healthy: Device, tmp_path: Path) -> None:
    """PYTHONUNBUFFERED=1, a report of ~1 MB, a reader that takes 100 KB and leaves."""
    store = tmp_path / "store"
    store.mkdir()
    for n in range(1000):
        shutil.copy(healthy.path("certificateFilePath"), store / f"client-{n:03}.pem.crt")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"certificates": {"extraPaths": [str(store)]}}))
    env = {**cli_env(tmp_path), "PYTHONUNBUFFERED": "1"}
    run = (
        f"{AGENT} --log-level INFO run --once --transport stdout --only certificate "
        f"--greengrass-root {shlex.quote(str(healthy.root))} --config {shlex.quote(str(config))}"
    )
    whole = shell(f"{run} | wc -c", env)
    assert int(whole.stdout) > 500_000  # the report is far larger than what the reader takes
    cut = shell(f"{run} | head -c 100000 >/dev/null; exit ${{PIPESTATUS[0]}}", env)
    assert cut.returncode == 4, cut.stderr[-2000:]
    events = [json.loads(line) for line in cut.stderr.splitlines() if line.startswith("{")]
    [done] = [e for e in events if e["event"] == "cycle_done"]
    assert done["delivery"] == "failed"
