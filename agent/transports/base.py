"""The Publisher interface: what every transport does with a report."""

from __future__ import annotations

from typing import Protocol

from agent.report import HealthReport, PublishOutcome


class Publisher(Protocol):
    """A transport. ``publish`` never raises for delivery problems: it returns an outcome."""

    name: str

    def publish(self, report: HealthReport) -> PublishOutcome:
        """Deliver (or spool) ``report``."""
        ...

    def close(self) -> None:
        """Release connections; called once at shutdown."""
        ...
