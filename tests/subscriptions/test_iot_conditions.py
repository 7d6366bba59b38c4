"""IoT policy conditions in the audit: an undecided one is reported, never dropped (issue 16).

The policies are the AWS IoT developer guide's examples, as published:
https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-examples.html and
https://docs.aws.amazon.com/iot/latest/developerguide/connect-policy.html, beside the Greengrass
minimal core-device policy of ``shared/fixtures/iot-policies``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.report import CheckResult, Status
from agent.subscriptions.iot_audit import DeviceFacts, ThingFacts, audit_policies
from agent.subscriptions.iot_policy import IotPolicy, ThingRecord, parse_policy
from tests.subscriptions.conftest import POLICIES, QUARANTINE, ROLE_ALIAS, THING, substitute

DOC_ARN = "arn:aws:iot:us-east-1:123456789012"

# thing-policy-examples: publish if the thing has a type and an attribute, and is attached.
THING_TYPE_AND_ATTRIBUTE = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["iot:Publish"],
            "Resource": f"{DOC_ARN}:topic/device/stats",
            "Condition": {
                "StringEquals": {
                    "iot:Connection.Thing.Attributes[attributeName]": "attributeValue",
                    "iot:Connection.Thing.ThingTypeName": "Thing_Type_Name",
                },
                "Bool": {"iot:Connection.Thing.IsAttached": "true"},
            },
        }
    ],
}
# connect-policy: "any other feature including new feature is allowed" except PersistentConnect.
NO_PERSISTENT_CONNECT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": ["iot:Connect"],
            "Resource": "*",
            "Condition": {
                "ForAnyValue:StringEquals": {"iot:ConnectAttributes": ["PersistentConnect"]}
            },
        },
    ],
}
DESCRIBED = ThingFacts(
    ThingRecord("Thing_Type_Name", (("attributeName", "attributeValue"),)), attached=True
)


def _minimal() -> IotPolicy:
    """The Greengrass minimal core-device policy, region and account left as published."""
    text = substitute(
        (POLICIES / "greengrass-v2-core-device-minimal-iot-policy.json").read_text(),
        core_device_thing_name=THING,
        token_exchange_role_alias_name=ROLE_ALIAS,
    )
    return parse_policy("GreengrassV2MinimalPolicy", json.loads(text))


def _facts(thing: ThingFacts | None = None, **extra: Any) -> DeviceFacts:
    # Region and account unknown: the documentation's ARNs (us-east-1, placeholders) all match.
    return DeviceFacts(thing_name=THING, role_alias=ROLE_ALIAS, thing=thing, **extra)


def _needs(policies: list[IotPolicy], facts: DeviceFacts) -> CheckResult:
    results = [v.to_result("subscription.iot_policy") for v in audit_policies(policies, facts)]
    return results[-1]


def _codes(result: CheckResult) -> list[str]:
    return [f["code"] for f in result.details.get("findings", [])]


def test_a_deny_on_connect_attributes_is_reported_not_dropped() -> None:
    """The issue's miss: Allow + a Deny on iot:ConnectAttributes read as an unconditional allow."""
    guard = parse_policy("NoPersistentConnect", NO_PERSISTENT_CONNECT)
    result = _needs([_minimal(), guard], _facts())
    assert result.status is Status.WARNING
    assert _codes(result) == ["condition_not_evaluated"]
    message = result.message
    assert "Deny statement NoPersistentConnect #1" in message
    assert "ForAnyValue:StringEquals iot:ConnectAttributes" in message
    assert f"iot:Connect on client/{THING} (" in message
    assert "neither allowed nor proven denied" in message
    [undecided] = result.details["undecided"]
    assert undecided["keys"] == ["iot:ConnectAttributes"]
    assert f"iot:Connect on client/{THING}" in undecided["requests"]
    # Only Connect hangs on it; every other need is decided.
    assert all(r.startswith("iot:Connect ") for r in undecided["requests"])
    assert "iot:ConnectAttributes" in (result.remediation or "")
    # Registry facts cannot decide a key of the MQTT CONNECT itself.
    assert _needs([_minimal(), guard], _facts(DESCRIBED)).status is Status.WARNING


def test_thing_conditions_stay_undecided_without_the_registry() -> None:
    policies = [_minimal(), parse_policy("DeviceStats", THING_TYPE_AND_ATTRIBUTE)]
    result = _needs(policies, _facts(publish_topics=("device/stats",)))
    assert result.status is Status.WARNING
    assert _codes(result) == ["condition_not_evaluated"]
    assert "Allow statement DeviceStats #0" in result.message
    assert "it is their only grant" in result.message
    assert "iot:Publish on topic/device/stats" in result.message
    [undecided] = result.details["undecided"]
    assert undecided["keys"] == [
        "iot:Connection.Thing.Attributes[attributeName]",
        "iot:Connection.Thing.ThingTypeName",
        "iot:Connection.Thing.IsAttached",
    ]
    assert "subscriptions.fetchIotPolicy: true" in (result.remediation or "")
    assert "iot:DescribeThing and iot:ListThingPrincipals" in (result.remediation or "")


