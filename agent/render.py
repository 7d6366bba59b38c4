"""The ``--format text`` view: a compact table per area, worst first, remediation under each
non-OK row, the overall status last; ANSI colour only when writing to a terminal.

Every line is built as plain text and made printable (:mod:`agent.printable`) before the
status word on it is coloured: the only escape sequences in the output are the colours."""

from __future__ import annotations

from itertools import groupby

from agent.printable import printable
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

    lines: list[tuple[str, Status | None]] = []
    """Each line as plain text, and the status whose word on it is coloured."""

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
    lines.append(
        (
            f"gg-health-agent {report.agent_version} — thing {report.thing_name} — "
            f"{report.generated_at}",
            None,
        )
    )
    for area, results in by_area:
        results.sort(key=lambda r: (-r.status.severity, r.id, r.target))
        id_width = max(len(r.id) for r in results)
        # Escaped first, so that widths count what the terminal shows.
        targets = {id(r): printable(r.target) for r in results}
        target_width = min(_MAX_TARGET, max(len(t) for t in targets.values()))
        lines += [("", None), (f"[{area}]", None)]
        for r in results:
            target = _shorten(targets[id(r)], target_width)
            row = f"  {r.status.value:<8} {r.id:<{id_width}}  {target:<{target_width}}  {r.message}"
            lines.append((row, r.status))
            if r.status is not Status.OK and r.remediation:
                lines.append((f"  {'':<8} {'':<{id_width}}  ↳ fix: {r.remediation}", None))
    counts = ", ".join(f"{n} {s}" for s, n in report.summary.items() if n)
    lines += [
        ("", None),
        (f"Overall: {report.status.value} ({counts or 'no results'})", report.status),
    ]
    return "".join(
        _paint(printable(text), status if colour else None) + "\n" for text, status in lines
    )


def _paint(line: str, status: Status | None) -> str:
    """``line`` with the first ``status`` word coloured (the row's or the overall status)."""
    if status is None:
        return line
    word = status.value
    return line.replace(word, f"{_COLOURS[status]}{word}{_RESET}", 1)
