"""nucleus lite's ggipcd authorization (agent/subscriptions/lite_authz.py), case by case from
aws-greengrass-lite 2.6.0 modules/ggipcd/src/ipc_authz.c, services/mqttproxy/mqttproxy.c and
modules/ggl-policy-validation/src/policy_validation.c (whose unit tests give some cases)."""

from __future__ import annotations

from typing import Any

import pytest

from agent.subscriptions.lite_authz import (
    authorize,
    default_matcher,
    topic_filter_matcher,
    validate_request_resource,
)

PUB = "aws.greengrass#PublishToIoTCore"
MQTT = "aws.greengrass.ipc.mqttproxy"


@pytest.mark.parametrize(
    ("request_", "policy", "expected"),
    [
        ("a/b/c", "a/*", True),  # '*' crosses '/'
        ("a/b/c", "a/*/c", True),
        ("a/b/c", "*c", True),
        ("a/b/c", "a/b", False),
        ("a*", "a${*}", True),  # escaped: the literal character
        ("ab", "a${*}", False),
        ("a?b", "a${?}b", True),
        ("a/+/c", "a/+/c", True),  # '+' is a plain character to the default matcher
        ("a/x/c", "a/+/c", False),
        ("dt/x/{iot:thingName}", "dt/x/{iot:thingName}", True),
    ],
)
def test_default_matcher(request_: str, policy: str, expected: bool) -> None:
    assert default_matcher(request_, policy) is expected


@pytest.mark.parametrize(
    ("request_", "policy", "expected"),
    [
        ("dt/gghealth/pi/health", "dt/gghealth/+/health", True),
        ("dt/gghealth/a/b/health", "dt/gghealth/+/health", False),
        ("a/b/c", "a/#", True),
        ("ab/c", "a#", True),  # '#' anywhere ends the match (lite does not check the filter)
        ("a", "a/#", False),
    ],
)
def test_topic_filter_matcher(request_: str, policy: str, expected: bool) -> None:
    assert topic_filter_matcher(request_, policy) is expected


def test_request_resource_validation() -> None:
    assert validate_request_resource("test/topic") is None
    assert validate_request_resource("${*}") is None
    assert validate_request_resource("invalid?/resource") is not None
    assert validate_request_resource("a${x}b") is not None
    assert validate_request_resource("a${") is not None


def _policies(*policies: Any) -> dict[str, Any]:
    return {MQTT: {f"p{i}": p for i, p in enumerate(policies)}}


def test_thing_name_is_literal_on_released_lite() -> None:
    acl = _policies({"operations": [PUB], "resources": ["dt/gghealth/{iot:thingName}/health"]})
    literal = authorize(acl, MQTT, PUB, "dt/gghealth/pi-1/health", thing_name="pi-1")
    assert not literal.allowed
    main = authorize(acl, MQTT, PUB, "dt/gghealth/pi-1/health", thing_name="pi-1", interpolate=True)
    assert main.allowed and main.policy_id == "p0"


def test_a_policy_that_is_not_a_map_stops_the_walk() -> None:
    acl = _policies("broken", {"operations": [PUB], "resources": ["*"]})
    decision = authorize(acl, MQTT, PUB, "t")
    assert not decision.allowed and "stops" in decision.why


def test_a_policy_without_operations_is_skipped() -> None:
    acl = _policies({"resources": ["*"]}, {"operations": ["*"], "resources": ["t/+"]})
    decision = authorize(acl, MQTT, PUB, "t/1")
    assert decision.allowed and decision.policy_id == "p1"


def test_a_question_mark_in_the_request_is_refused_even_under_star() -> None:
    acl = _policies({"operations": ["*"], "resources": ["*"]})
    assert not authorize(acl, MQTT, PUB, "a?b").allowed
    assert authorize(acl, MQTT, PUB, "ab").allowed


def test_no_policies_for_the_service() -> None:
    assert not authorize({}, MQTT, PUB, "t").allowed
