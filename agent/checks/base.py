"""What every check gets and gives: the CheckContext passed in, and the Check it implements.

Checks never reach for globals: the clock, the Greengrass root, the configuration and the
caches come in the context, so a test pins the clock and hands in real files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from agent.config import AgentConfig
from agent.greengrass.root import GreengrassRoot
from agent.report import CheckResult, Status


def utc_now() -> datetime:
    """The wall clock, timezone-aware (certificate verdicts use wall time, not monotonic)."""
    return datetime.now(timezone.utc)


@dataclass
class CheckContext:
    """Everything a check may use. ``memo`` lives for one cycle, ``cache`` across cycles."""

    config: AgentConfig
    greengrass: GreengrassRoot
    clock: Callable[[], datetime] = utc_now
    privileged: bool = field(default_factory=lambda: os.geteuid() == 0)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    memo: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def thing_name(self) -> str:
        """The thing name from the nucleus config, else the component environment."""
        return self.greengrass.thing_name or self.env.get("AWS_IOT_THING_NAME") or "unknown-thing"

    def memoized(self, key: str, build: Callable[[], Any]) -> Any:
        """Compute ``build()`` once per cycle and share it between the checks of an area."""
        if key not in self.memo:
            self.memo[key] = build()
        return self.memo[key]


class Check(Protocol):
    """One check id: yields one result per target it examined."""

    @property
    def id(self) -> str:
        """The public check id, e.g. ``certificate.validity``."""
        ...

    def __call__(self, ctx: CheckContext) -> Iterable[CheckResult]:
        """Run the check; expected failures are results, not exceptions."""
        ...


@dataclass(frozen=True)
class FunctionCheck:
    """A check implemented by a plain function."""

    id: str
    run: Callable[[CheckContext], Iterable[CheckResult]]

    def __call__(self, ctx: CheckContext) -> Iterable[CheckResult]:
        return self.run(ctx)


def check(
    check_id: str,
) -> Callable[[Callable[[CheckContext], Iterable[CheckResult]]], FunctionCheck]:
    """Decorator turning ``def f(ctx) -> Iterable[CheckResult]`` into a named Check."""

    def wrap(fn: Callable[[CheckContext], Iterable[CheckResult]]) -> FunctionCheck:
        return FunctionCheck(check_id, fn)

    return wrap


def result(
    check_id: str,
    status: Status,
    target: str,
    message: str,
    remediation: str | None = None,
    **details: Any,
) -> CheckResult:
    """Shorthand for building a CheckResult with keyword details."""
    return CheckResult(check_id, status, target, message, details, remediation)
