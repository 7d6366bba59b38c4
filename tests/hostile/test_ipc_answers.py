"""The nucleus answering ``GetConfiguration`` with values of the wrong shape: the agent (a real
process, the real awsiotsdk client, the nucleus stand-in) logs which key is wrong, keeps the
configuration it has from ``effectiveConfig.yaml``, and still delivers its report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.conftest import Device, cli_env, run_cli
from tests.nucleus.standin import NucleusStandIn

pytestmark = pytest.mark.peer

COMPONENT = "gghealth.HealthAgent"
TOPIC = "dt/gghealth/pi-42/health"  # the default topic for thing pi-42 of the healthy root


def deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        node = {"a": node}
    return node


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param({"intervalSeconds": "soon"}, "intervalSeconds", id="interval_words"),
        pytest.param({"healthTopic": "dt/#"}, "healthTopic", id="topic_wildcard"),
        pytest.param({"accessControl": "allow everything"}, "accessControl", id="acl_string"),
        pytest.param({"transport": 5}, "transport", id="transport_a_number"),
        pytest.param({"certificates": [1, 2]}, "certificates", id="certificates_a_list"),
        pytest.param({"componentName": "x\u0000y"}, "NUL", id="component_name_nul"),
        pytest.param({"healthTopic": "t" * 1_000_000}, "256 bytes", id="topic_of_a_megabyte"),
        pytest.param(deep(400), "unknown key 'a'", id="unknown_key_400_levels_deep"),
        pytest.param(
            {"healthTopic": "$aws/rules/R\udca8ule/dt/x"}, "UTF-8", id="topic_lone_surrogate"
        ),
    ],
)
def test_wrong_shaped_ipc_configuration_keeps_the_agent_publishing(
    value: dict[str, Any],
    fragment: str,
    healthy: Device,
    nucleus: NucleusStandIn,
    tmp_path: Path,
) -> None:
    nucleus.set_configuration(COMPONENT, value)
    proc = run_cli(
        ["--log-level", "INFO", "run", "--once", "--only", "certificate,agent",
         "--greengrass-root", str(healthy.root)],
        cli_env(tmp_path, nucleus.env()),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    rejected = [e for e in events if e["event"] == "ipc_configuration_unavailable"]
    assert len(rejected) == 1, proc.stderr[-3000:]
    assert fragment in rejected[0]["error"]
    assert "effectiveConfig" in rejected[0]["using"]
    reports = [json.loads(p.payload) for p in nucleus.publishes if p.topic == TOPIC]
    assert [r["sequence"] for r in reports] == [1]
    assert {c["id"] for c in reports[0]["checks"]} >= {"certificate.readable"}
