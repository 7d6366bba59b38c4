"""SpoolingPublisher over the real IPC client and the nucleus stand-in (nucleus restarts, refusals).

The payload sender below is the thin ``publish_payload`` the IPC transport exposes to the
wrapper: one ``PublishToIoTCore`` per payload through the real awsiotsdk client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.greengrass.ipc import IpcSession, IpcUnauthorized, IpcUnavailable
from agent.report import CheckResult, Delivery, HealthReport, PublishOutcome, Status
from agent.transports.spool import Spool
from agent.transports.spooling import SpoolingPublisher
from tests.nucleus.standin import NucleusStandIn

TOPIC = "dt/gghealth/pi-42/health"


class IpcPayloads:
    """PublishToIoTCore of one payload, outcomes as the IPC transport words them."""

    name = "ipc"

    def __init__(self, session: IpcSession) -> None:
        self.session = session

    def publish_payload(self, payload: bytes) -> PublishOutcome:
        try:
            self.session.publish_to_iot_core(TOPIC, payload)
        except IpcUnauthorized as exc:
            return PublishOutcome(Delivery.FAILED, self.name, str(exc), "grant", unauthorized=True)
        except IpcUnavailable as exc:
            return PublishOutcome(Delivery.FAILED, self.name, str(exc), "start the nucleus")
        return PublishOutcome(Delivery.DELIVERED, self.name, "ok")

    def close(self) -> None:
        self.session.close()


def report(sequence: int) -> HealthReport:
    return HealthReport.build(
        [CheckResult("certificate.validity", Status.OK, "/c.pem", "fine")],
        agent_version="t",
        thing_name="pi-42",
        generated_at="2026-11-29T18:00:00Z",
        sequence=sequence,
        duration_ms=1.0,
    )


CLOCK = [0.0]
"""The IPC session's reconnect backoff runs on this clock: tests jump it past the backoff."""


@pytest.fixture
def spooling(nucleus: NucleusStandIn, tmp_path: Path) -> Iterator[SpoolingPublisher]:
    env = nucleus.env()
    session = IpcSession(
        socket_path=env["AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"],
        token=env["SVCUID"],
        monotonic=lambda: CLOCK[0],
    )
    publisher = SpoolingPublisher(IpcPayloads(session), Spool(tmp_path / "s.sqlite3", 1 << 20))
    yield publisher
    publisher.close()


def sequences(nucleus: NucleusStandIn) -> list[int]:
    return [json.loads(p.payload)["sequence"] for p in nucleus.publishes if p.topic == TOPIC]


def test_nucleus_outage_is_spooled_and_drained_in_order_first(
    spooling: SpoolingPublisher, nucleus: NucleusStandIn
) -> None:
    assert spooling.publish(report(1)).delivery is Delivery.DELIVERED
    nucleus.stop()
    for seq in (2, 3):
        outcome = spooling.publish(report(seq))
        assert outcome.delivery is Delivery.SPOOLED
        assert outcome.details["depth"] == seq - 1
        assert outcome.remediation == "start the nucleus"
        assert "spooled (" in outcome.message
    nucleus.start()
    CLOCK[0] += 3600.0  # past any reconnect backoff
    outcome = spooling.publish(report(4))
    assert outcome.delivery is Delivery.DELIVERED, outcome.message
    assert outcome.details == {"depth": 0, "dropped": 0}
    assert sequences(nucleus) == [1, 2, 3, 4]


def test_unauthorized_is_returned_as_is_and_not_spooled(
    spooling: SpoolingPublisher, nucleus: NucleusStandIn
) -> None:
    nucleus.deny_publish(lambda topic: True)
    outcome = spooling.publish(report(1))
    assert outcome.delivery is Delivery.FAILED and outcome.unauthorized
    assert outcome.details["depth"] == 0
    nucleus.deny_publish(None)
    assert spooling.publish(report(2)).delivery is Delivery.DELIVERED
    assert sequences(nucleus) == [2]


def test_a_broken_spool_is_a_failed_publish_with_the_reason(
    nucleus: NucleusStandIn, tmp_path: Path
) -> None:
    env = nucleus.env()
    session = IpcSession(
        socket_path=env["AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"],
        token=env["SVCUID"],
    )
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool directory should be")
    publisher = SpoolingPublisher(IpcPayloads(session), Spool(blocker / "s.sqlite3", 1 << 20))
    try:
        nucleus.stop()
        outcome = publisher.publish(report(1))
        assert outcome.delivery is Delivery.FAILED
        assert outcome.details["spool_error"] == "cannot_open"
        assert "could not be spooled" in outcome.message
        assert outcome.remediation and "writable" in outcome.remediation
    finally:
        publisher.close()
