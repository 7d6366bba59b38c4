"""scripts/fleet: the CloudFormation template passes cfn-lint and agrees with the agent, and the
Fleet Indexing script merges into a real (moto) account configuration instead of replacing it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.fleet.shadow import SHADOW_NAME, build_summary
from agent.report import CheckResult, HealthReport, Status
from tests.conftest import REPO
from tests.peers.base import unavailable
from tests.peers.moto import REGION, MotoServer

FLEET = REPO / "scripts" / "fleet"
TEMPLATE = FLEET / "gghealth-fleet.yaml"
SCRIPT = FLEET / "enable-fleet-indexing.sh"
DOCS = REPO / "docs" / "fleet.md"
FIELD = re.compile(r"shadow\.name\.gghealth\.reported\.([A-Za-z_][A-Za-z0-9_.]*[A-Za-z0-9_])")


def _template() -> dict[str, Any]:
    from cfnlint.decode import decode

    template, errors = decode(str(TEMPLATE))
    assert not errors, errors
    assert template is not None
    return dict(template)


def test_template_passes_cfn_lint() -> None:
    # The venv's own cfn-lint first (the test extras install it), then one on PATH.
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which(
        "cfn-lint"
    )
    if cfn_lint is None:
        unavailable("cfn-lint is not installed (pip install cfn-lint)")
    done = subprocess.run(
        [str(cfn_lint), "--", str(TEMPLATE)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _sql(resource: dict[str, Any]) -> str:
    sql = resource["Properties"]["TopicRulePayload"]["Sql"]
    if isinstance(sql, dict):  # !Sub [text, vars]
        sql = sql["Fn::Sub"][0]
    return " ".join(str(sql).split())


def test_rules_route_the_health_topic() -> None:
    resources = _template()["Resources"]
    metrics, issues = _sql(resources["MetricsRule"]), _sql(resources["IssuesRule"])
    for sql in (metrics, issues):
        assert "FROM 'dt/gghealth/+/health'" in sql
    assert issues == "SELECT * FROM 'dt/gghealth/+/health' WHERE status <> 'OK'"
    assert "'ThingName': topic(3)" in metrics
    # Every metric the EMF block declares is a member of the same object, and the alarm
    # watches one of them.
    declared = set(re.findall(r"\{'Name': '(\w+)', 'Unit'", metrics))
    assigned = set(re.findall(r"'(\w+)': (?:summary\.|CASE )", metrics))
    assert (
        declared
        == assigned
        == {
            "CriticalDevices",
            "CriticalResults",
            "WarningResults",
            "UnknownResults",
            "OkResults",
        }
    )
    alarm = resources["CriticalDevicesAlarm"]["Properties"]
    assert alarm["MetricName"] in declared
    # The per-status counts come from the report's summary, whose keys are the statuses.
    assert set(re.findall(r"summary\.(\w+)", metrics)) == {s.value for s in Status}


def test_deployment_targets_a_thing_group_with_the_shadow_on() -> None:
    template = _template()
    deployment = template["Resources"]["ComponentDeployment"]
    assert deployment["Condition"] == "DeployComponent"
    props = deployment["Properties"]
    assert props["TargetArn"] == {"Ref": "ThingGroupArn"}
    (spec,) = props["Components"].values()
    assert list(props["Components"]) == ["gghealth.HealthAgent"]
    assert spec["ComponentVersion"] == {"Ref": "ComponentVersion"}
    merge = spec["ConfigurationUpdate"]["Fn::If"][1]["Merge"]
    assert json.loads(merge) == {"shadow": {"enabled": True}}
    pattern = re.compile(template["Parameters"]["ThingGroupArn"]["AllowedPattern"])
    assert pattern.fullmatch("arn:aws:iot:eu-west-1:123456789012:thinggroup/pi-fleet")
    assert pattern.fullmatch("")
    assert not pattern.fullmatch("arn:aws:iot:eu-west-1:123456789012:thing/pi-42")


def _sample_summary() -> dict[str, Any]:
    report = HealthReport.build(
        [
            CheckResult("s3.artifact", Status.CRITICAL, "s3://b/a.zip", "m", {}, "fix"),
            CheckResult("certificate.key_match", Status.OK, "/c.crt", "m", {}),
            CheckResult("certificate.validity", Status.OK, "/c.crt", "m", {"days_left": 99}),
        ],
        agent_version="0.1.0",
        thing_name="pi-42",
        generated_at="2026-11-29T18:00:00Z",
        sequence=1,
        duration_ms=1.0,
    )
    return build_summary(report)


def _resolves(summary: dict[str, Any], path: str) -> bool:
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("source", [DOCS, TEMPLATE, SCRIPT], ids=lambda p: p.name)
def test_every_queried_shadow_field_exists(source: Path) -> None:
    summary = _sample_summary()
    text = source.read_text()
    if source == SCRIPT:  # the script builds the names from a prefix variable
        text = re.sub(r"\\\(\$p\)\.", "shadow.name.gghealth.reported.", text)
    fields = set(FIELD.findall(text))
    assert len(fields) >= (5 if source == DOCS else 2)
    missing = sorted(f for f in fields if not _resolves(summary, f))
    assert missing == [], f"{source.name} queries fields the shadow does not have: {missing}"
    assert SHADOW_NAME == "gghealth"


# -- enable-fleet-indexing.sh against a real moto server ------------------------------------------


def _env(moto: MotoServer, tmp_path: Path) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    for tool in ("aws", "jq", "bash"):
        if shutil.which(tool, path=path) is None:
            unavailable(f"{tool} is not installed")
    return {
        "PATH": path,  # the venv's own aws CLI (a test dependency) first
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ACCESS_KEY_ID": moto.admin_key_id,
        "AWS_SECRET_ACCESS_KEY": moto.admin_secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_enable_fleet_indexing_merges_into_the_account(
    moto_iot: MotoServer, tmp_path: Path
) -> None:
    env = _env(moto_iot, tmp_path)
    iot = moto_iot.client("iot")
    before = {
        "thingIndexingMode": "REGISTRY",
        "thingConnectivityIndexingMode": "STATUS",
        "namedShadowIndexingMode": "ON",
        "filter": {"namedShadowNames": ["firmware"]},
        "customFields": [{"name": "attributes.model", "type": "String"}],
    }
    iot.update_indexing_configuration(thingIndexingConfiguration=before)

    dry = _run(env, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "nothing changed" in dry.stderr
    assert iot.get_indexing_configuration()["thingIndexingConfiguration"]["filter"] == {
        "namedShadowNames": ["firmware"]
    }

    for _ in range(2):  # running it twice changes nothing more
        done = _run(env)
        assert done.returncode == 0, done.stderr
        config = iot.get_indexing_configuration()["thingIndexingConfiguration"]
        assert config["namedShadowIndexingMode"] == "ON"
        assert config["thingIndexingMode"] == "REGISTRY_AND_SHADOW"
        assert config["thingConnectivityIndexingMode"] == "STATUS"  # kept
        assert sorted(config["filter"]["namedShadowNames"]) == ["firmware", "gghealth"]
        names = [f["name"] for f in config["customFields"]]
        assert len(names) == len(set(names))
        assert names[0] == "attributes.model"  # kept, first
        fields = {f["name"]: f["type"] for f in config["customFields"]}
        assert fields["shadow.name.gghealth.reported.device_cert_days_left"] == "Number"
        assert fields["shadow.name.gghealth.reported.status"] == "String"
    # What the script printed is what it applied.
    assert (
        json.loads(done.stdout)["thingIndexingConfiguration"]["customFields"]
        == (config["customFields"])
    )


@pytest.mark.parametrize(
    "args", [["--shadow-name", "bad/name"], ["--frobnicate"], ["--shadow-name"]]
)
def test_enable_fleet_indexing_refuses_bad_arguments(
    moto_iot: MotoServer, tmp_path: Path, args: list[str]
) -> None:
    done = _run(_env(moto_iot, tmp_path), *args)
    assert done.returncode == 2
    assert done.stderr.strip() and "Traceback" not in done.stderr
