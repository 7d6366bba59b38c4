"""The IPC transport: ``PublishToIoTCore`` QoS 1 through the nucleus, the default on a device.

The nucleus forwards to AWS IoT Core on its own MQTT connection and applies the component's
``accessControl`` first; a refusal is a configuration defect (CRITICAL), named with the grant
to add. https://docs.aws.amazon.com/greengrass/v2/developerguide/ipc-iot-core-mqtt.html
``service.make_publisher`` wraps it in a SpoolingPublisher, so what the nucleus cannot take
while it restarts waits on disk.
"""

from __future__ import annotations

from agent.greengrass.ipc import IpcSession, IpcUnauthorized, IpcUnavailable
from agent.log import get_logger
from agent.report import Delivery, HealthReport, PublishOutcome
from agent.transports.sizing import payloads

log = get_logger(__name__)


class IpcPublisher:
    """Publishes each report (folded/chunked to fit 128 KB) to the health topic."""

    name = "ipc"

    def __init__(self, session: IpcSession, topic: str, component: str) -> None:
        self.session = session
        self.topic = topic
        self.component = component
        self._unauthorized_logged = False

    def publish(self, report: HealthReport) -> PublishOutcome:
        """Publish every payload of the report; stop at the first failure."""
        parts = payloads(report)
        for part in parts:
            outcome = self.publish_payload(part)
            if outcome.delivery is not Delivery.DELIVERED:
                return outcome
        return PublishOutcome(
            Delivery.DELIVERED,
            self.name,
            f"published to {self.topic} ({len(parts)} message(s))",
            details={"topic": self.topic, "messages": len(parts)},
        )

    def publish_payload(self, payload: bytes) -> PublishOutcome:
        """Publish one encoded payload (at most 128 KB); FAILED, never an exception."""
        try:
            self.session.publish_to_iot_core(self.topic, payload)
        except IpcUnauthorized as exc:
            if not self._unauthorized_logged:  # logged once, reported every cycle
                log.error("ipc_publish_unauthorized", topic=self.topic, error=str(exc))
                self._unauthorized_logged = True
            return PublishOutcome(
                Delivery.FAILED,
                self.name,
                f"the nucleus refused PublishToIoTCore on {self.topic}: {exc}",
                f"add to the accessControl of {self.component}: aws.greengrass.ipc.mqttproxy -> "
                f"a policy with operations [aws.greengrass#PublishToIoTCore] and resources "
                f"['{self.topic}'], then redeploy",
                unauthorized=True,
                details={"topic": self.topic},
            )
        except IpcUnavailable as exc:
            return PublishOutcome(
                Delivery.FAILED,
                self.name,
                str(exc),
                "check that the Greengrass nucleus is running (sudo systemctl status greengrass)",
                details={"topic": self.topic},
            )
        self._unauthorized_logged = False
        return PublishOutcome(
            Delivery.DELIVERED,
            self.name,
            f"published to {self.topic}",
            details={"topic": self.topic, "messages": 1},
        )

    def close(self) -> None:
        """Nothing to release: the nucleus session belongs to the agent, which closes it."""
