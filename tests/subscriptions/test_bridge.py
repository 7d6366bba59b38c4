"""MQTT bridge mappings: the integration-test and documentation configurations, and broken ones."""

from __future__ import annotations

from typing import Any

import pytest

from agent.report import CheckResult, Status
from agent.subscriptions.bridge import BRIDGE_COMPONENT, audit_bridge
from tests.subscriptions.conftest import RECIPES, fixture_services, load_data


def _results(configuration: dict[str, Any]) -> dict[str, CheckResult]:
    results = [v.to_result("subscription.bridge") for v in audit_bridge(configuration)]
    for r in results:
        assert (r.remediation is None) is (r.status is Status.OK)
    return {r.target: r for r in results}


def _codes(result: CheckResult) -> set[str]:
    return {f["code"] for f in result.details.get("findings", [])}


def _doc_merge() -> dict[str, Any]:
    return dict(load_data(RECIPES / "mqtt-bridge-configuration-merge-v2.2.x.json"))


def test_integration_test_configuration_is_sound() -> None:
    configuration = fixture_services("mqtt-bridge-config-with-mapping.yaml")[BRIDGE_COMPONENT][
        "configuration"
    ]
    results = _results(configuration)
    assert sorted(results) == [f"mapping{i}" for i in range(1, 6)]
    assert all(r.status is Status.OK for r in results.values())
    assert results["mapping5"].details["target_topic_prefix"] == "a-prefix"
    assert results["mapping1"].message == (
        "LocalMqtt -> IotCore on 'topic/to/map/from/local/to/cloud'"
    )


def test_documentation_merge_including_basic_ingest_is_sound() -> None:
    results = _results(_doc_merge())
    assert {t: r.status for t, r in results.items()} == {
        "ClientDeviceHelloWorld": Status.OK,
        "ClientDeviceEvents": Status.OK,
        "ClientDeviceCloudStatusUpdate": Status.OK,
    }


def test_mapping_back_down_from_the_cloud_loops() -> None:
    configuration = _doc_merge()
    configuration["mqttTopicMapping"]["CloudToClients"] = {
        "topic": "clients/+/hello/#",
        "source": "IotCore",
        "target": "LocalMqtt",
    }
    results = _results(configuration)
    for target in ("ClientDeviceHelloWorld", "CloudToClients"):
        assert results[target].status is Status.WARNING
        assert _codes(results[target]) == {"echo_loop"}
        assert "endless loop" in results[target].message
        assert "disjoint topics" in (results[target].remediation or "")
    assert results["ClientDeviceEvents"].status is Status.OK


def test_no_local_on_mqtt5_breaks_the_loop_but_not_the_echo() -> None:
    configuration = _doc_merge()
    configuration["mqttTopicMapping"]["CloudToClients"] = {
        "topic": "clients/+/hello/world",
        "source": "IotCore",
        "target": "LocalMqtt",
    }
    configuration["mqtt"] = {"version": "mqtt5"}
    configuration["mqtt5RouteOptions"] = {"ClientDeviceHelloWorld": {"noLocal": True}}
    results = _results(configuration)
    assert _codes(results["ClientDeviceHelloWorld"]) == {"echo"}
    # noLocal without MQTT 5 does nothing
    del configuration["mqtt"]
    assert _codes(_results(configuration)["ClientDeviceHelloWorld"]) == {"echo_loop"}


def test_prefix_takes_the_bridged_topic_out_of_the_other_filter() -> None:
    configuration = {
        "mqttTopicMapping": {
            "up": {
                "topic": "sensors/#",
                "source": "LocalMqtt",
                "target": "IotCore",
                "targetTopicPrefix": "edge/",
            },
            "down": {"topic": "sensors/+/cmd", "source": "IotCore", "target": "LocalMqtt"},
        }
    }
    assert all(r.status is Status.OK for r in _results(configuration).values())
    configuration["mqttTopicMapping"]["down"]["topic"] = "edge/sensors/#"
    results = _results(configuration)
    # Echo, but no loop: what comes down is 'edge/sensors/...', outside 'sensors/#'.
    assert _codes(results["up"]) == {"echo"}


def test_everything_bridged_to_the_cloud() -> None:
    results = _results(
        {
            "mqttTopicMapping": {
                "EverythingUp": {"topic": "#", "source": "LocalMqtt", "target": "IotCore"}
            }
        }
    )
    assert results["EverythingUp"].status is Status.WARNING
    assert _codes(results["EverythingUp"]) == {"catch_all_to_cloud"}


@pytest.mark.parametrize(
    ("mapping", "code"),
    [
        ({"topic": "a/#/b", "source": "LocalMqtt", "target": "IotCore"}, "bad_topic_filter"),
        ({"source": "LocalMqtt", "target": "IotCore"}, "bad_topic_filter"),
        ({"topic": 5, "source": "LocalMqtt", "target": "IotCore"}, "bad_topic_filter"),
        ({"topic": "a", "source": "Local", "target": "IotCore"}, "bad_source"),
        ({"topic": "a", "source": "LocalMqtt"}, "bad_target"),
        ({"topic": "a", "source": "Pubsub", "target": "pubsub"}, "same_source_and_target"),
        (
            {"topic": "a", "source": "LocalMqtt", "target": "IotCore", "targetTopicPrefix": "x/+/"},
            "bad_prefix",
        ),
        (
            {"topic": "a", "source": "LocalMqtt", "target": "IotCore", "targetTopicPrefix": 3},
            "bad_prefix",
        ),
        (
            {
                "topic": "d/e/f/g/h/i",
                "source": "LocalMqtt",
                "target": "IotCore",
                "targetTopicPrefix": "a/b/c/",
            },
            "iot_topic_limit",
        ),
        (
            {
                "topic": "t" * 250,
                "source": "LocalMqtt",
                "target": "IotCore",
                "targetTopicPrefix": "prefix/",
            },
            "iot_topic_limit",
        ),
        (
            {"topic": "a/b/c/d/e/f/g/h/+", "source": "IotCore", "target": "LocalMqtt"},
            "iot_topic_limit",
        ),
        ({"topic": "$aws/rules/R/#", "source": "IotCore", "target": "Pubsub"}, "iot_topic_limit"),
        ("not a mapping", "malformed_mapping"),
    ],
)
def test_broken_mapping_is_critical(mapping: Any, code: str) -> None:
    result = _results({"mqttTopicMapping": {"m": mapping}})["m"]
    assert result.status is Status.CRITICAL
    assert code in _codes(result)
    assert result.remediation


def test_keys_and_kinds_are_case_insensitive_like_the_bridge() -> None:
    result = _results(
        {"mqttTopicMapping": {"m": {"Topic": "a/b", "SOURCE": "localmqtt", "target": "IOTCORE"}}}
    )["m"]
    assert result.status is Status.OK
    assert result.details["source"] == "LocalMqtt"


def test_basic_ingest_levels_do_not_count() -> None:
    result = _results(
        {
            "mqttTopicMapping": {
                "m": {
                    "topic": "a/b/c/d/e/f/+",
                    "source": "LocalMqtt",
                    "target": "IotCore",
                    "targetTopicPrefix": "$aws/rules/StatusUpdateRule/",
                }
            }
        }
    )["m"]
    assert result.status is Status.OK


def test_mapping_table_of_the_wrong_type_and_empty_tables() -> None:
    result = _results({"mqttTopicMapping": ["m"]})["mqttTopicMapping"]
    assert result.status is Status.CRITICAL
    assert _results({"mqttTopicMapping": {}}) == {}
    assert _results({}) == {}
