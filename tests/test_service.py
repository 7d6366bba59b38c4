"""``run`` over IPC against the nucleus stand-in: the real awsiotsdk client end to end.

The agent runs as a separate process, as the nucleus would start it; the stand-in runs in the
test process so the test can push configuration updates, refuse publishes and drop the socket.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.demo import THING, build_demo_root
from tests.nucleus.standin import NucleusStandIn

COMPONENT = "gghealth.HealthAgent"
TOPIC = f"dt/gghealth/{THING}/health"
WAIT_S = 20.0  # generous: a liveness bound, not a performance assertion


@pytest.fixture(scope="module")
def gg_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_root(tmp_path_factory.mktemp("gg"))


def _config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"intervalSeconds": 1, "transport": "ipc"}
    config.update(overrides)
    return config


class Agent:
    """The agent process under test."""

    def __init__(self, root: Path, stand_in: NucleusStandIn, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(stand_in.env())
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent",
                "--log-level",
                "INFO",
                "run",
                "--greengrass-root",
                str(root),
                "--only",
                "certificate,agent",
                *extra,
            ],
            env=env,
            cwd=stand_in.socket_path.parent,  # its work dir: the default spool goes there
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


@pytest.fixture
def agent_proc(gg_root: Path, nucleus: NucleusStandIn) -> Iterator[Agent]:
    nucleus.set_configuration(COMPONENT, _config())
    agent = Agent(gg_root, nucleus)
    yield agent
    agent.stop()


def _reports(stand_in: NucleusStandIn) -> list[dict[str, Any]]:
    return [json.loads(p.payload) for p in stand_in.publishes if p.topic == TOPIC]


def test_publishes_at_the_interval_and_reports_running(
    agent_proc: Agent,
    nucleus: NucleusStandIn,
) -> None:
    assert nucleus.wait_for(lambda: len(_reports(nucleus)) >= 3, WAIT_S)
    reports = _reports(nucleus)
    assert [r["sequence"] for r in reports[:3]] == [1, 2, 3]
    assert all(p.qos == "1" for p in nucleus.publishes)
    assert reports[0]["thing_name"] == THING
    assert "RUNNING" in nucleus.states
    # From the second report on, the agent reports how its previous publish went.
    publish_results = [c for c in reports[1]["checks"] if c["id"] == "agent.publish"]
    assert [(c["status"], c["target"]) for c in publish_results] == [("OK", "ipc")]
    rc, err = agent_proc.stop()
    assert rc == 0, err


def test_configuration_update_applies_without_restart(
    agent_proc: Agent,
    nucleus: NucleusStandIn,
) -> None:
    assert nucleus.wait_for(lambda: len(_reports(nucleus)) >= 1, WAIT_S)

    def device_cert_validity(report: dict[str, Any]) -> str:
        (c,) = [
            c
            for c in report["checks"]
            if c["id"] == "certificate.validity" and c["target"].endswith("thingCert.crt")
        ]
        return str(c["status"])

    assert device_cert_validity(_reports(nucleus)[0]) == "OK"  # 364 days left, warnDays 30
    # An invalid update is rejected and the agent keeps publishing with the last good config.
    nucleus.set_configuration(COMPONENT, _config(intervalSeconds="whenever"))
    nucleus.push_configuration_update(COMPONENT, ["intervalSeconds"])
    seen = len(_reports(nucleus))
    assert nucleus.wait_for(lambda: len(_reports(nucleus)) >= seen + 2, WAIT_S)
    # A valid one applies at the next cycle.
    nucleus.set_configuration(COMPONENT, _config(certificates={"warnDays": 400}))
    nucleus.push_configuration_update(COMPONENT, ["certificates", "warnDays"])
    assert nucleus.wait_for(
        lambda: device_cert_validity(_reports(nucleus)[-1]) == "WARNING", WAIT_S
    )
    rc, err = agent_proc.stop()
    assert rc == 0
    assert "configuration_update_rejected" in err and "intervalSeconds" in err


def test_survives_the_socket_being_dropped_and_the_nucleus_restarting(
    agent_proc: Agent,
    nucleus: NucleusStandIn,
) -> None:
    assert nucleus.wait_for(lambda: len(_reports(nucleus)) >= 1, WAIT_S)
    nucleus.drop_connections()
    seen = len(_reports(nucleus))
    assert nucleus.wait_for(lambda: len(_reports(nucleus)) >= seen + 2, WAIT_S)
    nucleus.stop()
    nucleus.start()  # same socket path, as after a nucleus restart
    seen = len(_reports(nucleus))
    assert nucleus.wait_for(lambda: len(_reports(nucleus)) >= seen + 2, WAIT_S)
    assert nucleus.connections_accepted >= 3
    # What could not be delivered while the nucleus was away was spooled and delivered in order
    # afterwards: every report of the run arrived, none out of order.
    sequences = [r["sequence"] for r in _reports(nucleus)]
    assert sequences == sorted(sequences)
    assert sorted(set(sequences)) == list(range(1, max(sequences) + 1))
    # The reports that could not be delivered while the socket was down were counted.
    statuses = {
        c["status"] for r in _reports(nucleus) for c in r["checks"] if c["id"] == "agent.publish"
    }
    assert "OK" in statuses
    rc, _ = agent_proc.stop()
    assert rc == 0


def test_unauthorized_publish_becomes_a_critical_agent_publish(
    gg_root: Path,
    nucleus: NucleusStandIn,
) -> None:
    refused = []

    def deny_first_two(topic: str) -> bool:
        refused.append(topic)
        return len(refused) <= 2

    nucleus.deny_publish(deny_first_two)
    nucleus.set_configuration(COMPONENT, _config())
    agent = Agent(gg_root, nucleus)
    try:
        assert nucleus.wait_for(lambda: len(_reports(nucleus)) >= 1, WAIT_S)
        (result,) = [c for c in _reports(nucleus)[0]["checks"] if c["id"] == "agent.publish"]
        assert result["status"] == "CRITICAL"
        assert result["details"]["unauthorized"] is True
        assert "aws.greengrass#PublishToIoTCore" in result["remediation"]
        assert TOPIC in result["remediation"]
    finally:
        rc, err = agent.stop()
    assert rc == 0
    assert err.count("ipc_publish_unauthorized") == 1  # logged once, not every cycle


def test_sigterm_exits_0_even_mid_interval(
    gg_root: Path,
    nucleus: NucleusStandIn,
) -> None:
    nucleus.set_configuration(COMPONENT, _config(intervalSeconds=3600))
    agent = Agent(gg_root, nucleus)
    assert nucleus.wait_for(lambda: len(_reports(nucleus)) == 1, WAIT_S)
    rc, err = agent.stop()
    assert rc == 0, err
    assert len(_reports(nucleus)) == 1
