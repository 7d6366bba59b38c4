"""The stdout transport: one JSON line per report (every result, unfolded)."""

from __future__ import annotations

import sys
from typing import TextIO

from agent.report import Delivery, HealthReport, PublishOutcome, to_json


class StdoutPublisher:
    """Writes each report as a JSON line and flushes, so a pipe sees it at once."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def publish(self, report: HealthReport) -> PublishOutcome:
        """Write one line; a closed pipe is a failed delivery, not a crash."""
        try:
            self._stream.write(to_json(report) + "\n")
            self._stream.flush()
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
