"""The nucleus socket dropped in the middle of a publish: the running agent (a real process,
the real awsiotsdk client) keeps running, spools the report the nucleus never got, reconnects,
and the next cycle delivers both, in order, once each; its report says the previous one had to
be spooled."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.proxy import CuttingProxy
from tests.hostile.conftest import Device, cli_env
from tests.nucleus.standin import SOCKET_ENV, NucleusStandIn

pytestmark = pytest.mark.peer

COMPONENT = "gghealth.HealthAgent"
TOPIC = "dt/gghealth/pi-42/health"
WAIT_S = 30.0  # a liveness bound, not a performance assertion


@pytest.fixture
def proxy(nucleus: NucleusStandIn, nucleus_dir: Path) -> Iterator[CuttingProxy]:
    cutter = CuttingProxy(nucleus_dir / "proxy.sock", nucleus.socket_path)
    cutter.start()
    yield cutter
    cutter.stop()


def _reports(nucleus: NucleusStandIn) -> list[dict[str, Any]]:
    return [json.loads(p.payload) for p in nucleus.publishes if p.topic == TOPIC]


def _publish_result(report: dict[str, Any]) -> dict[str, Any]:
    (found,) = [c for c in report["checks"] if c["id"] == "agent.publish"]
    return found


def test_socket_dropped_mid_publish_the_next_cycle_delivers(
    healthy: Device, nucleus: NucleusStandIn, proxy: CuttingProxy, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    nucleus.set_configuration(COMPONENT, {"intervalSeconds": 1, "spool": {"path": str(spool)}})
    env = cli_env(tmp_path, {**nucleus.env(), SOCKET_ENV: str(proxy.path)})
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent", "--log-level", "INFO", "run",
         "--only", "certificate,agent", "--greengrass-root", str(healthy.root)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert nucleus.wait_for(lambda: len(_reports(nucleus)) >= 3, WAIT_S), "no recovery"
        assert agent.poll() is None, "the agent died with the connection"
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=WAIT_S)
    assert agent.returncode == 0, err[-3000:]
    assert proxy.cut == 1
    assert proxy.connections >= 2  # it reconnected after the cut
    reports = _reports(nucleus)
    # Report 1 died with the connection before the nucleus saw it, waited in the spool and went
    # out first after the reconnect: nothing lost, nothing twice, order kept.
    assert [r["sequence"] for r in reports][:3] == [1, 2, 3]
    assert "agent.publish" not in {c["id"] for c in reports[0]["checks"]}  # nothing before it
    spooled = _publish_result(reports[1])
    assert spooled["status"] == "WARNING"
    assert spooled["details"]["delivery"] == "spooled"
    assert spooled["details"]["depth"] == 1
    assert spooled["remediation"]
    assert _publish_result(reports[2])["status"] == "OK"
    assert spool.is_dir()  # the configured spool, not ./gghealth-spool
    assert "Traceback" not in err
