"""Whatever a configuration holds, the analysers answer with verdicts, never with a traceback."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.report import Status
from agent.subscriptions.authorization import index_access_control, is_authorized
from agent.subscriptions.bridge import audit_bridge
from agent.subscriptions.iot_audit import DeviceFacts, audit_policies
from agent.subscriptions.iot_policy import PolicyError
from agent.subscriptions.iot_sources import policies_from_data
from agent.subscriptions.ipc_lint import lint_access_control
from agent.subscriptions.legacy_router import audit_router

WORDS = st.sampled_from(
    [
        "operations",
        "resources",
        "policyDescription",
        "topic",
        "source",
        "target",
        "id",
        "subject",
        "targetTopicPrefix",
        "LocalMqtt",
        "IotCore",
        "Pubsub",
        "cloud",
        "*",
        "#",
        "+/#",
        "a/+/b",
        "${",
        "?",
        "aws.greengrass.ipc.mqttproxy",
        "aws.greengrass.ipc.pubsub",
        "aws.greengrass#PublishToIoTCore",
        "component:x",
        "Effect",
        "Allow",
        "Deny",
        "Action",
        "Resource",
        "Statement",
        "iot:*",
        "mqttTopicMapping",
        "subscriptions",
    ]
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), WORDS, st.text(max_size=6)
)
data = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(WORDS, st.integers()), inner, max_size=4),
    ),
    max_leaves=20,
)


@given(st.dictionaries(WORDS, data, max_size=3))
def test_access_control_of_any_shape(by_component: dict[str, Any]) -> None:
    index = index_access_control(by_component)
    for verdict in lint_access_control(index, interpolates=False):
        result = verdict.to_result("subscription.policy_lint")
        assert result.status is Status.OK or result.remediation
    for component in by_component:
        is_authorized(
            index,
            component,
            "aws.greengrass.ipc.mqttproxy",
            "aws.greengrass#PublishToIoTCore",
            "a/b",
            "pi-42",
        )


@given(st.dictionaries(WORDS, data, max_size=4))
def test_bridge_and_router_of_any_shape(configuration: dict[str, Any]) -> None:
    for verdict in audit_bridge(configuration) + audit_router(configuration, {"x": {}}, "2.1.0"):
        result = verdict.to_result("subscription.bridge")
        assert result.status is Status.OK or result.remediation


@given(data)
def test_policy_documents_of_any_shape(document: Any) -> None:
    try:
        policies = policies_from_data(document, "p")
    except PolicyError:
        return
    for verdict in audit_policies(policies, DeviceFacts(thing_name="pi-42")):
        result = verdict.to_result("subscription.iot_policy")
        assert result.status is Status.OK or result.remediation


RESOURCES = st.sampled_from(
    [
        "*",
        "arn:aws:iot:*:*:topic/*",
        "arn:aws:iot:r:a:client/${iot:ClientId}",
        "${?}",
        "arn:aws:iot:eu-west-1:1:topicfilter/a/#",
        "arn:aws:iot:::thing/${iot:Connection.Thing.X}",
        "arn:aws:iot:*:*:client/pi-42*",
        "arn:aws:iot:*",
        "arn:",
        "x${iot:ClientId",
        "${}",
    ]
)
statements = st.lists(
    st.fixed_dictionaries(
        {
            "Effect": st.sampled_from(["Allow", "Deny"]),
            "Action": st.one_of(
                WORDS, st.sampled_from(["iot:Connect", "iot:*", "greengrass:*", "*"])
            ),
            "Resource": st.one_of(RESOURCES, st.lists(RESOURCES, min_size=1, max_size=3)),
        },
        optional={"Condition": data},
    ),
    min_size=1,
    max_size=4,
)


@given(statements)
def test_well_formed_policies_of_any_content(items: list[dict[str, Any]]) -> None:
    try:
        policies = policies_from_data({"Statement": items}, "p")
    except PolicyError:
        return  # e.g. a Condition that is not an object
    facts = DeviceFacts(
        thing_name="pi-42",
        region="eu-west-1",
        role_alias="alias",
        publish_topics=("dt/x",),
        required_topics=("a/+/b",),
    )
    for verdict in audit_policies(policies, facts):
        result = verdict.to_result("subscription.iot_policy")
        assert result.status is Status.OK or result.remediation
