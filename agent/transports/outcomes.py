"""What became of a publish on the MQTT transport, worded for ``agent.publish``.

Delivered (OK), spooled while the broker is unreachable (WARNING, with the spool depth), or
failed (CRITICAL): the broker refused CONNECT or the publish (NOT_AUTHORIZED, a policy defect),
the TLS identity cannot be set up, or the report could neither be delivered nor spooled.
Every non-OK outcome names what to change.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from agent.report import Delivery, PublishOutcome
from agent.transports.connection import MqttConnection
from agent.transports.mqtt_settings import MqttSettings
from agent.transports.spool import Spool, SpoolError

NOT_AUTHORIZED = 0x87


@dataclass
class Drain:
    """How one drain of the spool ended."""

    state: str = "done"
    """done (spool empty), budget, not_connected, refused, timeout or error."""
    delivered: int = 0
    code: int | None = None
    error: str | None = None
    discarded: int = 0
    sent_ids: list[int] = field(default_factory=list)


class Outcomes:
    """Builds the PublishOutcome of one publish from the transport's state."""

    def __init__(
        self,
        transport: str,
        topic: str,
        settings: MqttSettings,
        spool: Spool,
        connection: MqttConnection,
    ) -> None:
        self.transport = transport
        self.topic = topic
        self.settings = settings
        self.spool = spool
        self.connection = connection

    def details(self, **extra: Any) -> dict[str, Any]:
        """Topic, endpoint, spool depth and drop count, plus ``extra`` (None values left out)."""
        details: dict[str, Any] = {"topic": self.topic, "endpoint": self.settings.address}
        with contextlib.suppress(SpoolError):
            details["depth"] = self.spool.depth
            details["dropped"] = self.spool.dropped
        details.update({k: v for k, v in extra.items() if v is not None})
        return details

    def after_drain(
        self, drain: Drain, spool_error: SpoolError | None, parts: int, direct: int
    ) -> PublishOutcome:
        """The outcome once the spool was drained as far as it went."""
        if spool_error is not None:
            return self.spool_failed(spool_error, delivered=direct == parts)
        if drain.state == "done":
            return PublishOutcome(
                Delivery.DELIVERED,
                self.transport,
                f"published to {self.topic} ({parts} message(s))",
                details=self.details(delivered=drain.delivered),
            )
        if drain.state == "refused" and drain.code == NOT_AUTHORIZED:
            return PublishOutcome(
                Delivery.FAILED,
                self.transport,
                f"the broker refused the publish to {self.topic}: NOT_AUTHORIZED (0x87); "
                "the reports stay spooled until it is allowed",
                f"allow iot:Publish on the topic {self.topic} in the AWS IoT policy attached to "
                f"the device certificate (client id {self.settings.client_id})",
                unauthorized=True,
                details=self.details(reason_code=NOT_AUTHORIZED),
            )
        return self.not_sent(None, self.why(drain), setup=False, code=drain.code)

    def why(self, drain: Drain) -> str:
        """One line on why the drain stopped."""
        if drain.state == "not_connected" or not self.connection.connected:
            return self.connection.describe_disconnected()
        if drain.state == "refused":
            return (
                f"the broker refused the publish to {self.topic} (reason 0x{drain.code or 0:02x})"
            )
        if drain.state in ("timeout", "budget"):
            return f"{self.settings.address} has not acknowledged every spooled report yet"
        return drain.error or drain.state

    def not_sent(
        self, spool_error: SpoolError | None, why: str, *, setup: bool, code: int | None = None
    ) -> PublishOutcome:
        """Not delivered now: spooled (an outage) or failed (setup error, CONNECT refused)."""
        if spool_error is not None:
            return self.spool_failed(spool_error, delivered=False, why=why)
        refused = self.connection.refused_connect
        if setup:
            remediation = (
                "check system.certificateFilePath, system.privateKeyPath and, for a pkcs11: key, "
                "the library, slot and userPin of aws.greengrass.crypto.Pkcs11Provider"
            )
        elif refused:
            remediation = (
                f"allow iot:Connect for client id {self.settings.client_id} in the AWS IoT policy "
                "and check that the device certificate is ACTIVE and attached to the thing"
            )
        else:
            remediation = (
                f"check the network path to {self.settings.address} (DNS, firewall, port "
                f"{self.settings.port}), mqtt.endpoint and the root CA {self.settings.ca_path}"
            )
        delivery = Delivery.FAILED if setup or refused else Delivery.SPOOLED
        return PublishOutcome(
            delivery,
            self.transport,
            f"{why}; the report is spooled",
            remediation,
            unauthorized=refused,
            details=self.details(error=why, reason_code=code),
        )

    def spool_failed(
        self, exc: SpoolError, *, delivered: bool, why: str | None = None
    ) -> PublishOutcome:
        """The spool could not take the report: CRITICAL unless it was delivered directly."""
        if delivered:
            delivery = Delivery.DELIVERED
            message = f"published to {self.topic}, but the spool is unusable: {exc}"
        else:
            delivery = Delivery.FAILED
            message = f"{why or 'not delivered'}; and the report could not be spooled: {exc}"
        return PublishOutcome(
            delivery,
            self.transport,
            message,
            exc.remediation,
            details=self.details(spool_error=exc.reason),
        )
