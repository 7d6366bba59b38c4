"""The health report: statuses, one check result, the versioned report, and its JSON Schema.

Results are plain frozen dataclasses (cheap to build in the hot loop); pydantic is only used to
derive the JSON Schema that ``gg-health-agent schema`` prints.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_options: Any) -> Any:
        return lambda decorator: decorator


SCHEMA_VERSION = 1


class Status(str, enum.Enum):
    """A result status from the Monitoring Plugins set; the value is what reports carry."""

    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"

    @property
    def severity(self) -> int:
        """Rank for "worst wins": CRITICAL > UNKNOWN > WARNING > OK (SPEC, Health report)."""
        return _SEVERITY[self]

    @property
    def exit_code(self) -> int:
        """Monitoring Plugins exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
        return _EXIT_CODE[self]


_SEVERITY = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}
_EXIT_CODE = {Status.OK: 0, Status.WARNING: 1, Status.CRITICAL: 2, Status.UNKNOWN: 3}
_TEXT = {s: s.value for s in Status}
_WORST_FIRST = sorted(Status, key=_SEVERITY.__getitem__, reverse=True)
_BY_ID_TARGET = attrgetter("id", "target")


_Record = TypeVar("_Record")


@dataclass_transform(frozen_default=True)
def record(cls: type[_Record]) -> type[_Record]:
    """A slotted dataclass the type checker holds frozen, without ``frozen=True``'s run-time cost.

    A frozen dataclass sets each field through ``object.__setattr__`` in ``__init__``: 1.2 us for
    a result against 0.26 us, and a check of 10,000 certificates makes 30,000 results and 10,000
    certificate facts, shared between cycles once made. ``make lint`` (mypy) rejects any
    assignment to a field, as it does for frozen dataclasses; instances are not hashable.
    """
    return dataclass(slots=True)(cls)


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe status; an empty set is UNKNOWN (nothing was verified)."""
    found = max(statuses, key=lambda s: s.severity, default=None)
    return Status.UNKNOWN if found is None else found


@record
class CheckResult:
    """One verdict of one check about one target."""

    id: str
    """Public check id from the SPEC catalogue, e.g. ``certificate.validity``."""
    status: Status
    """The verdict."""
    target: str
    """What was checked: a file path, a topic, a bucket, a policy id."""
    message: str
    """One line for people."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Machine-readable facts behind the verdict (JSON-serialisable)."""
    remediation: str | None = None
    """What to change; set on every non-OK result."""

    @property
    def area(self) -> str:
        """The area the id belongs to (the part before the first dot)."""
        return self.id.partition(".")[0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this result as the report carries it (for encoding: a plain
        ``details`` dict is the result's own, not a copy)."""
        details = self.details
        out: dict[str, Any] = {
            "id": self.id,
            "status": _TEXT[self.status],  # not .value: an enum property, 5x a dict lookup
            "target": self.target,
            "message": self.message,
            "details": details if type(details) is dict else dict(details),
        }
        if self.remediation is not None:
            out["remediation"] = self.remediation
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found about a target (or, with status OK, a fact worth saying)."""

    status: Status
    reason: str
    """Stable machine-readable cause, e.g. ``no_amazon_root``: the report's ``details.reason``."""
    message: str
    remediation: str | None = None
    consequence: str | None = None
    """What the problem leads to, e.g. "the next deployment of X fails to download it": said
    once after every finding's message, so two problems with one outcome do not repeat it."""


@dataclass(frozen=True)
class Verdict:
    """Everything found about one target: the one shape every area's rules return."""

    target: str
    ok_message: str
    findings: tuple[Finding, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_result(self, check_id: str) -> CheckResult:
        """The one result of this target (:func:`fold`)."""
        return fold(check_id, self.target, self.findings, self.ok_message, self.details)


def fold(
    check_id: str,
    target: str,
    findings: Iterable[Finding],
    ok_message: str,
    details: Mapping[str, Any] | None = None,
) -> CheckResult:
    """A target's findings as its one result, the same way in every area.

    No problem: OK with ``ok_message``. Otherwise the worst finding sets the status and
    ``details.reason``; ``details.reasons`` lists every problem's reason and
    ``details.findings`` each one's reason (as ``code``), status and message, worst first; the
    message and the remediation join theirs in that order, the message ending with each distinct
    consequence.
    """
    problems = sorted(
        (f for f in findings if f.status is not Status.OK), key=lambda f: -f.status.severity
    )
    facts = dict(details or {})
    if not problems:
        return CheckResult(check_id, Status.OK, target, ok_message, facts)
    facts["reason"] = problems[0].reason
    facts["reasons"] = [f.reason for f in problems]
    facts["findings"] = [
        {"code": f.reason, "status": f.status.value, "message": f.message} for f in problems
    ]
    remediation = "; ".join(dict.fromkeys(f.remediation for f in problems if f.remediation))
    consequences = dict.fromkeys(f.consequence for f in problems if f.consequence)
    return CheckResult(
        check_id,
        problems[0].status,
        target,
        "; ".join([*(f.message for f in problems), *consequences]),
        facts,
        remediation or None,
    )


PUBACK_DELIVERED = {0x00: "SUCCESS", 0x10: "NO_MATCHING_SUBSCRIBERS"}
"""PUBACK reason codes of a publish the broker accepted (MQTT 5.0 section 3.4.2.1): AWS IoT
answers 0x10 when nobody subscribes, which still means delivered to the broker."""


class Delivery(str, enum.Enum):
    """What became of a report."""

    DELIVERED = "delivered"
    SPOOLED = "spooled"
    FAILED = "failed"


@dataclass(frozen=True)
class PublishOutcome:
    """The result of publishing one report (``agent.transport`` judges the last one)."""

    delivery: Delivery
    transport: str
    message: str
    remediation: str | None = None
    unauthorized: bool = False
    """The peer refused on authorization grounds (a configuration defect, CRITICAL)."""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Position of one part of a report that was split to fit the MQTT payload limit."""

    index: int
    total: int


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A complete report of one cycle (schema_version 1)."""

    agent_version: str
    thing_name: str
    generated_at: str
    """UTC, RFC 3339 with a ``Z`` suffix."""
    sequence: int
    """Increases by one per cycle of a running agent; chunks of one report share it."""
    duration_ms: float
    status: Status
    summary: dict[str, int]
    checks: list[CheckResult]
    schema_version: int = SCHEMA_VERSION
    chunk: Chunk | None = None

    @classmethod
    def build(
        cls,
        results: list[CheckResult],
        *,
        agent_version: str,
        thing_name: str,
        generated_at: str,
        sequence: int,
        duration_ms: float,
    ) -> HealthReport:
        """Derive status and summary from the results, sorted worst first for readers.

        The order is (severity descending, id, target). With 10,000 certificates a cycle has
        30,000 results, so the work is done per status bucket with C-level keys rather than a
        Python key function per result, and the bucket sizes are the summary.
        """
        buckets: dict[Status, list[CheckResult]] = {s: [] for s in Status}
        add = {s: buckets[s].append for s in Status}
        for r in results:
            add[r.status](r)
        ordered: list[CheckResult] = []
        for status in _WORST_FIRST:
            group = buckets[status]
            group.sort(key=_BY_ID_TARGET)
            ordered += group
        found = [s for s in _WORST_FIRST if buckets[s]]
        return cls(
            agent_version=agent_version,
            thing_name=thing_name,
            generated_at=generated_at,
            sequence=sequence,
            duration_ms=round(duration_ms, 1),
            status=found[0] if found else Status.UNKNOWN,
            summary={s.value: len(buckets[s]) for s in Status},
            checks=ordered,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the report."""
        return self.to_dict_with_checks([r.to_dict() for r in self.checks])

    def to_dict_with_checks(self, checks: list[Any]) -> dict[str, Any]:
        """The JSON object of the report with ``checks`` in its place (before ``chunk``)."""
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "agent_version": self.agent_version,
            "thing_name": self.thing_name,
            "generated_at": self.generated_at,
            "sequence": self.sequence,
            "duration_ms": self.duration_ms,
            "status": self.status.value,
            "summary": self.summary,
            "checks": checks,
        }
        if self.chunk is not None:
            out["chunk"] = {"index": self.chunk.index, "total": self.chunk.total}
        return out


def to_json(item: HealthReport | CheckResult) -> str:
    """The compact JSON text of a report (or of one result) as every output carries it."""
    return json.dumps(item.to_dict(), separators=(",", ":"))


_EMPTY_CHECKS = '"checks":[]'
_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""The encoder of :func:`to_json` (json.dumps's defaults, compact separators)."""


def json_chunks(report: HealthReport, batch: int = 1000) -> Iterator[str]:
    """:func:`to_json` of ``report``, the same text, in pieces of ``batch`` results.

    For ``check --format json`` of many certificates: the whole text at once is 67 MB for
    100,000 certificates, on top of a dict per result; in pieces only one batch is held.
    """
    head = json.dumps(report.to_dict_with_checks([]), separators=(",", ":"))
    # The key as written, never inside a string value: there its quotes would be escaped.
    at = head.index(_EMPTY_CHECKS) + len(_EMPTY_CHECKS) - 1
    yield head[:at]
    checks = report.checks
    for start in range(0, len(checks), batch):
        # One C-level encode of the batch as a list, brackets cut: json.dumps per result would
        # build an encoder per call, slower than the single string it replaces.
        text = _COMPACT.encode([r.to_dict() for r in checks[start : start + batch]])[1:-1]
        yield text if start == 0 else "," + text
    yield head[at:]


def summarize(results: Iterable[CheckResult]) -> dict[str, int]:
    """Count of results per status, every status present."""
    counts = Counter(r.status for r in results)
    return {s.value: counts.get(s, 0) for s in Status}


CHECK_IDS = (
    "certificate.readable",
    "certificate.validity",
    "certificate.key_quality",
    "certificate.key_match",
    "certificate.chain",
    "certificate.permissions",
    "subscription.publish_authorized",
    "subscription.policy_lint",
    "subscription.bridge",
    "subscription.legacy_router",
    "subscription.iot_policy",
    "subscription.probe",
    "s3.credentials",
    "s3.identity",
    "s3.bucket",
    "s3.artifact",
    "system.clock",
    "system.endpoint",
    "agent.publish",
)
"""The check ids of the SPEC catalogue (public API), listed in the JSON Schema as examples: not
an enum, so a consumer of an older schema still accepts a report from a newer agent."""


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the report, derived from the dataclasses above."""
    from pydantic import TypeAdapter  # lazy: only the ``schema`` command pays for it

    schema = TypeAdapter(HealthReport).json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gg-health-agent health report"
    check_id = schema["$defs"]["CheckResult"]["properties"]["id"]
    check_id["description"] = "Public check id of the catalogue (alert rules key on it)"
    check_id["examples"] = list(CHECK_IDS)
    return schema