@pytest.mark.parametrize(
    ("thing", "status"),
    [
        (DESCRIBED, Status.OK),
        (ThingFacts(ThingRecord("Thing_Type_Name", (("attributeName", "x"),)), True), "missing"),
        (ThingFacts(ThingRecord(None, (("attributeName", "attributeValue"),)), True), "missing"),
        (ThingFacts(DESCRIBED.record, attached=False), "missing"),
    ],
)
def test_thing_conditions_are_decided_from_the_registry(thing: ThingFacts, status: Any) -> None:
    policies = [_minimal(), parse_policy("DeviceStats", THING_TYPE_AND_ATTRIBUTE)]
    result = _needs(policies, _facts(thing, publish_topics=("device/stats",)))
    if status is Status.OK:
        assert result.status is Status.OK, result.message
        assert result.details["thing_registry"] == {
            "described": True,
            "attached": True,
            "missing_permissions": [],
        }
    else:
        assert result.status is Status.CRITICAL
        assert _codes(result) == ["missing_permission"]
        assert "iot:Publish on topic/device/stats" in result.message


def test_a_refused_describe_thing_names_the_missing_permission() -> None:
    thing = ThingFacts(
        None,
        attached=True,
        missing=("iot:DescribeThing",),
        problems=("IoT DescribeThing: not authorized to perform iot:DescribeThing",),
    )
    policies = [_minimal(), parse_policy("DeviceStats", THING_TYPE_AND_ATTRIBUTE)]
    result = _needs(policies, _facts(thing, publish_topics=("device/stats",)))
    assert result.status is Status.WARNING
    assert _codes(result) == ["condition_not_evaluated"]
    assert "not authorized to perform iot:DescribeThing" in result.message
    # IsAttached was decided (true); only the type and the attribute are left.
    assert result.details["undecided"][0]["keys"] == [
        "iot:Connection.Thing.Attributes[attributeName]",
        "iot:Connection.Thing.ThingTypeName",
    ]
    assert (result.remediation or "").startswith(
        f"allow iot:DescribeThing on arn:aws:iot:*:*:thing/{THING}"
    )


@pytest.mark.parametrize(
    ("thing", "status", "code"),
    [
        (None, Status.WARNING, "condition_not_evaluated"),
        (
            ThingFacts(ThingRecord(None, (("stage", "quarantine"),)), True),
            Status.CRITICAL,
            "denied_permission",
        ),
        (ThingFacts(ThingRecord(None, (("stage", "prod"),)), True), Status.OK, None),
        (ThingFacts(ThingRecord(), True), Status.OK, None),
    ],
)
def test_a_conditional_deny_is_never_an_unconditional_allow(
    thing: ThingFacts | None, status: Status, code: str | None
) -> None:
    guard = parse_policy("Guard", {"Version": "2012-10-17", "Statement": [QUARANTINE]})
    result = _needs([_minimal(), guard], _facts(thing))
    assert result.status is status, result.message
    assert _codes(result)[:1] == ([code] if code else [])
    if code == "condition_not_evaluated":
        assert "Deny statement Guard Quarantine" in result.message
        assert "StringEquals iot:Connection.Thing.Attributes[stage]" in result.message
        assert result.details["conditional"] == []
        # One finding for the statement, naming every need it could deny: the iot: ones, but
        # not the second connection, whose client id is no thing's name (no thing keys there).
        [undecided] = result.details["undecided"]
        requests = undecided["requests"]
        assert {r.split()[0] for r in requests} == {
            "iot:Connect",
            "iot:Subscribe",
            "iot:Receive",
            "iot:Publish",
            "iot:AssumeRoleWithCertificate",
        }
        assert f"iot:Connect on client/{THING}#2" not in requests


def test_the_device_defender_compliant_connect_is_decided_with_the_registry() -> None:
    """``client/${iot:Connection.Thing.ThingName}`` under IsAttached: with the registry's
    answer the condition is decided; the policy variable is still one core devices lack."""
    policy = parse_policy(
        "dd",
        json.loads((POLICIES / "devicedefender-iot-policy-compliant-connect.json").read_text()),
    )
    for thing in (None, DESCRIBED):
        result = _needs([_minimal(), policy], _facts(thing))
        assert "condition_not_evaluated" not in _codes(result)
