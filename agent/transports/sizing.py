"""Make a report fit AWS IoT's 128 KB payload limit without losing a finding.

SPEC: when a report would not fit, OK results of one check id are folded into one aggregate
result (``details.count``, ``details.targets_sample``); non-OK results are never dropped; if they
alone exceed the limit, the report goes out as numbered chunks sharing one ``sequence``.
Limit: https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from agent.report import CheckResult, Chunk, HealthReport, Status, to_json

MAX_PAYLOAD_BYTES = 128 * 1024
TARGETS_SAMPLE = 10
MAX_THING_NAME = 128
"""AWS IoT thing names are at most 128 characters; a longer one (a broken configuration) is
clipped in a folded report so the header every chunk repeats cannot outgrow the payload."""


def encode(report: HealthReport) -> bytes:
    """Compact JSON bytes of a report."""
    return to_json(report).encode()


def fold_ok(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Replace the OK results of each check id by one aggregate when there are several."""
    ok_by_id: dict[str, list[CheckResult]] = defaultdict(list)
    kept: list[CheckResult] = []
    for r in results:
        (ok_by_id[r.id] if r.status is Status.OK else kept).append(r)
    for check_id, oks in ok_by_id.items():
        if len(oks) == 1:
            kept.append(oks[0])
            continue
        kept.append(
            CheckResult(
                check_id,
                Status.OK,
                f"{len(oks)} targets",
                f"{len(oks)} targets OK",
                {"count": len(oks), "targets_sample": [r.target for r in oks[:TARGETS_SAMPLE]]},
            )
        )
    return kept


def _result_size(r: CheckResult) -> int:
    return len(to_json(r).encode()) + 1


def _shrink(r: CheckResult, budget: int) -> CheckResult:
    """A single result too large for any payload keeps its verdict but loses its bulk."""
    if _result_size(r) <= budget:
        return r
    details: dict[str, Any] = {"truncated": True}
    # What alert rules and readers key on survives: the reason, and an aggregate's count.
    reason, count = r.details.get("reason"), r.details.get("count")
    if isinstance(reason, str) and len(reason) <= 64:
        details["reason"] = reason
    if isinstance(count, int):
        details["count"] = count
    return replace(
        r,
        message=r.message[:1024],
        target=r.target[:1024],
        details=details,
        remediation=(r.remediation or "")[:1024] or None,
    )


def payloads(report: HealthReport, limit: int = MAX_PAYLOAD_BYTES) -> list[bytes]:
    """The one or more payloads to publish for ``report``, each at most ``limit`` bytes."""
    whole = encode(report)
    if len(whole) <= limit:
        return [whole]
    thing = report.thing_name
    if len(thing) > MAX_THING_NAME:
        thing = thing[:MAX_THING_NAME] + "..."
    folded = replace(report, checks=fold_ok(report.checks), thing_name=thing)
    body = encode(folded)
    if len(body) <= limit:
        return [body]
    # Chunk: every part repeats the header, so the budget for results is what the header leaves.
    header = len(encode(replace(folded, checks=[], chunk=Chunk(99999, 99999))))
    budget = limit - header
    parts: list[list[CheckResult]] = [[]]
    used = 0
    for r in (_shrink(r, budget) for r in folded.checks):
        size = _result_size(r)
        if parts[-1] and used + size > budget:
            parts.append([])
            used = 0
        parts[-1].append(r)
        used += size
    total = len(parts)
    return [
        encode(replace(folded, checks=part, chunk=Chunk(i + 1, total)))
        for i, part in enumerate(parts)
    ]
