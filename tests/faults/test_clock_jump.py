"""The wall clock jumping (an NTP step, a Raspberry Pi without an RTC booting in 1970 and then
syncing): certificate verdicts follow the wall clock, the schedule does not.

End to end, the running agent is given a wall clock that jumps 60 years ahead and then 90 years
back, with libfaketime (``faketime`` Debian package; ``DONT_FAKE_MONOTONIC=1`` leaves the
monotonic clock alone, as a real clock step does): the device certificate turns CRITICAL
expired, then not yet valid, and the reports keep coming at the interval — a scheduler on the
wall clock would stall for 90 years after the backward jump. In process, a pinned clock makes
the same verdicts without any preloaded library.
"""

from __future__ import annotations

import glob
import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.runner import check_once, load_settings
from agent.scheduler import run_every
from tests.hostile.conftest import Device, cli_env
from tests.peers.base import unavailable
from tests.pki import NOW

WAIT_S = 30.0  # a liveness bound per step, not a performance assertion
FUTURE = NOW + timedelta(days=365 * 60)
PAST = NOW - timedelta(days=365 * 90)


def _device_validity(report: dict[str, Any], cert: Path) -> tuple[str, str | None]:
    (found,) = [
        c
        for c in report["checks"]
        if c["id"] == "certificate.validity" and c["target"] == str(cert)
    ]
    return found["status"], found["details"].get("reason")


def test_pinned_wall_clock_drives_verdicts_not_the_schedule(healthy: Device) -> None:
    settings = load_settings(healthy.root)
    cert = healthy.path("certificateFilePath")
    walls = iter([NOW, FUTURE, PAST, NOW])
    seen: list[tuple[str, str | None]] = []
    stop = threading.Event()

    def one_cycle() -> None:
        wall = next(walls)
        report = check_once(settings, ["certificate"], clock=lambda: wall)
        seen.append(_device_validity(report.to_dict(), cert))
        if len(seen) == 4:
            stop.set()

    cycles = run_every(one_cycle, lambda: 0.01, stop)
    assert cycles == 4
    assert seen == [
        ("OK", None),
        ("CRITICAL", "expired"),
        ("CRITICAL", "not_yet_valid"),
        ("OK", None),
    ]


def _libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        unavailable("libfaketime is not installed (Debian package faketime)")
    return found[0]


class Reports:
    """JSON reports read from the agent's stdout as they arrive."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout

        def read() -> None:
            for line in stdout:
                if line.startswith("{"):
                    self.lines.put(json.loads(line))

        threading.Thread(target=read, name="reports", daemon=True).start()

    def until(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first report (from now on) that satisfies ``predicate``."""
        while True:
            try:
                report = self.lines.get(timeout=WAIT_S)
            except queue.Empty:
                pytest.fail("no such report: the schedule stalled")
            if predicate(report):
                return report


def test_running_agent_across_wall_clock_jumps(healthy: Device, tmp_path: Path) -> None:
    library = _libfaketime()
    clock = tmp_path / "faketime"
    clock.write_text(f"@{NOW:%Y-%m-%d %H:%M:%S}\n")
    env = cli_env(
        tmp_path,
        {
            "LD_PRELOAD": library,
            "FAKETIME_TIMESTAMP_FILE": str(clock),
            "FAKETIME_NO_CACHE": "1",
            "DONT_FAKE_MONOTONIC": "1",
        },
    )
    cert = healthy.path("certificateFilePath")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--transport", "stdout", "--interval", "1",
         "--only", "certificate", "--greengrass-root", str(healthy.root)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    reports = Reports(proc)
    try:
        first = reports.until(lambda r: True)
        assert first["generated_at"].startswith(f"{NOW:%Y-%m-%d}")  # the fake clock is in use
        assert _device_validity(first, cert) == ("OK", None)

        clock.write_text(f"@{FUTURE:%Y-%m-%d %H:%M:%S}\n")
        later = reports.until(lambda r: r["generated_at"].startswith(str(FUTURE.year)))
        assert _device_validity(later, cert) == ("CRITICAL", "expired")

        clock.write_text(f"@{PAST:%Y-%m-%d %H:%M:%S}\n")
        back = reports.until(
            lambda r: r["generated_at"][:4] in (str(PAST.year - 1), str(PAST.year))
        )
        assert _device_validity(back, cert) == ("CRITICAL", "not_yet_valid")
        # 90 years back, and the schedule still runs: two more reports at the interval.
        after = [reports.until(lambda r: True) for _ in range(2)]
        assert [r["sequence"] for r in after] == [back["sequence"] + 1, back["sequence"] + 2]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
