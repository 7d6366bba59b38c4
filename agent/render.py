"""The ``--format text`` view: a compact table per area, worst first, remediation under each
non-OK row, the overall status last; ANSI colour only when writing to a terminal."""

from __future__ import annotations

from itertools import groupby

from agent.report import CheckResult, HealthReport, Status

_COLOURS = {
    Status.OK: "\033[32m",
    Status.WARNING: "\033[33m",
    Status.CRITICAL: "\033[31;1m",
    Status.UNKNOWN: "\033[35m",
}
_RESET = "\033[0m"
_MAX_TARGET = 48


def _shorten(text: str, width: int) -> str:
    # Keep the end of a long path: the file name is the informative part.
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def render_text(report: HealthReport, *, colour: bool = False) -> str:
    """Render ``report`` for people."""

    def paint(status: Status, text: str) -> str:
        return f"{_COLOURS[status]}{text}{_RESET}" if colour else text

    def area_rank(item: tuple[str, list[CheckResult]]) -> tuple[int, str]:
        area, results = item
        return (-max(r.status.severity for r in results), area)

    by_area = sorted(
        (
            (area, list(rs))
            for area, rs in groupby(
                sorted(report.checks, key=lambda r: r.area), key=lambda r: r.area
            )
        ),
        key=area_rank,
    )
    lines = [
        f"gg-health-agent {report.agent_version} — thing {report.thing_name} — "
        f"{report.generated_at}"
    ]
    for area, results in by_area:
        results.sort(key=lambda r: (-r.status.severity, r.id, r.target))
        id_width = max(len(r.id) for r in results)
        target_width = min(_MAX_TARGET, max(len(r.target) for r in results))
        lines.append("")
        lines.append(f"[{area}]")
        for r in results:
            status = paint(r.status, f"{r.status.value:<8}")
            target = _shorten(r.target, target_width)
            lines.append(f"  {status} {r.id:<{id_width}}  {target:<{target_width}}  {r.message}")
            if r.status is not Status.OK and r.remediation:
                lines.append(f"  {'':<8} {'':<{id_width}}  ↳ fix: {r.remediation}")
    counts = ", ".join(f"{n} {s}" for s, n in report.summary.items() if n)
    lines.append("")
    lines.append(f"Overall: {paint(report.status, report.status.value)} ({counts or 'no results'})")
    return "\n".join(lines) + "\n"
