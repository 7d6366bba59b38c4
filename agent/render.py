"""The ``--format text`` view: a compact table per area, worst first, remediation under each
non-OK row, the overall status last; ANSI colour only when writing to a terminal.

Every line is built as plain text and made printable (:mod:`agent.printable`) before the
status word on it is coloured: the only escape sequences in the output are the colours."""

from __future__ import annotations

from collections.abc import Iterator
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
_PIECE_LINES = 1000


def _shorten(text: str, width: int) -> str:
    # Keep the end of a long path: the file name is the informative part.
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def render_text(report: HealthReport, *, colour: bool = False) -> str:
    """Render ``report`` for people."""
    return "".join(text_pieces(report, colour=colour))


def text_pieces(report: HealthReport, *, colour: bool = False) -> Iterator[str]:
    """:func:`render_text` in pieces of at most :data:`_PIECE_LINES` lines: ``check`` writes
    them as they come, so 300,000 rows (100,000 certificates) are never one string."""

    def area_rank(item: tuple[str, list[CheckResult]]) -> tuple[int, str]:
        area, results = item
        return (-max(r.status.severity for r in results), area)

    def done(lines: list[tuple[str, Status | None]]) -> str:
        """The lines as printed: made printable, then the status word coloured."""
        return "".join(
            _paint(printable(text), status if colour else None) + "\n" for text, status in lines
        )

    by_area = sorted(
        (
            (area, list(rs))
            for area, rs in groupby(
                sorted(report.checks, key=lambda r: r.area), key=lambda r: r.area
            )
        ),
        key=area_rank,
    )
    yield done(
        [
            (
                f"gg-health-agent {report.agent_version} — thing {report.thing_name} — "
                f"{report.generated_at}",
                None,
            )
        ]
    )
    for area, results in by_area:
        results.sort(key=lambda r: (-r.status.severity, r.id, r.target))
        id_width = max(len(r.id) for r in results)
        # Escaped first, so that widths count what the terminal shows.
        targets = [printable(r.target) for r in results]
        target_width = min(_MAX_TARGET, max(len(t) for t in targets))
        lines: list[tuple[str, Status | None]] = [("", None), (f"[{area}]", None)]
        for r, shown in zip(results, targets, strict=True):
            target = _shorten(shown, target_width)
            row = f"  {r.status.value:<8} {r.id:<{id_width}}  {target:<{target_width}}  {r.message}"
            lines.append((row, r.status))
            if r.status is not Status.OK and r.remediation:
                lines.append((f"  {'':<8} {'':<{id_width}}  ↳ fix: {r.remediation}", None))
            if len(lines) >= _PIECE_LINES:
                yield done(lines)
                lines = []
        yield done(lines)
    counts = ", ".join(f"{n} {s}" for s, n in report.summary.items() if n)
    yield done(
        [("", None), (f"Overall: {report.status.value} ({counts or 'no results'})", report.status)]
    )


def _paint(line: str, status: Status | None) -> str:
    """``line`` with the first ``status`` word coloured (the row's or the overall status)."""
    if status is None:
        return line
    word = status.value
    return line.replace(word, f"{_COLOURS[status]}{word}{_RESET}", 1)
