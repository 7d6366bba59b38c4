"""Runs checks so that none can take the agent down, and builds the report of a cycle."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from agent import __version__
from agent.checks.base import Check, CheckContext
from agent.log import get_logger
from agent.report import CheckResult, HealthReport, Status
from agent.secrets import scrub

log = get_logger(__name__)


def run_checks(checks: Sequence[Check], ctx: CheckContext) -> list[CheckResult]:
    """Run every check; an exception becomes one UNKNOWN result with a scrubbed message."""
    results: list[CheckResult] = []
    for chk in checks:
        try:
            results.extend(chk(ctx))
        except Exception as exc:  # the whole point: one broken check never stops the others
            message = scrub(f"check failed unexpectedly: {type(exc).__name__}: {exc}", env=ctx.env)
            log.error("check_crashed", check=chk.id, error=message)
            results.append(
                CheckResult(
                    chk.id,
                    Status.UNKNOWN,
                    "agent",
                    message,
                    {"reason": "internal_error"},
                    "this is a bug in gg-health-agent; please report it with the log line",
                )
            )
    return results


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off for the duration of one cycle.

    A cycle allocates tens of thousands of small, acyclic objects (facts, results, their detail
    dicts) that survive into the cache; with the collector on, each 700 allocations trigger a
    young collection and their survival soon triggers full ones that walk every cached object
    again - about a fifth of a 10,000-certificate cycle. Reference counting still frees
    everything acyclic at once; whatever cyclic garbage a cycle leaves is collected after it.
    """
    if not gc.isenabled():  # nested, or disabled by the embedding application: leave it be
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def build_report(checks: Sequence[Check], ctx: CheckContext, sequence: int = 0) -> HealthReport:
    """One cycle: run the checks and wrap the results in a HealthReport."""
    with gc_paused():
        started = time.perf_counter()
        results = run_checks(checks, ctx)
        generated = ctx.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        return HealthReport.build(
            results,
            agent_version=__version__,
            thing_name=ctx.thing_name,
            generated_at=generated,
            sequence=sequence,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
