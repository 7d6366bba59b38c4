"""Durable spooling around a transport that can send single payloads (the IPC transport).

When the inner transport cannot deliver (the nucleus is restarting, its socket is gone), the
report's payloads go to the spool and the outcome is SPOOLED with the depth; the next publish
first drains the spool in order, then sends the new report. An *unauthorized* refusal is a
configuration defect, not an outage: the outcome is returned as it is and nothing is spooled
(the next report would be refused the same way until the grant is deployed).
"""

from __future__ import annotations

from typing import Protocol

from agent.log import get_logger
from agent.report import Delivery, HealthReport, PublishOutcome
from agent.transports.sizing import payloads
from agent.transports.spool import Spool, Spooled, SpoolError, drain

log = get_logger(__name__)

DRAIN_BATCH = 16


class PayloadPublisher(Protocol):
    """A transport that can also send one already-encoded payload (at most 128 KB)."""

    name: str

    def publish_payload(self, payload: bytes) -> PublishOutcome:
        """Deliver one payload; FAILED (never an exception) when it cannot."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SpoolingPublisher:
    """A Publisher that spools what ``inner`` cannot deliver and drains it in order later."""

    def __init__(self, inner: PayloadPublisher, spool: Spool) -> None:
        self.inner = inner
        self.spool = spool
        self.name = inner.name

    def publish(self, report: HealthReport) -> PublishOutcome:
        """Drain the spool, then send this report; spool whatever is left undelivered."""
        parts = payloads(report)
        try:
            failure = self._drain()
        except SpoolError as exc:
            failure = None
            log.error("spool_read_failed", reason=exc.reason, error=str(exc))
        if failure is not None:
            return self._spool(parts, failure)
        for index, part in enumerate(parts):
            outcome = self.inner.publish_payload(part)
            if outcome.delivery is not Delivery.DELIVERED:
                return self._spool(parts[index:], outcome)
        return PublishOutcome(
            Delivery.DELIVERED,
            self.name,
            f"delivered ({len(parts)} message(s))",
            details=self._depth(),
        )

    def close(self) -> None:
        """Close the inner transport and the spool."""
        self.inner.close()
        self.spool.close()

    def _drain(self) -> PublishOutcome | None:
        """Deliver spooled payloads oldest first; the first failure stops it and is returned."""
        failure: PublishOutcome | None = None

        def send(batch: list[Spooled]) -> bool:
            nonlocal failure
            delivered: list[int] = []
            try:
                for entry in batch:
                    outcome = self.inner.publish_payload(entry.payload)
                    if outcome.delivery is not Delivery.DELIVERED:
                        failure = outcome
                        return False
                    delivered.append(entry.id)
            finally:
                self.spool.ack(delivered)
            return True

        drain(self.spool, send, batch=DRAIN_BATCH)
        return failure

    def _spool(self, parts: list[bytes], failure: PublishOutcome) -> PublishOutcome:
        if failure.unauthorized:
            return _with_details(failure, self._depth())
        try:
            self.spool.put_many(parts)
        except SpoolError as exc:
            return PublishOutcome(
                Delivery.FAILED,
                self.name,
                f"{failure.message}; and the report could not be spooled: {exc}",
                exc.remediation,
                details={**failure.details, **self._depth(), "spool_error": exc.reason},
            )
        details = self._depth()
        return PublishOutcome(
            Delivery.SPOOLED,
            self.name,
            f"{failure.message}; spooled ({details.get('depth', '?')} waiting)",
            failure.remediation,
            details={**failure.details, **details},
        )

    def _depth(self) -> dict[str, int]:
        try:
            return {"depth": self.spool.depth, "dropped": self.spool.dropped}
        except SpoolError:
            return {}


def _with_details(outcome: PublishOutcome, extra: dict[str, int]) -> PublishOutcome:
    return PublishOutcome(
        outcome.delivery,
        outcome.transport,
        outcome.message,
        outcome.remediation,
        outcome.unauthorized,
        {**outcome.details, **extra},
    )
