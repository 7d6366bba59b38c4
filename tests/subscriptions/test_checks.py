"""The ``subscription`` checks through CheckContext on realistic Greengrass roots, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.checks.registry import checks_for
from agent.checks.subscriptions import (
    SubscriptionState,
    _index,
    bridge,
    iot_policy,
    legacy_router,
    policy_lint,
    publish_authorized,
)
from agent.report import CheckResult, Status
from agent.runner import run_checks
from tests.conftest import REPO, SHARED_FIXTURES
from tests.subscriptions.conftest import (
    AGENT,
    POLICIES,
    RECIPES,
    THING,
    agent_grant,
    default_configuration,
    fixture_services,
    load_data,
    make_context,
    minimal_policy_text,
    write_root,
)

HEALTH = f"dt/gghealth/{THING}/health"


def _agent(access: Any, **configuration: Any) -> dict[str, Any]:
    return {
        AGENT: {
            "componentType": "GENERIC",
            "version": "0.1.0",
            "configuration": {"accessControl": access, **configuration},
        }
    }


def _one(results: Any) -> CheckResult:
    [only] = list(results)
    return only


# --- subscription.publish_authorized --------------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    [HEALTH, "dt/gghealth/+/health", "dt/gghealth/#", f"dt/gghealth/{THING}/*"],
)
def test_agent_grant_allows_the_health_topic(root: Path, resource: str) -> None:
    ctx = make_context(write_root(root, _agent(agent_grant(resource))))
    result = _one(publish_authorized(ctx))
    assert result.status is Status.OK
    assert result.target == HEALTH
    assert result.details["policy_id"] == f"{AGENT}:mqttproxy:1"
    assert result.details["resource"] == resource


def test_thing_name_variable_with_interpolation(root: Path) -> None:
    access = agent_grant("dt/gghealth/{iot:thingName}/health")
    ctx = make_context(write_root(root, _agent(access), interpolateComponentConfiguration=True))
    assert _one(publish_authorized(ctx)).status is Status.OK


def test_thing_name_variable_without_interpolation_is_refused(root: Path) -> None:
    ctx = make_context(write_root(root, _agent(agent_grant("dt/gghealth/{iot:thingName}/health"))))
    result = _one(publish_authorized(ctx))
    assert result.status is Status.CRITICAL
    assert result.details["reason"] == "thing_name_not_interpolated"
    assert "interpolateComponentConfiguration: true" in (result.remediation or "")


def test_a_grant_the_nucleus_matcher_loses_is_named(root: Path) -> None:
    """dt/gghealth/*/health beside dt/gghealth/*th*/x: documented as granted, refused on the
    device (the patterns share a trie node and the nucleus loses the match)."""
    grant = agent_grant("dt/gghealth/*/health")
    policy = grant["aws.greengrass.ipc.mqttproxy"][f"{AGENT}:mqttproxy:1"]
    policy["resources"].append("dt/gghealth/*th*/x")
    ctx = make_context(write_root(root, _agent(grant)))
    result = _one(publish_authorized(ctx))
    assert result.status is Status.CRITICAL
    assert result.details["reason"] == "nucleus_matcher"
    assert "although, as documented, 'dt/gghealth/*/health'" in result.message
    assert HEALTH in (result.remediation or "")


def test_a_blank_policy_id_elsewhere_refuses_the_agent_too(root: Path) -> None:
    services = _agent(agent_grant(HEALTH))
    services["com.example.Other"] = {
        "configuration": {"accessControl": agent_grant("other/topic", policy_id=" ")}
    }
    ctx = make_context(write_root(root, services))
    result = _one(publish_authorized(ctx))
    assert result.status is Status.CRITICAL
    assert result.details["reason"] == "access_control_rejected"
    assert "every aws.greengrass.ipc.mqttproxy policy" in result.message
    assert "com.example.Other is blank" in result.message


def test_missing_grant_names_the_grant_to_add(root: Path, tmp_path: Path) -> None:
    pubsub_only = {
        "aws.greengrass.ipc.pubsub": {
            "p": {"operations": ["aws.greengrass#PublishToTopic"], "resources": [HEALTH]}
        }
    }
    ctx = make_context(write_root(root, _agent(pubsub_only)))
    result = _one(publish_authorized(ctx))
    assert result.status is Status.CRITICAL
    assert result.details["reason"] == "not_granted"
    snippet = (result.remediation or "").split(": ", 1)[1]
    # The suggested grant, deployed, makes the check pass.
    fixed = yaml.safe_load(snippet)["accessControl"]
    ctx = make_context(write_root(tmp_path / "fixed", _agent(fixed)))
    assert _one(publish_authorized(ctx)).status is Status.OK


def test_rejected_access_control_is_explained(root: Path) -> None:
    broken = {
        "aws.greengrass.ipc.mqttproxy": {
            "p": {
                "operations": ["aws.greengrass#PublishToIoTCore"],
                "resources": [HEALTH],
                "topics": [],
            }
        }
    }
    ctx = make_context(write_root(root, _agent(broken)))
    result = _one(publish_authorized(ctx))
    assert result.status is Status.CRITICAL
    assert result.details["reason"] == "access_control_rejected"
    assert "unknown key 'topics'" in result.message


def test_only_for_the_ipc_transport(root: Path) -> None:
    ctx = make_context(write_root(root, _agent({})), transport="stdout")
    assert list(publish_authorized(ctx)) == []


def test_custom_component_and_topic(root: Path) -> None:
    services = {
        "com.example.Health": {
            "configuration": {
                "accessControl": agent_grant("fleet/+/status", "com.example.Health:mqttproxy:1")
            }
        }
    }
    ctx = make_context(
        write_root(root, services),
        componentName="com.example.Health",
        healthTopic="fleet/{iot:thingName}/status",
    )
    result = _one(publish_authorized(ctx))
    assert result.status is Status.OK and result.target == f"fleet/{THING}/status"


def test_access_control_from_the_config_file_when_not_deployed(root: Path) -> None:
    ctx = make_context(write_root(root, {}), accessControl=agent_grant(HEALTH))
    assert _one(publish_authorized(ctx)).status is Status.OK
    ctx = make_context(write_root(root, {}))
    assert _one(publish_authorized(ctx)).status is Status.CRITICAL


# --- subscription.policy_lint, bridge, legacy_router ----------------------------------------


def _realistic_root(root: Path) -> Path:
    services = fixture_services("nucleus-integ-pubsub-accesscontrol.yaml")
    services.update(fixture_services("mqtt-bridge-config-with-mapping.yaml"))
    services.update(_agent(agent_grant(HEALTH)))
    services["aws.greengrass.SecureTunneling"] = {
        "configuration": default_configuration("aws.greengrass.SecureTunneling-recipe-prod.yaml")
    }
    services["aws.greengrass.LegacySubscriptionRouter"] = {
        "version": "2.1.8",
        "configuration": load_data(
            RECIPES / "legacy-subscription-router-configuration-merge-v2.1.x.json"
        ),
    }
    services["com.example.HelloWorldLambda"] = {"configuration": {}}
    return write_root(root, services)


def test_policy_lint_on_a_realistic_root(root: Path) -> None:
    ctx = make_context(_realistic_root(root))
    results = {r.target: r for r in policy_lint(ctx)}
    assert len(results) == 9  # 7 pubsub policies, the tunnel's, the agent's own
    assert results[f"{AGENT}/{AGENT}:mqttproxy:1"].status is Status.OK
    assert results["DoAll2/policyId6"].status is Status.WARNING
    assert _index(ctx) is _index(ctx)  # parsed once, shared with the other check


def test_bridge_and_router_on_a_realistic_root(root: Path) -> None:
    ctx = make_context(_realistic_root(root))
    bridged = list(bridge(ctx))
    assert len(bridged) == 5 and all(r.status is Status.OK for r in bridged)
    routed = _one(legacy_router(ctx))
    assert routed.status is Status.OK and routed.target == "Greengrass_HelloWorld_to_cloud"


def test_nothing_to_say_without_bridge_or_router(root: Path) -> None:
    ctx = make_context(write_root(root, _agent(agent_grant(HEALTH))))
    assert list(bridge(ctx)) == [] and list(legacy_router(ctx)) == []
    assert list(iot_policy(ctx)) == []  # neither iotPolicyFile nor fetchIotPolicy


# --- subscription.iot_policy ----------------------------------------------------------------


def test_iot_policy_file(root: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    document = json.loads(minimal_policy_text())
    document["Statement"].append(
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"arn:aws:iot:eu-west-1:123456789012:topic/{HEALTH}",
        }
    )
    policy.write_text(json.dumps(document))
    ctx = make_context(
        write_root(root, _agent(agent_grant(HEALTH))), subscriptions={"iotPolicyFile": str(policy)}
    )
    result = _one(iot_policy(ctx))
    assert result.status is Status.OK, result.message
    assert result.target == "policy"

    # A change of the file is seen on the next cycle; an unchanged file is not re-read.
    cached = ctx.kept.get(SubscriptionState).policy_file
    assert _one(iot_policy(ctx)).status is Status.OK
    assert ctx.kept.get(SubscriptionState).policy_file is cached
    document["Statement"].pop()
    policy.write_text(json.dumps(document, indent=1))
    assert _one(iot_policy(ctx)).status is Status.CRITICAL


def test_required_topics_resolve_the_thing_name(root: Path, tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text((POLICIES / "GreengrassV2IoTThingPolicy.json").read_text())
    ctx = make_context(
        write_root(root, _agent({})),
        transport="file",
        subscriptions={"iotPolicyFile": str(policy), "requiredTopics": ["app/{iot:thingName}/cmd"]},
    )
    result = _one(iot_policy(ctx))
    # Everything MQTT is allowed (too broadly); the role alias is in another policy.
    assert {f["code"] for f in result.details["findings"]} == {
        "missing_permission",
        "overly_permissive",
    }
    assert "app/pi-42/cmd" not in result.message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(None, "does not exist"), ("{not json", "not valid YAML"), ("[1, 2]", "neither")],
)
def test_unreadable_policy_is_unknown(
    root: Path, tmp_path: Path, content: str | None, fragment: str
) -> None:
    policy = tmp_path / "p.json"
    if content is not None:
        policy.write_text(content)
    ctx = make_context(write_root(root, {}), subscriptions={"iotPolicyFile": str(policy)})
    result = _one(iot_policy(ctx))
    assert result.status is Status.UNKNOWN
    assert fragment in result.message
    assert result.details["reason"] == "unreadable_policy"


def test_policy_directory_with_the_installer_policies(root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    for name in (
        "GreengrassV2IoTThingPolicy.get-policy-response.json",
        "GreengrassCoreTokenExchangeRoleAliasPolicy.json",
    ):
        (folder / name).write_text((POLICIES / name).read_text())
    (folder / "README.txt").write_text("not a policy")
    services = _agent(agent_grant(HEALTH))
    ctx = make_context(
        write_root(
            root,
            services,
            awsRegion="us-west-2",
            iotRoleAlias="GreengrassCoreTokenExchangeRoleAlias",
        ),
        subscriptions={"iotPolicyFile": str(folder)},
    )
    results = {r.target: r for r in iot_policy(ctx)}
    assert (
        results["GreengrassCoreTokenExchangeRoleAliasPolicy + GreengrassV2IoTThingPolicy"].status
        is Status.OK
    )
    assert results["GreengrassV2IoTThingPolicy"].status is Status.WARNING


def test_unknown_thing_name_is_unknown(root: Path, tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text((POLICIES / "GreengrassV2IoTThingPolicy.json").read_text())
    ctx = make_context(
        write_root(root, {}, thing=None), subscriptions={"iotPolicyFile": str(policy)}
    )
    result = _one(iot_policy(ctx))
    assert result.status is Status.UNKNOWN and result.details["reason"] == "thing_name_unknown"


# --- the whole area --------------------------------------------------------------------------


def test_area_runs_without_internal_errors(root: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(minimal_policy_text())
    ctx = make_context(_realistic_root(root), subscriptions={"iotPolicyFile": str(policy)})
    results = run_checks(checks_for(["subscription"]), ctx)
    assert {r.id for r in results} == {
        "subscription.publish_authorized",
        "subscription.policy_lint",
        "subscription.bridge",
        "subscription.legacy_router",
        "subscription.iot_policy",
    }
    assert all(r.details.get("reason") != "internal_error" for r in results)
    for r in results:
        json.dumps(r.to_dict())  # every result is JSON-serialisable
        assert (r.remediation is None) is (r.status is Status.OK)


def test_cli_check_only_subscription(root: Path) -> None:
    services = _agent(agent_grant(HEALTH))
    services["aws.greengrass.clientdevices.mqtt.Bridge"] = {
        "configuration": {
            "mqttTopicMapping": {
                "EverythingUp": {"topic": "#", "source": "LocalMqtt", "target": "IotCore"}
            }
        }
    }
    write_root(root, services)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "check",
            "--greengrass-root",
            str(root),
            "--only",
            "subscription",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
        check=False,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 1, proc.stderr  # WARNING: '#' bridged to the cloud
    assert report["status"] == "WARNING"
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["subscription.bridge"]["details"]["reason"] == "catch_all_to_cloud"
    assert by_id["subscription.publish_authorized"]["status"] == "OK"


def test_nucleus_lite_root_with_a_config_d_deployment(tmp_path: Path) -> None:
    """Nucleus lite: config.yaml from the shared sample plus a config.d/ drop-in with the agent."""
    etc = tmp_path / "etc-greengrass"
    (etc / "config.d").mkdir(parents=True)
    sample = SHARED_FIXTURES / "effective-config" / "greengrass-lite-sample-nucleus-config.yaml"
    (etc / "config.yaml").write_text(sample.read_text())
    drop_in = {
        "services": {
            AGENT: {
                "configuration": {
                    "accessControl": agent_grant("dt/gghealth/{iot:thingName}/health")
                }
            }
        }
    }
    (etc / "config.d" / "agent.yaml").write_text(yaml.safe_dump(drop_in))
    ctx = make_context(etc)
    result = _one(publish_authorized(ctx))
    # Lite does not interpolate component configuration (aws-greengrass-lite
    # docs/RECIPE_SUPPORT_CHANGES.md) and ggipcd <= 2.6.0 matches {iot:thingName} literally.
    assert result.status is Status.CRITICAL
    assert result.details["reason"] == "thing_name_not_interpolated"
    assert result.target == "dt/gghealth/ExampleGGDevice/health"
    assert [r.status for r in policy_lint(ctx)] == [Status.WARNING]


def test_thing_name_that_makes_the_health_topic_too_long(root: Path) -> None:
    long_thing = "t" * 128  # AWS IoT allows thing names of 128 characters
    ctx = make_context(
        write_root(root, _agent(agent_grant("dt/#")), thing=long_thing),
        healthTopic="dt/gghealth/fleet/site/{iot:thingName}/" + "x" * 110,
    )
    result = _one(publish_authorized(ctx))
    assert result.status is Status.CRITICAL
    assert result.details["reason"] == "topic_limit"
    assert "bytes long" in result.message


def test_the_policy_lint_is_reused_until_the_configuration_changes(root: Path) -> None:
    """Asking the nucleus's matcher about every resource costs milliseconds a policy: the lint
    of an unchanged configuration is the last cycle's, a changed one is linted again."""
    kept = make_context(write_root(root, _agent(agent_grant(HEALTH)))).kept

    def cycle() -> list[CheckResult]:
        ctx = make_context(root)
        ctx.kept = kept
        return list(policy_lint(ctx))

    first = cycle()
    state = kept.get(SubscriptionState)
    assert state.lint is not None
    made = state.lint
    assert cycle() == first and kept.get(SubscriptionState).lint is made
    write_root(root, _agent(agent_grant("dt/#")))
    changed = cycle()
    assert kept.get(SubscriptionState).lint is not made
    assert changed != first
