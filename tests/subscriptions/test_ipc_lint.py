"""Lint of accessControl across the components of realistic effective configurations."""

from __future__ import annotations

from typing import Any

import pytest

from agent.report import CheckResult, Status
from agent.subscriptions.authorization import index_services
from agent.subscriptions.ipc_lint import lint_access_control
from tests.subscriptions.conftest import default_configuration, fixture_services

PUBSUB = "aws.greengrass.ipc.pubsub"
MQTTPROXY = "aws.greengrass.ipc.mqttproxy"


def _component(configuration: dict[str, Any]) -> dict[str, Any]:
    return {"componentType": "GENERIC", "version": "1.0.0", "configuration": configuration}


def _realistic_services() -> dict[str, Any]:
    services = fixture_services("nucleus-integ-pubsub-accesscontrol.yaml")
    services.update(fixture_services("nucleus-integ-mqttproxy-accesscontrol.yaml"))
    for name, recipe in [
        ("aws.greengrass.SecureTunneling", "aws.greengrass.SecureTunneling-recipe-prod.yaml"),
        (
            "aws.greengrass.labs.CertificateRotator",
            "aws.greengrass.labs.CertificateRotator-recipe.yaml",
        ),
        ("com.example.PubSubTemplate", "gg-pubsub-sdk-component-template-recipe.json"),
        ("aws.greengrass.labs.HomeAssistant", "aws.greengrass.labs.HomeAssistant-recipe.yaml"),
        (
            "aws.greengrass.labs.S3FileDownloader",
            "aws.greengrass.labs.S3FileDownloader-recipe.yaml",
        ),
    ]:
        services[name] = _component(default_configuration(recipe))
    return services


def _lint(services: dict[str, Any], interpolates: bool = False) -> dict[str, CheckResult]:
    verdicts = lint_access_control(index_services(services), interpolates=interpolates)
    results = [v.to_result("subscription.policy_lint") for v in verdicts]
    by_target = {r.target: r for r in results}
    assert len(by_target) == len(results)
    for r in results:
        assert (r.remediation is None) is (r.status is Status.OK)
    return by_target


def _codes(result: CheckResult) -> set[str]:
    return {f["code"] for f in result.details.get("findings", [])}


@pytest.mark.parametrize(
    ("target", "status", "codes"),
    [
        ("SubscribeAndPublish/policyId2", Status.WARNING, {"any_operation", "catch_all_resource"}),
        ("DoAll1/policyId5", Status.WARNING, {"any_operation", "catch_all_resource"}),
        (
            "PublishNotSubscribe/policyId1",
            Status.WARNING,
            {"catch_all_resource", "literal_mqtt_wildcard"},
        ),
        ("SubscribeNotPublish/policyId3", Status.WARNING, {"catch_all_resource"}),
        ("SubscribeAndPublishWildcard/policyId7", Status.OK, set()),
        ("ServiceName/policyId1", Status.OK, set()),
        (
            "aws.greengrass.SecureTunneling/aws.greengrass.SecureTunneling:mqttproxy:1",
            Status.OK,
            set(),
        ),
        (
            "aws.greengrass.labs.CertificateRotator/aws.greengrass.labs.CertificateRotator:mqttproxy:2",
            Status.WARNING,
            {"thing_name_not_interpolated"},
        ),
        (
            "com.example.PubSubTemplate/aws.greengrass.ipc.pubsub/COMPONENT_NAME:publish:1",
            Status.WARNING,
            {"catch_all_resource"},
        ),
        (
            "aws.greengrass.labs.HomeAssistant/aws.greengrass.labs.HomeAssistant:secrets:1",
            Status.OK,
            set(),
        ),
    ],
)
def test_realistic_device(target: str, status: Status, codes: set[str]) -> None:
    result = _lint(_realistic_services())[target]
    assert result.status is status
    assert _codes(result) == codes
    assert result.details["policy_id"] == target.rsplit("/", 1)[1]


