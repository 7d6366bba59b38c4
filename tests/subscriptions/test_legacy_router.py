"""Legacy subscription router subscriptions: the documentation's merges, and broken ones."""

from __future__ import annotations

from typing import Any

import pytest

from agent.report import CheckResult, Status
from agent.subscriptions.legacy_router import audit_router
from tests.subscriptions.conftest import RECIPES, load_data

DEPLOYED = {
    "com.example.HelloWorldLambda": {},
    "aws.greengrass.DeviceDefender": {},
    "aws.greengrass.LegacySubscriptionRouter": {},
}
ARN = "arn:aws:lambda:us-west-2:123456789012:function:Greengrass_HelloWorld"


def _results(
    configuration: Any, services: dict[str, Any] | None = None, version: str | None = "2.1.8"
) -> dict[str, CheckResult]:
    verdicts = audit_router(configuration, DEPLOYED if services is None else services, version)
    results = [v.to_result("subscription.legacy_router") for v in verdicts]
    for r in results:
        assert (r.remediation is None) is (r.status is Status.OK)
    return {r.target: r for r in results}


def _codes(result: CheckResult) -> set[str]:
    return {f["code"] for f in result.details.get("findings", [])}


@pytest.mark.parametrize(
    ("fixture", "subscription"),
    [
        (
            "legacy-subscription-router-configuration-merge-v2.1.x.json",
            "Greengrass_HelloWorld_to_cloud",
        ),
        (
            "legacy-subscription-router-device-defender-merge-v2.1.x.json",
            "aws-greengrass-device-defender",
        ),
    ],
)
def test_documentation_merges_are_sound(fixture: str, subscription: str) -> None:
    results = _results(load_data(RECIPES / fixture))
    assert list(results) == [subscription]
    assert results[subscription].status is Status.OK
    assert results[subscription].details["target"] == "cloud"


def test_component_that_is_not_deployed() -> None:
    configuration = load_data(
        RECIPES / "legacy-subscription-router-configuration-merge-v2.1.x.json"
    )
    result = _results(configuration, services={})["Greengrass_HelloWorld_to_cloud"]
    assert result.status is Status.CRITICAL
    assert _codes(result) == {"unknown_component"}
    assert "com.example.HelloWorldLambda" in result.message


def test_component_form_needs_router_2_1() -> None:
    configuration = load_data(
        RECIPES / "legacy-subscription-router-configuration-merge-v2.1.x.json"
    )
    result = _results(configuration, version="2.0.3")["Greengrass_HelloWorld_to_cloud"]
    assert _codes(result) == {"component_form_unsupported"}


def _one(**entry: Any) -> dict[str, Any]:
    body = {"id": "s", "source": f"{ARN}:5", "subject": "hello/world", "target": "cloud"}
    body.update(entry)
    return {"subscriptions": {"s": {k: v for k, v in body.items() if v is not None}}}


@pytest.mark.parametrize(
    ("entry", "codes"),
    [
        ({}, set()),
        ({"target": f"{ARN}:7"}, set()),
        ({"target": "component:com.example.HelloWorldLambda"}, set()),
        ({"id": "other"}, {"id_mismatch"}),
        ({"id": None}, {"id_mismatch"}),
        ({"source": "cloud", "target": f"{ARN}:5"}, {"cloud_source"}),
        ({"source": f"{ARN}:$LATEST"}, {"unversioned_lambda"}),
        ({"target": f"{ARN}:prod"}, {"unversioned_lambda"}),
        ({"source": ARN}, {"unversioned_lambda"}),
        ({"source": "HelloWorldLambda"}, {"bad_source"}),
        ({"target": "Cloud"}, {"bad_target"}),
        ({"target": None}, {"bad_target"}),
        ({"subject": "hello/#/world"}, {"bad_subject"}),
        ({"subject": None}, {"bad_subject"}),
        ({"subject": "a/b/c/d/e/f/g/h/i"}, {"bad_subject"}),  # over AWS IoT's 7 slashes
        ({"subject": "a/b/c/d/e/f/g/h/i", "target": f"{ARN}:7"}, set()),  # local: no IoT limit
    ],
)
def test_subscription_rules(entry: dict[str, Any], codes: set[str]) -> None:
    result = _results(_one(**entry))["s"]
    assert _codes(result) == codes
    assert result.status is (Status.CRITICAL if codes else Status.OK)


def test_malformed_tables() -> None:
    assert _results({"subscriptions": ["x"]})["subscriptions"].status is Status.CRITICAL
    assert _results({"subscriptions": {"s": "x"}})["s"].status is Status.CRITICAL
    assert _results({}) == {}
