"""As root, no configured path makes the agent replace, truncate or write through anything but
a regular file of its own (issue 19 item 1): device nodes, FIFOs, planted symlinks, hard links
and world-writable directories are a configuration error (exit 3) before any write, and a link
planted while it runs is a failed delivery that leaves its target untouched."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.report import Delivery, HealthReport
from agent.transports.file import FilePublisher
from tests.hostile import inputs
from tests.hostile.conftest import Device, cli_env, run_cli

VICTIM_TEXT = "root:x:0:0:root:/root:/bin/bash\n"


def _run_file_transport(dev: Device, work: Path, target: Path, history: bool = False) -> int:
    config = work / "config.json"
    file_config: dict[str, object] = {"path": str(target)}
    if history:
        file_config["historyMaxBytes"] = 100_000
    config.write_text(json.dumps({"transport": "file", "file": file_config}))
    args = ["run", "--once", "--only", "certificate", "--greengrass-root", str(dev.root)]
    proc = run_cli([*args, "--config", str(config)], cli_env(work))
    assert "Traceback" not in proc.stderr
    if proc.returncode == 3:
        assert "choose a path in a directory the agent owns" in proc.stderr, proc.stderr
    return proc.returncode


def _victim(work: Path) -> Path:
    victim = work / "victim" / "passwd"
    victim.parent.mkdir()
    victim.write_text(VICTIM_TEXT)
    return victim


def test_a_device_node_stays_a_device(healthy: Device, tmp_path: Path) -> None:
    """A node of its own standing in for /dev/null (the old agent replaced the real one)."""
    node = tmp_path / "dev" / "null"
    node.parent.mkdir()
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert _run_file_transport(healthy, tmp_path, node) == 3
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_a_fifo_is_refused(healthy: Device, tmp_path: Path) -> None:
    fifo = inputs.fifo(tmp_path / "out" / "report.json")
    assert _run_file_transport(healthy, tmp_path, fifo) == 3
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def _planted_link(report: Path, victim: Path) -> None:
    report.parent.mkdir(exist_ok=True)
    report.symlink_to(victim)


def _planted_history_link(report: Path, victim: Path) -> None:
    report.parent.mkdir(exist_ok=True)
    report.with_name(report.name + ".jsonl").symlink_to(victim)


def _hard_link(report: Path, victim: Path) -> None:
    report.parent.mkdir(exist_ok=True)
    os.link(victim, report)


@pytest.mark.parametrize("plant", [_planted_link, _planted_history_link, _hard_link])
def test_links_are_never_written_through(
    healthy: Device, tmp_path: Path, plant: Callable[[Path, Path], None]
) -> None:
    victim = _victim(tmp_path)
    report = tmp_path / "out" / "report.json"
    plant(report, victim)
    assert _run_file_transport(healthy, tmp_path, report, history=True) == 3
    assert victim.read_text() == VICTIM_TEXT


def test_a_world_writable_directory_is_refused(healthy: Device, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    assert _run_file_transport(healthy, tmp_path, shared / "report.json") == 3
    assert list(shared.iterdir()) == []


def test_a_directory_of_the_agents_own_works(healthy: Device, tmp_path: Path) -> None:
    """Control: the same command writes the report and its history where it may."""
    report = tmp_path / "own" / "report.json"
    assert _run_file_transport(healthy, tmp_path, report, history=True) == 0
    assert json.loads(report.read_text())["checks"]
    assert report.with_name("report.json.jsonl").read_text().count("\n") == 1


def test_a_link_planted_while_running_fails_the_delivery(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    publisher = FilePublisher(report, history_max_bytes=100_000)
    sample = HealthReport.build(
        [],
        agent_version="0",
        thing_name="pi",
        generated_at="2026-12-06T00:00:00Z",
        sequence=1,
        duration_ms=0.0,
    )
    assert publisher.publish(sample).delivery is Delivery.DELIVERED
    history = report.with_name("report.json.jsonl")
    history.unlink()
    history.symlink_to(victim)
    outcome = publisher.publish(sample)
    assert outcome.delivery is Delivery.FAILED and "symbolic link" in outcome.message
    report.unlink()
    report.symlink_to(victim)
    assert publisher.publish(sample).delivery is Delivery.FAILED
    assert victim.read_text() == VICTIM_TEXT


def test_a_file_that_is_not_the_agents_output_is_never_replaced(
    healthy: Device, tmp_path: Path
) -> None:
    """A mistyped file.path naming a system file (root-owned, in a root-owned directory) is
    refused; the agent replaces only what it wrote, which the control run shows it does."""
    etc = tmp_path / "etc"
    etc.mkdir()
    passwd = etc / "passwd"
    passwd.write_text(VICTIM_TEXT)
    assert _run_file_transport(healthy, tmp_path, passwd, history=True) == 3
    assert passwd.read_text() == VICTIM_TEXT
    report = tmp_path / "own" / "report.json"
    assert _run_file_transport(healthy, tmp_path, report, history=True) == 0
    assert _run_file_transport(healthy, tmp_path, report, history=True) == 0  # its own: replaced
    assert report.with_name("report.json.jsonl").read_text().count("\n") == 2
