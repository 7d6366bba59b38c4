"""What every check gets and gives: the CheckContext passed in, and the Check it implements.

Checks never reach for globals: the clock, the Greengrass root, the configuration and the
caches come in the context, so a test pins the clock and hands in real files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from agent.config.models import AgentConfig
from agent.greengrass.root import GreengrassRoot
from agent.report import CheckResult, PublishOutcome, Status

if TYPE_CHECKING:  # the HTTP stack loads awscrt: only the areas that call AWS import it
    from agent.aws.http import HttpClient
    from agent.system.clock import KernelClock

T = TypeVar("T")


def kernel_clock() -> KernelClock | None:
    """The kernel's clock state (``adjtimex(2)``), read through the real syscall."""
    from agent.system.clock import read_kernel_clock

    return read_kernel_clock()


def utc_now() -> datetime:
    """The wall clock, timezone-aware (certificate verdicts use wall time, not monotonic)."""
    return datetime.now(timezone.utc)


class Kept:
    """What the checks keep from one cycle to the next, one object per type.

    Each area declares a class of its own for its state (files parsed last cycle, the last
    S3 audit, ...) and asks for it with :meth:`get`; the running agent hands the same
    ``Kept`` to every cycle, ``check`` a new one. Typed lookups instead of string keys: what an
    area keeps is written down in one class, and no area can read another's by accident.
    """

    def __init__(self, *, one_shot: bool = False) -> None:
        self._by_type: dict[type, object] = {}
        self.one_shot = one_shot
        """No cycle follows (``check``): state that only serves the next cycle (caches, memos of
        results) need not be built; with 100,000 certificates it is a third of the memory."""

    def get(self, kind: type[T]) -> T:
        """The kept ``kind``, created (without arguments) on first use."""
        found = self._by_type.get(kind)
        if found is None:
            found = self._by_type[kind] = kind()
        return found  # type: ignore[return-value]  # stored under its own type


class SubscribeProbe(Protocol):
    """Something that can ask the broker which topic filters it would let this client subscribe."""

    def probe_subscribe(self, filters: Sequence[str], timeout_s: float = 5.0) -> list[int]:
        """The SUBACK reason codes for ``filters`` (one each, in order), unsubscribed again.

        Raises ``agent.errors.ProbeError`` (its ``reason`` the UNKNOWN result's reason code)
        when the SUBSCRIBE cannot be sent or answered.
        """
        ...


@runtime_checkable
class ProbeSource(SubscribeProbe, Protocol):
    """What ``subscription.probe`` needs from the running transport (the MQTT one has it)."""

    @property
    def topic(self) -> str:
        """The health topic the reports are published on."""
        ...

    @property
    def last_health_puback(self) -> int | None:
        """The reason code of the last PUBACK on the health topic, None before the first."""
        ...

    @property
    def has_connected(self) -> bool:
        """Whether the transport has connected at least once (nothing to probe before)."""
        ...


@dataclass
class CheckContext:
    """Everything a check may use; a new one each cycle."""

    config: AgentConfig
    greengrass: GreengrassRoot
    clock: Callable[[], datetime] = utc_now
    privileged: bool = field(default_factory=lambda: os.geteuid() == 0)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    kept: Kept = field(default_factory=Kept)
    """State across cycles (:class:`Kept`)."""
    last_publish: PublishOutcome | None = None
    """How the previous report fared (``run`` only): ``agent.transport``'s input."""
    probe_source: ProbeSource | None = None
    """The live MQTT transport (``run`` only): what ``subscription.probe`` probes through."""
    http: HttpClient | None = None
    """The HTTP client of the AWS calls; by default one kept across cycles (connection reuse)."""
    kernel_clock: Callable[[], KernelClock | None] = kernel_clock
    """Where ``system.clock`` reads the kernel's NTP state: the syscall, or a test's stand-in."""
    network: bool = True
    """False in the demo: checks that need the network say so (UNKNOWN) instead of trying."""
    _once: dict[Callable[..., Any], Any] = field(default_factory=dict, repr=False)

    @property
    def thing_name(self) -> str:
        """The thing name from the nucleus config, else the component environment."""
        return self.greengrass.reported_thing_name(self.env)

    def once(self, build: Callable[[CheckContext], T]) -> T:
        """``build(self)``, computed once per cycle and shared by the checks of an area."""
        if build not in self._once:
            self._once[build] = build(self)
        found: T = self._once[build]
        return found

    def http_client(self) -> HttpClient:
        """The injected HTTP client, else the one kept across cycles."""
        if self.http is None:
            from agent.aws.http import HttpClient

            self.http = self.kept.get(HttpClient)
        return self.http


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
