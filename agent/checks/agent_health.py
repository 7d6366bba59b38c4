"""``agent.publish``: how the last publish went (delivered, spooled with depth, or failing)."""

from __future__ import annotations

from collections.abc import Iterator

from agent.checks.base import Check, CheckContext, check, result
from agent.report import CheckResult, Delivery, Status


@check("agent.publish")
def publish(ctx: CheckContext) -> Iterator[CheckResult]:
    """Nothing before the first publish (``check`` never publishes)."""
    outcome = ctx.last_publish
    if outcome is None:
        return
    status = {
        Delivery.DELIVERED: Status.OK,
        Delivery.SPOOLED: Status.WARNING,
        Delivery.FAILED: Status.CRITICAL,
    }[outcome.delivery]
    if outcome.details.get("spool_error"):
        # Delivered directly, but the spool that should hold the next outage's reports is broken.
        status = Status.CRITICAL
    yield result(
        "agent.publish",
        status,
        outcome.transport,
        outcome.message,
        outcome.remediation if status is not Status.OK else None,
        delivery=outcome.delivery.value,
        unauthorized=outcome.unauthorized,
        **outcome.details,
    )


CHECKS: list[Check] = [publish]
