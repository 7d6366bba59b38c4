"""``subscription.probe`` against Mosquitto's dynamic-security ACLs: SUBACK/PUBACK verdicts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.checks.base import CheckContext
from agent.checks.probe import CHECK_ID, filter_problem, probe_check, run_probes
from agent.config import build_config
from agent.report import Status
from agent.transports.connection import MqttConnection
from tests.peers.mosquitto import Mosquitto
from tests.pki import THING, make_greengrass_root
from tests.transports.helpers import TOPIC, settings_for


@pytest.fixture
def connection(mosquitto: Mosquitto) -> Iterator[MqttConnection]:
    mosquitto.allow(
        THING,
        publish=[TOPIC],
        subscribe=[f"cmd/{THING}/#", "$aws/things/pi-42/jobs/notify"],
    )
    mosquitto.start()
    device = mosquitto.client_cert(THING)
    conn = MqttConnection(settings_for(mosquitto, device.cert_path, device.key_path))
    conn.start()
    assert conn.wait_first_attempt(20), conn.last_error
    yield conn
    conn.stop()


def by_target(results: list) -> dict:  # type: ignore[type-arg]
    return {r.target: r for r in results}


def test_subscriptions_judged_by_suback(connection: MqttConnection, mosquitto: Mosquitto) -> None:
    allowed = [f"cmd/{THING}/#", f"cmd/{THING}/reboot", "$aws/things/pi-42/jobs/notify"]
    refused = ["cmd/other-thing/#", "dt/telemetry/+/x"]
    results = by_target(run_probes(connection, allowed + refused))
    assert set(results) == set(allowed + refused)
    for topic in allowed:
        assert results[topic].status is Status.OK, results[topic]
        assert results[topic].details["reason_code"] == 1  # granted QoS 1
    for topic in refused:
        r = results[topic]
        assert r.id == CHECK_ID
        assert r.status is Status.CRITICAL
        assert "NOT_AUTHORIZED (0x87)" in r.message
        assert r.details == {
            "operation": "subscribe",
            "reason_code": 0x87,
            "reason": "NOT_AUTHORIZED",
        }
        assert r.remediation and f"iot:Subscribe on topicfilter/{topic}" in r.remediation
    log = mosquitto.log_tail(200)
    # Granted probes are unsubscribed again; nothing was published anywhere.
    assert f"Received UNSUBSCRIBE from {THING}" in log
    assert f"Received PUBLISH from {THING}" not in log


def test_more_than_eight_filters_go_in_several_subscribes(
    connection: MqttConnection, mosquitto: Mosquitto
) -> None:
    topics = [f"cmd/{THING}/t{i}" for i in range(11)]
    results = run_probes(connection, topics + topics[:2])  # duplicates probed once
    assert [r.target for r in results] == topics
    assert all(r.status is Status.OK for r in results)
    assert mosquitto.log_tail(400).count(f"Received SUBSCRIBE from {THING}") == 2


def test_invalid_filters_are_critical_without_being_sent(connection: MqttConnection) -> None:
    results = by_target(run_probes(connection, ["a/#/b", "a+/b", "/".join("abcdefghi")]))
    assert {r.details["reason"] for r in results.values()} == {"invalid_filter"}
    assert all(r.status is Status.CRITICAL for r in results.values())
    assert "'#' other than as the whole last level" in (filter_problem("a/#/b") or "")
    assert "slashes" in (filter_problem("a/b/c/d/e/f/g/h/i") or "")
    assert filter_problem("dt/+/x/#") is None


def test_health_topic_is_judged_by_the_report_puback(connection: MqttConnection) -> None:
    ok = run_probes(connection, [], health_topic=TOPIC, health_puback=0x10)
    assert [(r.target, r.status, r.details["operation"]) for r in ok] == [
        (TOPIC, Status.OK, "publish")
    ]
    (refused,) = run_probes(connection, [], health_topic=TOPIC, health_puback=0x87)
    assert refused.status is Status.CRITICAL
    assert refused.remediation and f"iot:Publish on topic/{TOPIC}" in refused.remediation
    (odd,) = run_probes(connection, [], health_topic=TOPIC, health_puback=0x97)
    assert odd.status is Status.UNKNOWN
    assert run_probes(connection, [], health_topic=TOPIC, health_puback=None) == []


def test_not_connected_is_unknown(mosquitto: Mosquitto) -> None:
    mosquitto.allow(THING)
    device = mosquitto.client_cert(THING)
    conn = MqttConnection(settings_for(mosquitto, device.cert_path, device.key_path))
    (result,) = run_probes(conn, ["cmd/x"])  # never started
    assert result.status is Status.UNKNOWN
    assert result.details["reason"] == "not_connected"


def test_the_check_uses_the_running_transport_connection(
    connection: MqttConnection, mosquitto: Mosquitto, tmp_path
) -> None:
    root = make_greengrass_root(tmp_path)

    class Source:  # the ProbeSource side of the MQTT transport, over the test's connection
        topic = TOPIC
        last_health_puback = 0

        def __init__(self, connection: MqttConnection) -> None:
            self.connection = connection

        @property
        def has_connected(self) -> bool:
            return self.connection.connects > 0

        def probe_subscribe(self, filters: list[str], timeout_s: float = 5.0) -> list[int]:
            return self.connection.probe_subscribe(filters, timeout_s)

    source = Source(connection)
    config = build_config(
        {
            "transport": "mqtt",
            "subscriptions": {"requiredTopics": ["cmd/{iot:thingName}/#", "cmd/nope"]},
        }
    )
    ctx = CheckContext(config=config, greengrass=root, probe_source=source)
    results = by_target(list(probe_check(ctx)))
    assert results[TOPIC].status is Status.OK
    assert results[f"cmd/{THING}/#"].status is Status.OK
    assert results["cmd/nope"].status is Status.CRITICAL
    # Before the transport's first connection there is nothing to report either way.
    fresh = Source(MqttConnection(connection.settings))
    early = CheckContext(config=config, greengrass=root, probe_source=fresh)
    assert list(probe_check(early)) == []
    # Without a running MQTT transport (the one-shot ``check``) there is nothing to probe with.
    assert list(probe_check(CheckContext(config=config, greengrass=root))) == []
    ipc = build_config({"subscriptions": {"requiredTopics": ["cmd/nope"]}})
    assert (
        list(probe_check(CheckContext(config=ipc, greengrass=root, probe_source=ctx.probe_source)))
        == []
    )
    off = build_config({"transport": "mqtt", "mqtt": {"probe": False}})
    assert (
        list(probe_check(CheckContext(config=off, greengrass=root, probe_source=ctx.probe_source)))
        == []
    )
