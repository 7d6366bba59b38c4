"""Findings about one target, folded into the single CheckResult that target gets.

Every analyser of this package returns ``Verdict`` objects: one per policy, mapping or
subscription. A verdict with no finding becomes an OK result; otherwise the worst finding sets the
status, every finding's message is kept (worst first) and every remediation is listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.report import CheckResult, Status


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with a target."""

    status: Status
    code: str
    """Stable machine-readable reason, e.g. ``duplicate_policy_id``."""
    message: str
    remediation: str


@dataclass(frozen=True)
class Verdict:
    """Everything found about one target."""

    target: str
    ok_message: str
    findings: tuple[Finding, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        """The worst status among the findings, OK without any."""
        return max((f.status for f in self.findings), key=lambda s: s.severity, default=Status.OK)

    def to_result(self, check_id: str) -> CheckResult:
        """The CheckResult of this verdict."""
        details = dict(self.details)
        if not self.findings:
            return CheckResult(check_id, Status.OK, self.target, self.ok_message, details)
        ordered = sorted(self.findings, key=lambda f: -f.status.severity)
        details["findings"] = [
            {"code": f.code, "status": f.status.value, "message": f.message} for f in ordered
        ]
        details["reason"] = ordered[0].code
        remediation = "; ".join(dict.fromkeys(f.remediation for f in ordered))
        message = "; ".join(f.message for f in ordered)
        return CheckResult(check_id, self.status, self.target, message, details, remediation)
