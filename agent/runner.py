"""One check cycle: the settings it runs on, the checks run so that none can take the agent
down, and the report they make. The body of ``check`` and of each ``run`` cycle."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent import __version__
from agent.checks.base import Check, CheckContext, Kept
from agent.checks.registry import AREAS, checks_for
from agent.config.layering import component_name, layered_config, load_config_file
from agent.config.models import AgentConfig
from agent.greengrass.root import GreengrassRoot, load_root
from agent.log import get_logger
from agent.report import CheckResult, HealthReport, Status
from agent.secrets import scrub

log = get_logger(__name__)


@dataclass(frozen=True)
class Settings:
    """A validated configuration together with the Greengrass root it was read from."""

    config: AgentConfig
    greengrass: GreengrassRoot


def load_settings(
    greengrass_root: Path,
    config_file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    component_configuration: Mapping[str, Any] | None = None,
) -> Settings:
    """Read every layer and validate; raises ConfigError or GreengrassRootError.

    Layers, later wins (``agent.config.layering``): defaults < ``services.<componentName>.
    configuration`` in the Greengrass configuration < ``--config FILE`` < command-line flags.
    ``component_configuration`` replaces the component layer of ``effectiveConfig.yaml`` when the
    agent runs as a component and reads its own configuration over IPC (``GetConfiguration``).
    """
    file_layer = load_config_file(config_file) if config_file else {}
    flag_layer = dict(flags or {})
    component = component_name(file_layer, flag_layer)
    gg = load_root(greengrass_root)
    if component_configuration is None:
        component_layer = (
            dict(gg.service_configuration(component)),
            f"services.{component}.configuration in {gg.config_path}",
        )
    else:
        component_layer = (dict(component_configuration), f"IPC configuration of {component}")
    config = layered_config(
        [
            component_layer,
            (file_layer, f"--config {config_file}"),
            (flag_layer, "command-line flags"),
        ]
    )
    return Settings(config=config, greengrass=gg)


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
        kept=Kept(one_shot=True) if kept is None else kept,
        **context,
    )
    return build_report(checks_for(only or AREAS), ctx, sequence=sequence)


def run_checks(checks: Sequence[Check], ctx: CheckContext) -> list[CheckResult]:
    """Run every check; an exception becomes one UNKNOWN result with a scrubbed message."""
    results: list[CheckResult] = []
    for chk in checks:
        try:
            results.extend(_without_pins(chk(ctx)))
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


def _without_pins(results: Iterable[CheckResult]) -> Iterator[CheckResult]:
    """The results with any PKCS#11 PIN attribute scrubbed: a ``pkcs11:`` URI may be configured
    wherever a path is, and a check that names it must not carry its PIN into a report (the
    checks redact the URIs they know; this holds for the ones they do not)."""
    for result in results:
        shown = f"{result.target}\0{result.message}\0{result.remediation or ''}"
        if "pin-" not in shown.lower():
            yield result
            continue
        yield replace(
            result,
            target=scrub(result.target),
            message=scrub(result.message),
            remediation=None if result.remediation is None else scrub(result.remediation),
        )


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
