"""The Publisher interface and the outcome of one publish, which ``agent.publish`` reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.report import HealthReport

PROBE_SOURCE_KEY = "mqtt.probe_source"
"""Cache key under which the running agent leaves its publisher: ``subscription.probe`` reuses
the MQTT transport's connection. Kept here so the agent need not import the MQTT stack."""


class Delivery(str, enum.Enum):
    """What became of a report."""

    DELIVERED = "delivered"
    SPOOLED = "spooled"
    FAILED = "failed"


@dataclass(frozen=True)
class PublishOutcome:
    """The result of publishing one report."""

    delivery: Delivery
    transport: str
    message: str
    remediation: str | None = None
    unauthorized: bool = False
    """The peer refused on authorization grounds (a configuration defect, CRITICAL)."""
    details: dict[str, Any] = field(default_factory=dict)


class Publisher(Protocol):
    """A transport. ``publish`` never raises for delivery problems: it returns an outcome."""

    name: str

    def publish(self, report: HealthReport) -> PublishOutcome:
        """Deliver (or spool) ``report``."""
        ...

    def close(self) -> None:
        """Release connections; called once at shutdown."""
        ...
