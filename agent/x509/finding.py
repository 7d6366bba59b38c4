"""One problem found about one target; a check folds a target's findings into one result."""

from __future__ import annotations

from dataclasses import dataclass

from agent.report import Status


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem (or, with status OK, a fact worth saying) about one target."""

    status: Status
    reason: str
    """Machine-readable cause, e.g. ``no_amazon_root``."""
    message: str
    remediation: str | None = None
