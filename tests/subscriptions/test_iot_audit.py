"""What a core device's IoT policies must allow and must not allow, on the AWS documentation's
policies (Greengrass minimal policy, installer defaults, Device Defender examples)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.report import CheckResult, Status
from agent.subscriptions.iot_audit import DeviceFacts, audit_policies, requirements
from agent.subscriptions.iot_policy import IotPolicy, parse_policy
from agent.subscriptions.iot_sources import load_policy_file, policies_from_data
from tests.subscriptions.conftest import (
    ACCOUNT,
    POLICIES,
    REGION,
    ROLE_ALIAS,
    THING,
    minimal_policy_text,
)

FACTS = DeviceFacts(
    thing_name=THING,
    region=REGION,
    account=ACCOUNT,
    role_alias=ROLE_ALIAS,
    nucleus_version="2.14.3",
    publish_topics=(f"dt/gghealth/{THING}/health",),
)
# The installer's policies name us-west-2 and GreengrassCoreTokenExchangeRoleAlias.
INSTALLER = DeviceFacts(
    thing_name=THING,
    region="us-west-2",
    role_alias=("GreengrassCoreTokenExchangeRoleAlias"),
    publish_topics=(f"dt/gghealth/{THING}/health",),
)


def _results(policies: list[IotPolicy], facts: DeviceFacts = FACTS) -> dict[str, CheckResult]:
    results = [v.to_result("subscription.iot_policy") for v in audit_policies(policies, facts)]
    for r in results:
        assert (r.remediation is None) is (r.status is Status.OK)
    return {r.target: r for r in results}


def _codes(result: CheckResult) -> list[str]:
    return [f["code"] for f in result.details.get("findings", [])]


def _minimal() -> IotPolicy:
    return parse_policy("GreengrassV2MinimalPolicy", json.loads(minimal_policy_text()))


def test_minimal_policy_lacks_only_the_health_topic() -> None:
    [result] = _results([_minimal()]).values()
    assert result.target == "GreengrassV2MinimalPolicy"
    assert result.status is Status.CRITICAL
    assert _codes(result) == ["missing_permission"]
    assert f"topic/dt/gghealth/{THING}/health" in result.message
    assert '"Action": "iot:Publish"' in (result.remediation or "")


def test_minimal_policy_meets_every_need_of_a_device_publishing_elsewhere() -> None:
    facts = DeviceFacts(thing_name=THING, region=REGION, account=ACCOUNT, role_alias=ROLE_ALIAS)
    [result] = _results([_minimal()], facts).values()
    assert result.status is Status.OK, result.message
    assert result.message == f"allows the {len(requirements(facts))} actions this core device needs"


def test_the_documented_placeholders_do_not_pass_for_a_real_region() -> None:
    raw = json.loads((POLICIES / "greengrass-v2-core-device-minimal-iot-policy.json").read_text())
    [result] = _results([parse_policy("doc", raw)]).values()
    assert result.status is Status.CRITICAL
    assert "iot:Connect on client/pi-42 (" in result.message
    assert "arn:aws:iot:eu-west-1:123456789012:client/pi-42" in (result.remediation or "")


def test_installer_policies_in_a_directory(tmp_path: Any) -> None:
    for name in (
        "GreengrassV2IoTThingPolicy.json",
        "GreengrassCoreTokenExchangeRoleAliasPolicy.json",
    ):
        (tmp_path / name).write_text((POLICIES / name).read_text())
    policies = [p for f in sorted(tmp_path.iterdir()) for p in load_policy_file(f)]
    results = _results(policies, INSTALLER)
    needs = results["GreengrassCoreTokenExchangeRoleAliasPolicy + GreengrassV2IoTThingPolicy"]
    assert needs.status is Status.OK, needs.message
    thing_policy = results["GreengrassV2IoTThingPolicy"]
    assert thing_policy.status is Status.WARNING
    assert _codes(thing_policy) == ["overly_permissive"]
    assert "iot:Connect, iot:Publish, iot:Subscribe allowed" in thing_policy.message
    assert results["GreengrassCoreTokenExchangeRoleAliasPolicy"].status is Status.OK


@pytest.mark.parametrize(
    ("fixture", "name"),
    [
        ("GreengrassV2IoTThingPolicy.get-policy-response.json", "GreengrassV2IoTThingPolicy"),
        ("aws-greengrass-testing-ggc-iot-policy.yaml", "ggc-iot-policy"),
        ("GreengrassV2IoTThingPolicy.json", "GreengrassV2IoTThingPolicy"),
    ],
)
def test_broad_thing_policy_alone_misses_the_role_alias(fixture: str, name: str) -> None:
    policies = load_policy_file(POLICIES / fixture)
    [result] = _results(policies, INSTALLER).values()
    assert result.target == name
    assert result.status is Status.CRITICAL
    assert sorted(set(_codes(result))) == ["missing_permission", "overly_permissive"]
    assert "iot:AssumeRoleWithCertificate" in result.message


def test_get_policy_response_carries_region_and_account() -> None:
    [policy] = load_policy_file(POLICIES / "GreengrassV2IoTThingPolicy.get-policy-response.json")
    assert policy.arn == "arn:aws:iot:us-west-2:123456789012:policy/GreengrassV2IoTThingPolicy"


def test_fleet_provisioning_policy_is_complete_but_broad() -> None:
    [result] = _results(
        load_policy_file(POLICIES / "greengrass-v2-fleet-provisioning-iot-policy.json"), INSTALLER
    ).values()
    assert result.status is Status.WARNING
    assert _codes(result) == ["overly_permissive"]


def _device_defender_lines() -> list[str]:
    text = (POLICIES / "devicedefender-iot-policy-noncompliant-resources.txt").read_text()
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("line", range(8))
def test_device_defender_noncompliant_examples_are_flagged(line: int) -> None:
    resource = _device_defender_lines()[line]
    action = (
        ["iot:Connect"] * 2
        + ["iot:Publish"] * 2
        + ["iot:Subscribe"] * 3
        + ["iot:UpdateThingShadow"]
    )
    document = {"Statement": [{"Effect": "Allow", "Action": action[line], "Resource": resource}]}
    facts = DeviceFacts(thing_name=THING)  # the examples keep region/account placeholders
    result = _results([parse_policy("dd", document)], facts)["dd"]
    assert "overly_permissive" in _codes(result)
    assert action[line] in result.message


def test_device_defender_compliant_examples_are_not_flagged() -> None:
    facts = DeviceFacts(thing_name=THING)
    for name in (
        "devicedefender-iot-policy-compliant-connect.json",
        "devicedefender-iot-policy-compliant-shadow-jobs.json",
    ):
        [result] = _results(load_policy_file(POLICIES / name), facts).values()
        assert "overly_permissive" not in _codes(result), result.message


def test_thing_policy_variables_do_not_work_for_core_devices() -> None:
    [result] = _results(
        load_policy_file(POLICIES / "devicedefender-iot-policy-compliant-connect.json"),
        DeviceFacts(thing_name=THING),
    ).values()
    warning = [f for f in result.details["findings"] if f["code"] == "thing_policy_variable"]
    assert warning and warning[0]["status"] == "WARNING"
    assert "iot:Connect on client/pi-42 (" in warning[0]["message"]
    assert "Connection.Thing" in (result.remediation or "")


def test_client_device_policy_is_broad() -> None:
    [result] = _results(
        load_policy_file(POLICIES / "greengrass-v2-client-device-minimal-iot-policy.json"),
        DeviceFacts(thing_name=THING),
    ).values()
    assert "overly_permissive" in _codes(result)


def test_client_device_support_policy_is_not_flagged_as_broad() -> None:
    [result] = _results(
        load_policy_file(POLICIES / "greengrass-v2-client-device-support-minimal-iot-policy.json"),
        DeviceFacts(thing_name=THING),
    ).values()
    assert "overly_permissive" not in _codes(result)


def test_mqtt_wildcards_in_a_deny() -> None:
    document = json.loads(minimal_policy_text())
    document["Statement"].append(
        {
            "Effect": "Deny",
            "Action": "iot:Subscribe",
            "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topicfilter/admin/#",
        }
    )
    facts = DeviceFacts(thing_name=THING, region=REGION, account=ACCOUNT, role_alias=ROLE_ALIAS)
    [result] = _results([parse_policy("p", document)], facts).values()
    assert result.status is Status.WARNING
    assert _codes(result) == ["mqtt_wildcard_in_deny"]
    assert "use '*'" in (result.remediation or "")


def test_an_explicit_deny_of_a_need_is_critical() -> None:
    document = json.loads(minimal_policy_text())
    document["Statement"].append(
        {
            "Sid": "NoJobs",
            "Effect": "Deny",
            "Action": "iot:*",
            "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/$aws/things/*",
        }
    )
    facts = DeviceFacts(thing_name=THING, region=REGION, account=ACCOUNT, role_alias=ROLE_ALIAS)
    [result] = _results([parse_policy("p", document)], facts).values()
    assert result.status is Status.CRITICAL
    assert "denied_permission" in _codes(result)
    assert "explicitly denied by p NoJobs" in result.message


def test_required_topics_and_the_second_client_id() -> None:
    facts = DeviceFacts(
        thing_name=THING,
        region=REGION,
        account=ACCOUNT,
        role_alias=ROLE_ALIAS,
        required_topics=(f"dt/app/{THING}/cmd", "cmd/#"),
    )
    document = json.loads(minimal_policy_text().replace(f"client/{THING}*", f"client/{THING}"))
    [result] = _results([parse_policy("p", document)], facts).values()
    messages = [f["message"] for f in result.details["findings"]]
    assert any(f"client/{THING}#2" in m for m in messages)  # WARNING: exact client id only
    assert any("iot:Subscribe on topicfilter/cmd/#" in m for m in messages)
    assert not any("topic/cmd/#" in m for m in messages)  # no Publish/Receive on a filter
    assert sum(m.count(f"dt/app/{THING}/cmd") for m in messages) == 3
    assert f"arn:aws:iot:{REGION}:{ACCOUNT}:topicfilter/cmd/#" in (result.remediation or "")
    assert result.status is Status.CRITICAL


def test_policies_from_unusual_shapes() -> None:
    doc = json.loads((POLICIES / "GreengrassV2IoTThingPolicy.json").read_text())
    policies = policies_from_data(
        [doc, {"policyName": "x", "policyDocument": json.dumps(doc)}], "file"
    )
    assert [p.name for p in policies] == ["file[0]", "x"]
