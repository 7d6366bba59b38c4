"""``gg-health-agent run --transport mqtt`` end to end: a real agent process, a real broker.

The agent runs as a subprocess, as the nucleus (or a person debugging) would start it; the
broker is Mosquitto with TLS client certificates and dynamic-security ACLs; a persistent-session
``mosquitto_sub`` records what subscribers receive, across broker restarts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.transports.will import is_will
from tests.conftest import REPO
from tests.peers.mosquitto import Mosquitto, Subscriber
from tests.pki import THING
from tests.transports.helpers import TOPIC, greengrass_root, wait_for

STOP_LIMIT_S = 5.0  # SPEC: SIGTERM -> exit 0 within 5 s


class AgentProcess:
    """One ``python -m agent run`` process; its JSON log lines are read from a file."""

    def __init__(self, root: Path, config: Path, log: Path) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k not in {"SVCUID", "GG_ROOT_CA_PATH"}
        }
        self.log = log
        with open(log, "ab") as sink:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "agent", "--log-level", "INFO", "run"),
                    *("--greengrass-root", str(root), "--config", str(config)),
                    *("--transport", "mqtt", "--only", "certificate,agent"),
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == name and event.get("pid", self.proc.pid) == self.proc.pid:
                out.append(event)
        return out

    def cycles(self) -> list[dict[str, Any]]:
        return self.events("cycle_done")

    def terminate(self) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_LIMIT_S + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        return rc, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def setup(
    mosquitto: Mosquitto, tmp_path: Path
) -> Iterator[tuple[Mosquitto, Subscriber, Path, Path]]:
    mosquitto.allow(THING, publish=[f"dt/gghealth/{THING}/#"])
    sub = Subscriber(mosquitto, "watcher", "dt/#")
    mosquitto.start()
    sub.start()
    root = greengrass_root(tmp_path, mosquitto).root
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump({"intervalSeconds": 1, "spool": {"path": str(tmp_path / "spool")}})
    )
    yield mosquitto, sub, root, config
    sub.stop()


def received(sub: Subscriber) -> list[dict[str, Any]]:
    return [json.loads(p) for p in sub.payloads()]


def real_reports(sub: Subscriber) -> list[dict[str, Any]]:
    return [r for r in received(sub) if not is_will(r)]


def test_reports_arrive_at_the_interval_and_sigterm_exits_0(
    setup: tuple[Mosquitto, Subscriber, Path, Path], tmp_path: Path
) -> None:
    broker, sub, root, config = setup
    agent = AgentProcess(root, config, tmp_path / "agent.log")
    try:
        assert wait_for(lambda: len(real_reports(sub)) >= 3), agent.log.read_text()[-3000:]
        reports = real_reports(sub)
        assert [r["sequence"] for r in reports[:3]] == [1, 2, 3]
        assert all(r["thing_name"] == THING for r in reports)
        # From the second report on, agent.publish says how the previous publish went.
        (publish,) = [c for c in reports[1]["checks"] if c["id"] == "agent.publish"]
        assert (publish["status"], publish["target"]) == ("OK", "mqtt")
        assert publish["details"]["topic"] == TOPIC
        assert publish["details"]["depth"] == 0
        rc, took = agent.terminate()
        assert rc == 0, agent.log.read_text()[-3000:]
        assert took < STOP_LIMIT_S
    finally:
        agent.kill()
    # A clean stop sends DISCONNECT 0x00: the broker discards the will.
    time.sleep(0.5)
    assert not [r for r in received(sub) if is_will(r)]
    assert "Client pi-42 disconnected." in broker.log_path.read_text()


def test_kill_9_while_connected_publishes_the_will(
    setup: tuple[Mosquitto, Subscriber, Path, Path], tmp_path: Path
) -> None:
    _broker, sub, root, config = setup
    agent = AgentProcess(root, config, tmp_path / "agent.log")
    try:
        assert wait_for(lambda: len(real_reports(sub)) >= 1)
        agent.kill()
        assert wait_for(lambda: any(is_will(r) for r in received(sub)))
    finally:
        agent.kill()
    (will,) = [r for r in received(sub) if is_will(r)]
    assert will["status"] == "UNKNOWN"
    assert will["thing_name"] == THING and will["sequence"] == 0
    (result,) = will["checks"]
    assert result["id"] == "agent.publish" and result["status"] == "UNKNOWN"
    assert "disconnected from the broker unexpectedly" in result["message"]
    assert result["remediation"]


def test_outage_with_a_crash_in_the_middle_loses_nothing(
    setup: tuple[Mosquitto, Subscriber, Path, Path], tmp_path: Path
) -> None:
    broker, sub, root, config = setup
    first = AgentProcess(root, config, tmp_path / "first.log")
    second: AgentProcess | None = None
    try:
        assert wait_for(lambda: len(real_reports(sub)) >= 2)
        broker.stop()
        # The agent keeps producing reports while the broker is down: they are spooled.
        assert wait_for(lambda: sum(c["delivery"] == "spooled" for c in first.cycles()) >= 3), (
            first.log.read_text()[-3000:]
        )
        first.kill()  # SIGKILL while offline
        produced_by_first = max(c["sequence"] for c in first.cycles())
        second = AgentProcess(root, config, tmp_path / "second.log")
        assert wait_for(lambda: sum(c["delivery"] == "spooled" for c in second.cycles()) >= 2)
        broker.start()
        # Every report of both lifetimes arrives once the broker is back.
        assert wait_for(
            lambda: len(_blocks(real_reports(sub))) == 2 and len(_blocks(real_reports(sub))[1]) >= 4
        ), [r["sequence"] for r in real_reports(sub)]
        rc, _ = second.terminate()
        assert rc == 0
        produced_by_second = max(c["sequence"] for c in second.cycles())
    finally:
        first.kill()
        if second is not None:
            second.kill()
    time.sleep(0.5)
    a_block, b_block = _blocks(real_reports(sub))
    # First lifetime: everything it produced (maybe one more it spooled just before the kill
    # signal landed), in order; at-least-once allows a repeat only across the restart.
    a_unique = [s for i, s in enumerate(a_block) if i == 0 or a_block[i - 1] != s]
    assert a_unique == list(range(1, len(a_unique) + 1))
    assert len(a_unique) >= produced_by_first
    # Second lifetime: in order, none twice, nothing missing.
    assert b_block == list(range(1, len(b_block) + 1))
    assert len(b_block) >= produced_by_second
    # Reports made offline say so: agent.publish of the second lifetime's 2nd report is the
    # spooled publish of its 1st, with the depth that includes the first lifetime's backlog.
    second_reports = [r for r in real_reports(sub) if r["sequence"] == 2][-1:]
    (publish,) = [c for c in second_reports[0]["checks"] if c["id"] == "agent.publish"]
    assert publish["status"] == "WARNING" and publish["details"]["delivery"] == "spooled"
    assert publish["details"]["depth"] >= 3 + 1
    assert "not connected" in publish["message"] and publish["remediation"]


def _blocks(reports: list[dict[str, Any]]) -> list[list[int]]:
    """Split the received sequences into process lifetimes (each restarts at 1)."""
    blocks: list[list[int]] = []
    for r in reports:
        seq = int(r["sequence"])
        if seq == 1 and (not blocks or blocks[-1][-1] != 1):
            blocks.append([])
        if not blocks:
            blocks.append([])
        blocks[-1].append(seq)
    return blocks


def test_broker_down_from_the_start_spools_and_sigterm_still_exits_0(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    mosquitto.allow(THING, publish=[TOPIC])  # configured but never started
    root = greengrass_root(tmp_path, mosquitto).root
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump({"intervalSeconds": 1, "spool": {"path": str(tmp_path / "spool")}})
    )
    once = subprocess.run(
        [
            sys.executable,
            *("-m", "agent", "run", "--once", "--transport", "mqtt", "--only", "agent"),
            *("--greengrass-root", str(root), "--config", str(config)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert once.returncode == 0, once.stderr[-2000:]  # SPEC: durably spooled is success
    agent = AgentProcess(root, config, tmp_path / "agent.log")
    try:
        assert wait_for(lambda: len(agent.cycles()) >= 2)
        assert {c["delivery"] for c in agent.cycles()} == {"spooled"}
        rc, took = agent.terminate()
        assert rc == 0
        assert took < STOP_LIMIT_S
    finally:
        agent.kill()
    from agent.transports.spool import Spool

    spooled = Spool(tmp_path / "spool" / "spool.sqlite3", 1 << 20).peek_batch(100)
    sequences = [json.loads(e.payload)["sequence"] for e in spooled]
    assert sequences[0] == 1 and sequences[1:3] == [1, 2]  # --once's report, then the run's