def test_one_result_per_policy_and_same_id_under_two_services_is_fine() -> None:
    results = _lint(_realistic_services())
    # 7 pubsub + 1 mqttproxy + 1 + 2 + 4 + 1 + 2 policies
    assert len(results) == 18
    template = sorted(t for t in results if t.startswith("com.example.PubSubTemplate/"))
    # The same id under pubsub and mqttproxy is no duplicate; the target then names the service.
    assert template == [
        f"com.example.PubSubTemplate/{service}/COMPONENT_NAME:{verb}:1"
        for service in (MQTTPROXY, PUBSUB)
        for verb in ("publish", "subscribe")
    ]
    assert all("duplicate_policy_id" not in _codes(results[t]) for t in results)


def test_interpolating_nucleus_resolves_the_thing_name_variable() -> None:
    results = _lint(_realistic_services(), interpolates=True)
    rotator = (
        "aws.greengrass.labs.CertificateRotator/aws.greengrass.labs.CertificateRotator:mqttproxy:2"
    )
    assert results[rotator].status is Status.OK


def test_duplicate_policy_id_for_the_same_service_is_critical() -> None:
    services = _realistic_services()
    services["com.example.Other"] = _component(
        {
            "accessControl": {
                PUBSUB: {
                    "policyId7": {
                        "operations": ["aws.greengrass#PublishToTopic"],
                        "resources": ["other/topic"],
                    }
                }
            }
        }
    )
    results = _lint(services)
    for target in ("SubscribeAndPublishWildcard/policyId7", "com.example.Other/policyId7"):
        assert results[target].status is Status.CRITICAL
        assert "duplicate_policy_id" in _codes(results[target])
    assert "com.example.Other" in results["SubscribeAndPublishWildcard/policyId7"].message
    assert "rename" in (results["com.example.Other/policyId7"].remediation or "")


@pytest.mark.parametrize(
    ("access", "status", "code", "fix"),
    [
        (
            {
                MQTTPROXY: {
                    "p": {"operations": ["aws.greengrass#PublishToIotCore"], "resources": ["t"]}
                }
            },
            Status.CRITICAL,
            "unknown_operation",
            "aws.greengrass#PublishToIoTCore",
        ),
        (
            {
                MQTTPROXY: {
                    "p": {
                        "operations": ["aws.greengrass#PublishToIoTCore"],
                        "resources": ["sensors/?"],
                    }
                }
            },
            Status.CRITICAL,
            "malformed_resource",
            "${?}",
        ),
        (
            {MQTTPROXY: {"p": {"operations": ["aws.greengrass#PublishToIoTCore"]}}},
            Status.CRITICAL,
            "no_resources",
            "add the resources",
        ),
        (
            {"aws.greengrass.ipc.mqttProxy": {"p": {"operations": ["x"], "resources": ["t"]}}},
            Status.WARNING,
            "unknown_service",
            "aws.greengrass.ipc.mqttproxy",
        ),
        (
            {
                MQTTPROXY: {
                    "p": {"operations": ["aws.greengrass#SubscribeToIoTCore"], "resources": ["+/#"]}
                }
            },
            Status.WARNING,
            "catch_all_resource",
            "list the topics",
        ),
        (
            {"aws.greengrass.SecretManager": {"p": {"operations": ["*"], "resources": ["*"]}}},
            Status.OK,
            None,
            None,
        ),
    ],
)
def test_single_policy_findings(
    access: dict[str, Any], status: Status, code: str | None, fix: str | None
) -> None:
    [result] = _lint({"com.example.C": _component({"accessControl": access})}).values()
    assert result.target == "com.example.C/p"
    assert result.status is status
    if code is not None:
        assert code in _codes(result)
        assert fix is not None and fix in (result.remediation or "")


def test_binding_error_is_one_critical_result_for_the_component() -> None:
    access = {PUBSUB: {"p": {"operation": ["aws.greengrass#PublishToTopic"], "resources": ["t"]}}}
    results = _lint({"com.example.C": _component({"accessControl": access})})
    [result] = results.values()
    assert result.target == "com.example.C/p"
    assert result.status is Status.CRITICAL
    assert "unknown key 'operation'" in result.message
    assert "ignores every accessControl policy of com.example.C" in result.message


def test_malformed_access_control_value() -> None:
    results = _lint({"com.example.C": _component({"accessControl": ["not", "a", "map"]})})
    assert results["com.example.C"].status is Status.CRITICAL
    results = _lint({"com.example.C": _component({"accessControl": {PUBSUB: "x"}})})
    assert results["com.example.C/aws.greengrass.ipc.pubsub"].status is Status.CRITICAL
