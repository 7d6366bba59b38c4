"""A cycle runs with the cyclic garbage collector paused, and leaves it as it found it."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator

import pytest

from agent.checks.base import CheckContext, FunctionCheck
from agent.config import build_config
from agent.greengrass.root import GreengrassRoot
from agent.report import CheckResult, Status
from agent.runner import build_report


@pytest.fixture
def ctx(tmp_path: object) -> CheckContext:
    root = GreengrassRoot(root=tmp_path, config_path=tmp_path, lite=False, raw={})  # type: ignore[arg-type]
    return CheckContext(config=build_config(), greengrass=root)


@pytest.fixture
def gc_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_during_a_cycle_and_on_after(
    ctx: CheckContext, gc_restored: None
) -> None:
    seen: list[bool] = []

    def probe(_ctx: CheckContext) -> Iterable[CheckResult]:
        seen.append(gc.isenabled())
        return [CheckResult("agent.probe", Status.OK, "gc", "seen")]

    def crash(_ctx: CheckContext) -> Iterable[CheckResult]:
        raise RuntimeError("boom")

    gc.enable()
    report = build_report([FunctionCheck("agent.probe", probe), FunctionCheck("x.y", crash)], ctx)
    assert seen == [False]
    assert gc.isenabled()
    assert [r.status for r in report.checks] == [Status.UNKNOWN, Status.OK]


def test_a_collector_disabled_by_the_host_stays_disabled(
    ctx: CheckContext, gc_restored: None
) -> None:
    gc.disable()
    build_report([], ctx)
    assert not gc.isenabled()
