"""The shadow update over the direct MQTT5 transport's connection, against Mosquitto with ACLs."""

from __future__ import annotations

import json
from pathlib import Path

from agent.fleet.shadow import MAX_STATE_BYTES, ShadowOutcome, ShadowReporter, mqtt_publish
from agent.report import CheckResult, Delivery, HealthReport, Status
from agent.transports.mqtt import MqttPublisher
from agent.transports.spool import Spool
from tests.peers.mosquitto import Mosquitto, Subscriber
from tests.pki import THING
from tests.transports.helpers import TOPIC, settings_for, wait_for

SHADOW_TOPIC = f"$aws/things/{THING}/shadow/name/gghealth/update"


def _report(sequence: int) -> HealthReport:
    cert = "/greengrass/v2/thingCert.crt"
    results = [
        CheckResult("certificate.key_match", Status.OK, cert, "matches", {}),
        CheckResult(
            "certificate.validity", Status.WARNING, cert, "expires", {"days_left": 12}, "rotate"
        ),
    ] + [
        CheckResult("s3.artifact", Status.CRITICAL, f"s3://b/{i:05d}.zip", "403", {}, "grant")
        for i in range(10_000)
    ]
    return HealthReport.build(
        results,
        agent_version="0.1.0",
        thing_name=THING,
        generated_at="2026-11-29T18:00:00Z",
        sequence=sequence,
        duration_ms=5.0,
    )


def _publisher(broker: Mosquitto, tmp_path: Path) -> MqttPublisher:
    device = broker.client_cert(THING)
    settings = settings_for(broker, device.cert_path, device.key_path)
    spool = Spool(tmp_path / "spool.sqlite3", 64 * 1024 * 1024)
    return MqttPublisher(settings, TOPIC, spool, thing_name=THING)


def test_shadow_update_over_mqtt(mosquitto: Mosquitto, tmp_path: Path) -> None:
    mosquitto.allow(THING, publish=[TOPIC, SHADOW_TOPIC])
    sub = Subscriber(mosquitto, "fleet-watcher", "$aws/things/+/shadow/name/gghealth/update")
    mosquitto.start()
    sub.start()
    pub = _publisher(mosquitto, tmp_path)
    try:
        report = _report(1)
        assert pub.publish(report).delivery is Delivery.DELIVERED  # connects the transport
        reporter = ShadowReporter(THING, mqtt_publish(pub.connection))
        assert reporter.maybe_publish(report) is ShadowOutcome.PUBLISHED
        assert reporter.maybe_publish(_report(2)) is ShadowOutcome.UNCHANGED
        assert wait_for(lambda: len(sub.payloads()) == 1)
    finally:
        pub.close()
        sub.stop()
    (payload,) = sub.payloads()
    assert len(payload) <= MAX_STATE_BYTES
    reported = json.loads(payload)["state"]["reported"]
    assert reported["critical_checks"] == ["s3.artifact"]
    assert reported["device_cert_days_left"] == 12
    assert reported["issues_omitted"] == 10_001 - len(reported["issues"])
    assert f"Received PUBLISH from {THING}" in mosquitto.log_path.read_text()


def test_refused_shadow_update_is_a_failure_retried_later(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    mosquitto.allow(THING, publish=[TOPIC])  # the IoT policy lacks the shadow topic
    mosquitto.start()
    pub = _publisher(mosquitto, tmp_path)
    try:
        report = _report(1)
        assert pub.publish(report).delivery is Delivery.DELIVERED
        reporter = ShadowReporter(THING, mqtt_publish(pub.connection))
        assert reporter.maybe_publish(report) is ShadowOutcome.FAILED  # PUBACK 0x87
        assert reporter.maybe_publish(_report(2)) is ShadowOutcome.FAILED  # tried again
    finally:
        pub.close()


def test_no_connection_is_a_failure_not_a_crash(mosquitto: Mosquitto, tmp_path: Path) -> None:
    pub = _publisher(mosquitto, tmp_path)  # never started: nothing to publish on
    try:
        reporter = ShadowReporter(THING, mqtt_publish(pub.connection, timeout_s=2))
        assert reporter.maybe_publish(_report(1)) is ShadowOutcome.FAILED
    finally:
        pub.close()
