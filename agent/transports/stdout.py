"""The stdout transport: one JSON line per report (every result, unfolded).

A report is written with ``os.write`` until every byte is out: with ``PYTHONUNBUFFERED=1`` the
text layer hands a 14 MB report to one raw write, and a short write to a pipe was silently
dropped (a reader got 100 KB while the cycle said "delivered").
"""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO

from agent.report import Delivery, HealthReport, PublishOutcome, to_json


class StdoutPublisher:
    """Writes each report as a JSON line and flushes, so a pipe sees it at once."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def publish(self, report: HealthReport) -> PublishOutcome:
        """Write one line; a closed pipe or stream is a failed delivery, not a crash."""
        line = to_json(report) + "\n"
        try:
            stream = self._stream or sys.stdout
            if stream is None:  # started with stdout closed
                raise OSError("stdout is closed")
            _write_all(stream, line)
        except (OSError, ValueError) as exc:
            return PublishOutcome(
                Delivery.FAILED,
                self.name,
                f"cannot write to stdout: {exc}",
                "make sure whatever reads the agent's stdout is still running",
            )
        return PublishOutcome(Delivery.DELIVERED, self.name, "written to stdout")

    def close(self) -> None:
        """Nothing to release."""


def _write_all(stream: TextIO, line: str) -> None:
    """Every byte of ``line`` out, or an OSError (a short write is retried, never dropped)."""
    try:
        fd = stream.fileno()
    except (OSError, io.UnsupportedOperation):  # an in-memory stream
        stream.write(line)
        stream.flush()
        return
    stream.flush()  # whatever the text layer holds goes first
    view = memoryview(line.encode("utf-8"))
    while view:
        view = view[os.write(fd, view) :]
