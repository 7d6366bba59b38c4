"""One check cycle from validated settings: the body of ``check`` and of each ``run`` cycle."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.checks.base import CheckContext, Kept
from agent.checks.registry import AREAS, checks_for
from agent.report import HealthReport
from agent.runner import build_report
from agent.settings import Settings


def check_once(
    settings: Settings,
    only: Iterable[str] | None = None,
    *,
    kept: Kept | None = None,
    sequence: int = 0,
    **context: Any,
) -> HealthReport:
    """Run the checks of ``only`` (default: every area) and return the report.

    ``kept`` carries the checks' state from one cycle to the next in a running agent;
    ``context`` overrides CheckContext fields (a pinned clock in tests).
    """
    ctx = CheckContext(
        config=settings.config,
        greengrass=settings.greengrass,
        kept=Kept() if kept is None else kept,
        **context,
    )
    return build_report(checks_for(only or AREAS), ctx, sequence=sequence)
