"""Parsing accessControl and answering "may this component do that?" as the nucleus does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.subscriptions.authorization import (
    grant_snippet,
    index_access_control,
    index_services,
    is_authorized,
)
from tests.subscriptions.conftest import default_configuration, fixture_services

PUBSUB = "aws.greengrass.ipc.pubsub"
MQTTPROXY = "aws.greengrass.ipc.mqttproxy"
PUBLISH = "aws.greengrass#PublishToTopic"
SUBSCRIBE = "aws.greengrass#SubscribeToTopic"
IOT_PUBLISH = "aws.greengrass#PublishToIoTCore"
IOT_SUBSCRIBE = "aws.greengrass#SubscribeToIoTCore"


@pytest.mark.parametrize(
    ("component", "operation", "topic", "allowed", "policy"),
    [
        ("SubscribeAndPublish", PUBLISH, "any/topic", True, "policyId2"),
        ("SubscribeAndPublish", SUBSCRIBE, "any/topic", True, "policyId2"),
        ("PublishNotSubscribe", PUBLISH, "/topic/1/x", True, "policyId1"),
        ("PublishNotSubscribe", SUBSCRIBE, "/topic/1/x", False, None),
        ("SubscribeNotPublish", SUBSCRIBE, "/longer/topic/example/", True, "policyId3"),
        ("SubscribeNotPublish", PUBLISH, "/longer/topic/example/", False, None),
        ("SubscribeAndPublishWildcard", PUBLISH, "/topic/1", True, "policyId7"),
        ("SubscribeAndPublishWildcard", SUBSCRIBE, "/to/a/b", True, "policyId7"),
        ("SubscribeAndPublishWildcard", PUBLISH, "/other/1", False, None),
        ("main", PUBLISH, "any/topic", False, None),  # no accessControl at all
    ],
)
def test_pubsub_fixture(
    component: str, operation: str, topic: str, allowed: bool, policy: str | None
) -> None:
    index = index_services(fixture_services("nucleus-integ-pubsub-accesscontrol.yaml"))
    decision = is_authorized(index, component, PUBSUB, operation, topic)
    assert decision.allowed is allowed
    assert decision.policy_id == policy
    if not allowed:
        assert component in decision.reason


@pytest.mark.parametrize(
    ("operation", "topic", "allowed"),
    [
        (IOT_PUBLISH, "A/B/C/D", True),
        (IOT_SUBSCRIBE, "A/anything/C/Dxyz", True),
        (IOT_PUBLISH, "A/B/B/C/D", False),
        (IOT_PUBLISH, "X/YabZ/1/2", True),
        (IOT_SUBSCRIBE, "X/Y/Z", True),  # '*' crosses levels: Y*Z matches "Y/Z"
        (IOT_PUBLISH, "Q/1", False),
        (PUBLISH, "A/B/C/D", False),  # a pubsub operation is not one of mqttproxy's
    ],
)
def test_mqttproxy_fixture(operation: str, topic: str, allowed: bool) -> None:
    index = index_services(fixture_services("nucleus-integ-mqttproxy-accesscontrol.yaml"))
    assert is_authorized(index, "ServiceName", MQTTPROXY, operation, topic).allowed is allowed


def test_pubsub_treats_mqtt_wildcards_literally() -> None:
    access = {"C": {PUBSUB: {"p": {"operations": [PUBLISH], "resources": ["/topic/1/#"]}}}}
    assert not is_authorized(access, "C", PUBSUB, PUBLISH, "/topic/1/x").allowed
    assert is_authorized(access, "C", PUBSUB, PUBLISH, "/topic/1/#").allowed
    access = {"C": {MQTTPROXY: {"p": {"operations": [IOT_PUBLISH], "resources": ["/topic/1/#"]}}}}
    assert is_authorized(access, "C", MQTTPROXY, IOT_PUBLISH, "/topic/1/x").allowed


def test_recipe_policies_with_thing_name_variable() -> None:
    rotator = default_configuration("aws.greengrass.labs.CertificateRotator-recipe.yaml")
    access = {"aws.greengrass.labs.CertificateRotator": rotator["accessControl"]}
    component = "aws.greengrass.labs.CertificateRotator"
    topic = "$aws/things/pi-42/jobs/job-7/get"
    granted = is_authorized(access, component, MQTTPROXY, IOT_PUBLISH, topic, "pi-42")
    assert granted.allowed and granted.via_thing_name
    assert granted.policy_id == "aws.greengrass.labs.CertificateRotator:mqttproxy:1"
    # Without interpolation the variable is literal text and the real topic is refused.
    assert not is_authorized(access, component, MQTTPROXY, IOT_PUBLISH, topic).allowed
    literal = "$aws/things/{iot:thingName}/jobs/job-7/get"
    assert is_authorized(access, component, MQTTPROXY, IOT_PUBLISH, literal).allowed
    # Subscribe-only resources do not grant publishing.
    assert not is_authorized(
        access, component, MQTTPROXY, IOT_PUBLISH, "$aws/things/pi-42/jobs/notify-next", "pi-42"
    ).allowed


def test_secure_tunneling_subscribes_for_any_thing() -> None:
    tunnel = default_configuration("aws.greengrass.SecureTunneling-recipe-prod.yaml")
    access = {"aws.greengrass.SecureTunneling": tunnel["accessControl"]}
    topic = "$aws/things/pi-42/tunnels/notify"
    component = "aws.greengrass.SecureTunneling"
    assert is_authorized(access, component, MQTTPROXY, IOT_SUBSCRIBE, topic).allowed
    assert not is_authorized(access, component, MQTTPROXY, IOT_PUBLISH, topic).allowed


def test_secret_manager_policy_from_recipe() -> None:
    home = default_configuration("aws.greengrass.labs.HomeAssistant-recipe.yaml")
    access = {"HA": home["accessControl"]}
    service = "aws.greengrass.SecretManager"
    op = "aws.greengrass#GetSecretValue"
    assert is_authorized(access, "HA", service, op, "$SECRET_ARN").allowed
    assert not is_authorized(access, "HA", service, op, "arn:aws:secretsmanager:x").allowed


def test_policies_belong_to_their_component() -> None:
    services = fixture_services("nucleus-integ-pubsub-accesscontrol.yaml")
    index = index_services(services)
    assert not is_authorized(index, "OnlyPublish", PUBSUB, SUBSCRIBE, "/topic/1/#").allowed
    assert is_authorized(index, "SubscribeNotPublish", PUBSUB, SUBSCRIBE, "/topic/1/#").allowed


@pytest.mark.parametrize(
    ("service", "operation", "reason"),
    [
        ("aws.greengrass.ipc.unknown", PUBLISH, "not an IPC service"),
        (PUBSUB, "aws.greengrass#Publish", "not an operation"),
        (PUBSUB, "*", "C has no accessControl"),
    ],
)
def test_requests_the_nucleus_refuses_up_front(service: str, operation: str, reason: str) -> None:
    access = {"D": {PUBSUB: {"p": {"operations": ["*"], "resources": ["*"]}}}}
    decision = is_authorized(access, "C", service, operation, "t")
    assert not decision.allowed and reason in decision.reason


def test_star_operation_grants_registered_operations() -> None:
    access = {"C": {PUBSUB: {"p": {"operations": ["*"], "resources": ["t/*"]}}}}
    decision = is_authorized(access, "C", PUBSUB, SUBSCRIBE, "t/1")
    assert decision.allowed and "grants * on 't/*'" in decision.reason


def test_specific_operation_wins_over_star_for_the_explanation() -> None:
    access = {
        "C": {
            PUBSUB: {
                "all": {"operations": ["*"], "resources": ["*"]},
                "pub": {"operations": [PUBLISH], "resources": ["t"]},
            }
        }
    }
    assert is_authorized(access, "C", PUBSUB, PUBLISH, "t").policy_id == "pub"


def _problems(value: Any) -> list[tuple[str, str | None, str]]:
    index = index_access_control({"C": value})
    return [(p.scope, p.policy_id, p.message) for p in index.problems]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"policyTypeInvalid": "x", "operations": [PUBLISH], "resources": ["t"]}, "unknown key"),
        ({"operations": PUBLISH, "resources": ["t"]}, "must be a list"),
        ({"operations": [PUBLISH], "resources": None}, "null"),
        ({"operations": [PUBLISH], "resources": [{"t": 1}]}, "not text"),
        ({"policyDescription": ["x"], "operations": [PUBLISH]}, "not text"),
        (None, "empty"),
        ("text", "not a mapping"),
    ],
)
def test_binding_errors_drop_every_policy_of_the_component(body: Any, fragment: str) -> None:
    value = {PUBSUB: {"good": {"operations": [PUBLISH], "resources": ["t"]}, "bad": body}}
    index = index_access_control({"C": value})
    assert index.for_component("C") == []  # the good policy goes too
    [(scope, policy_id, message)] = _problems(value)
    assert scope == "component" and policy_id == "bad" and fragment in message


def test_policy_without_operations_is_skipped_alone() -> None:
    value = {
        PUBSUB: {
            "good": {"operations": [PUBLISH], "resources": ["t"]},
            "noops": {"resources": ["t"]},
        }
    }
    index = index_access_control({"C": value})
    assert [p.policy_id for p in index.for_component("C")] == ["good"]
    assert _problems(value) == [
        ("policy", "noops", "has no operations, so the nucleus skips the policy")
    ]


def test_keys_are_case_insensitive_and_json_strings_are_parsed() -> None:
    value = json.dumps({MQTTPROXY: {"p": {"Operations": [IOT_PUBLISH], "RESOURCES": ["t/+"]}}})
    index = index_access_control({"C": value})
    assert is_authorized(index, "C", MQTTPROXY, IOT_PUBLISH, "t/x").allowed
    assert _problems("{not json")[0][0] == "component"
    assert _problems(["a list"])[0][2].startswith("accessControl is a list")


def test_malformed_resources_are_dropped_but_the_rest_grants() -> None:
    access = {"C": {PUBSUB: {"p": {"operations": [PUBLISH], "resources": ["a?", "b"]}}}}
    assert not is_authorized(access, "C", PUBSUB, PUBLISH, "a?").allowed
    assert is_authorized(access, "C", PUBSUB, PUBLISH, "b").allowed


def test_grant_snippet_is_yaml_the_nucleus_accepts() -> None:
    import yaml

    snippet = grant_snippet("gghealth.HealthAgent", MQTTPROXY, IOT_PUBLISH, "dt/x/health")
    access = yaml.safe_load(snippet)["accessControl"]
    assert is_authorized(
        {"gghealth.HealthAgent": access},
        "gghealth.HealthAgent",
        MQTTPROXY,
        IOT_PUBLISH,
        "dt/x/health",
    ).allowed
