"""MqttPublisher against a real Mosquitto: delivery, outage spooling, refusals, HSM keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import build_config
from agent.errors import ConfigError
from agent.report import CheckResult, Delivery, HealthReport, Status
from agent.transports.mqtt import MqttPublisher
from agent.transports.spool import Spool
from agent.transports.will import is_will
from tests.peers.mosquitto import Mosquitto, Subscriber
from tests.peers.tls import ca
from tests.pki import THING
from tests.transports.helpers import (
    TOPIC,
    greengrass_root,
    settings_for,
    wait_for,
)

KB = 1024


def report(sequence: int, checks: int = 1) -> HealthReport:
    results = [
        CheckResult("certificate.validity", Status.OK, f"/certs/{i}.pem", "fine")
        for i in range(checks)
    ]
    return HealthReport.build(
        results,
        agent_version="test",
        thing_name=THING,
        generated_at="2026-11-29T18:00:00Z",
        sequence=sequence,
        duration_ms=1.0,
    )


@pytest.fixture
def broker_and_sub(mosquitto: Mosquitto) -> Iterator[tuple[Mosquitto, Subscriber]]:
    mosquitto.allow(THING, publish=[f"dt/gghealth/{THING}/#"], subscribe=["cmd/#"])
    sub = Subscriber(mosquitto, "watcher", "dt/#")
    mosquitto.start()
    sub.start()
    yield mosquitto, sub
    sub.stop()


def publisher(broker: Mosquitto, tmp_path: Path, **kwargs: object) -> MqttPublisher:
    device = broker.client_cert(THING)
    settings = settings_for(broker, device.cert_path, device.key_path)
    spool = Spool(tmp_path / "spool" / "spool.sqlite3", 1024 * KB)
    return MqttPublisher(settings, TOPIC, spool, thing_name=THING, **kwargs)  # type: ignore[arg-type]


def sequences(sub: Subscriber) -> list[int]:
    """Sequences of the real reports received (a broker restart also publishes our will)."""
    return [r["sequence"] for r in map(json.loads, sub.payloads()) if not is_will(r)]


def test_delivers_with_qos1_and_reports_the_puback(
    broker_and_sub: tuple[Mosquitto, Subscriber], tmp_path: Path
) -> None:
    broker, sub = broker_and_sub
    pub = publisher(broker, tmp_path)
    try:
        outcome = pub.publish(report(1))
        assert outcome.delivery is Delivery.DELIVERED, outcome.message
        assert outcome.details["depth"] == 0 and outcome.details["topic"] == TOPIC
        assert pub.last_health_puback == 0
        assert wait_for(lambda: sequences(sub) == [1])
    finally:
        pub.close()
    log = broker.log_path.read_text()
    assert f"as {THING} (p5" in log  # MQTT 5, identity from the certificate
    assert f"u'{THING}'" in log  # username is the CN: no SDK metrics appended
    assert "(d0, q1" in log.split("Received PUBLISH from " + THING)[1]  # QoS 1
    # A clean close sends DISCONNECT 0x00 so the broker discards the will.
    assert sequences(sub) == [1]


def test_outage_reports_are_spooled_then_delivered_in_order(
    broker_and_sub: tuple[Mosquitto, Subscriber], tmp_path: Path
) -> None:
    broker, sub = broker_and_sub
    pub = publisher(broker, tmp_path)
    try:
        assert pub.publish(report(1)).delivery is Delivery.DELIVERED
        broker.stop()
        for seq in (2, 3, 4):
            outcome = pub.publish(report(seq))
            assert outcome.delivery is Delivery.SPOOLED, outcome.message
            assert outcome.details["depth"] == seq - 1
            assert "not connected" in outcome.message
            assert outcome.remediation and "network path" in outcome.remediation
        broker.start()
        # The reconnect itself triggers the drain: no further publish is needed.
        assert wait_for(lambda: sequences(sub) == [1, 2, 3, 4]), sequences(sub)
        assert wait_for(lambda: pub.spool.depth == 0)
        assert pub.publish(report(5)).delivery is Delivery.DELIVERED
        assert wait_for(lambda: sequences(sub) == [1, 2, 3, 4, 5]), sequences(sub)
    finally:
        pub.close()


def test_large_report_goes_out_in_chunks_that_share_a_sequence(
    broker_and_sub: tuple[Mosquitto, Subscriber], tmp_path: Path
) -> None:
    broker, sub = broker_and_sub
    pub = publisher(broker, tmp_path)
    big = report(7, checks=1)
    failing = [
        CheckResult("certificate.validity", Status.CRITICAL, f"/c/{i}", "x" * 900, {}, "fix")
        for i in range(300)
    ]
    big = HealthReport.build(
        failing,
        agent_version="t",
        thing_name=THING,
        generated_at=big.generated_at,
        sequence=7,
        duration_ms=1,
    )
    try:
        outcome = pub.publish(big)
        assert outcome.delivery is Delivery.DELIVERED
        assert wait_for(lambda: len(sub.payloads()) >= 3)
        parts = [json.loads(p) for p in sub.payloads()]
        assert {p["sequence"] for p in parts} == {7}
        assert [p["chunk"]["index"] for p in parts] == list(range(1, len(parts) + 1))
        assert all(len(p) <= 128 * KB for p in sub.payloads())
    finally:
        pub.close()


def test_not_authorized_publish_is_critical_and_kept_spooled(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    mosquitto.allow(THING, publish=["somewhere/else"])
    mosquitto.start()
    pub = publisher(mosquitto, tmp_path)
    try:
        outcome = pub.publish(report(1))
        assert outcome.delivery is Delivery.FAILED
        assert outcome.unauthorized
        assert "NOT_AUTHORIZED (0x87)" in outcome.message
        assert outcome.remediation and f"iot:Publish on the topic {TOPIC}" in outcome.remediation
        assert outcome.details["depth"] == 1  # kept for when the policy is fixed
        assert pub.last_health_puback == 0x87
    finally:
        pub.close()


def test_untrusted_broker_certificate_is_spooled_with_a_tls_reason(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    mosquitto.allow(THING, publish=[TOPIC])
    mosquitto.start()
    device = mosquitto.client_cert(THING)
    other_ca = ca(tmp_path / "x", "Unrelated CA")
    settings = settings_for(mosquitto, device.cert_path, device.key_path)
    settings = type(settings)(**{**settings.__dict__, "ca_path": str(other_ca.cert_path)})
    pub = MqttPublisher(settings, TOPIC, Spool(tmp_path / "s.sqlite3", 64 * KB), thing_name=THING)
    try:
        assert pub.publish(report(1)).delivery is Delivery.SPOOLED
        # s2n delays a failed handshake by 10-30 s ("blinding") before the CRT reports it.
        assert wait_for(lambda: pub.connection.last_error is not None, 60)
        outcome = pub.publish(report(2))
        assert outcome.delivery is Delivery.SPOOLED
        assert "AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE" in outcome.message
        assert outcome.remediation and "root CA" in outcome.remediation
        assert outcome.details["depth"] == 2
    finally:
        pub.close()


def test_unreadable_key_file_is_a_failed_publish_not_a_crash(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    mosquitto.allow(THING, publish=[TOPIC])
    mosquitto.start()
    device = mosquitto.client_cert(THING)
    settings = settings_for(mosquitto, device.cert_path, tmp_path / "missing.key")
    pub = MqttPublisher(settings, TOPIC, Spool(tmp_path / "s.sqlite3", 64 * KB), thing_name=THING)
    try:
        outcome = pub.publish(report(1))
        assert outcome.delivery is Delivery.FAILED
        assert "cannot set up TLS" in outcome.message and "missing.key" in outcome.message
        assert outcome.remediation and "privateKeyPath" in outcome.remediation
        assert outcome.details["depth"] == 1  # spooled for when the key is back
    finally:
        pub.close()


def test_a_broken_spool_still_delivers_and_says_so(
    broker_and_sub: tuple[Mosquitto, Subscriber], tmp_path: Path
) -> None:
    broker, sub = broker_and_sub
    device = broker.client_cert(THING)
    blocker = tmp_path / "spool-is-a-file"
    blocker.write_text("not a directory")
    settings = settings_for(broker, device.cert_path, device.key_path)
    pub = MqttPublisher(settings, TOPIC, Spool(blocker / "s.sqlite3", 64 * KB), thing_name=THING)
    try:
        delivered = pub.publish(report(1))
        assert delivered.delivery is Delivery.DELIVERED
        assert delivered.details["spool_error"] == "cannot_open"
        assert "the spool is unusable" in delivered.message
        assert delivered.remediation and "spool.path" in delivered.remediation
        assert wait_for(lambda: sequences(sub) == [1])
        broker.stop()
        lost = pub.publish(report(2))
        assert lost.delivery is Delivery.FAILED  # neither delivered nor spooled: CRITICAL
        assert "could not be spooled" in lost.message
        assert lost.details["spool_error"] == "cannot_open"
    finally:
        pub.close()


def test_from_config_resolves_the_nucleus_identity(mosquitto: Mosquitto, tmp_path: Path) -> None:
    root = greengrass_root(tmp_path, mosquitto, agent_config={})
    config = build_config({"transport": "mqtt", "spool": {"path": str(tmp_path / "sp")}})
    pub = MqttPublisher.from_config(config, root, THING, TOPIC)
    try:
        assert pub.settings.endpoint == "127.0.0.1" and pub.settings.port == mosquitto.port
        assert pub.settings.client_id == THING
        assert pub.settings.ca_path == str(root.root / "rootCA.pem")
        assert pub.spool.path == tmp_path / "sp" / "spool.sqlite3"
    finally:
        pub.close()
    overridden = build_config(
        {"transport": "mqtt", "mqtt": {"endpoint": "broker.example:1883", "clientId": "c-1"}}
    )
    pub = MqttPublisher.from_config(overridden, root, THING, TOPIC)
    assert (pub.settings.endpoint, pub.settings.port, pub.settings.client_id) == (
        "broker.example",
        1883,
        "c-1",
    )
    pub.close()
    no_endpoint = greengrass_root(tmp_path / "b", mosquitto, system={})
    doc_less = type(no_endpoint)(
        no_endpoint.root,
        no_endpoint.config_path,
        no_endpoint.lite,
        {**no_endpoint.raw, "services": {}},
    )
    with pytest.raises(ConfigError, match=r"mqtt\.endpoint"):
        MqttPublisher.from_config(config, doc_less, THING, TOPIC)
