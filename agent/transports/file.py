"""The file transport: the latest report, replaced atomically, and an optional JSONL history.

Atomic replacement means a reader never sees half a report; every write goes through
:mod:`agent.safe_write`, so a configured path can never make the agent (root)
replace a device node or write through a link.
"""

from __future__ import annotations

from pathlib import Path

from agent.report import Delivery, HealthReport, PublishOutcome, to_json
from agent.safe_write import (
    UnsafeTarget,
    append,
    config_problem,
    rotate,
    write_atomically,
)


class FilePublisher:
    """Keeps ``path`` holding the latest report; appends to ``<path>.jsonl`` when asked to."""

    name = "file"

    def __init__(self, path: Path, history_max_bytes: int = 0) -> None:
        """Raises ConfigError when a path is one the agent must not write."""
        self.path = path
        self.history_path = path.with_name(path.name + ".jsonl")
        self.history_max_bytes = history_max_bytes
        targets = [(path, "file.path")]
        if history_max_bytes:
            targets.append((self.history_path, "file.path's history"))
        for target, setting in targets:
            problem = config_problem(target, setting)
            if problem is not None:
                raise problem

    def publish(self, report: HealthReport) -> PublishOutcome:
        """Write the report; a full disk or a read-only directory is a failed delivery."""
        line = to_json(report)
        try:
            write_atomically(self.path, (line + "\n").encode())
            if self.history_max_bytes:
                self._append_history(line)
        except UnsafeTarget as exc:
            return PublishOutcome(
                Delivery.FAILED,
                self.name,
                f"refused to write: {exc}",
                "remove what was planted there, or choose a path in a directory the agent owns",
            )
        except OSError as exc:
            return PublishOutcome(
                Delivery.FAILED,
                self.name,
                f"cannot write {self.path}: {exc.strerror or exc}",
                f"make {self.path.parent} writable by the agent and check free space",
                details={"errno": exc.errno},
            )
        return PublishOutcome(Delivery.DELIVERED, self.name, f"written to {self.path}")

    def _append_history(self, line: str) -> None:
        # One rotated generation (<name>.jsonl.1) bounds the disk use to twice the limit.
        try:
            size = self.history_path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(line) + 1 > self.history_max_bytes:
            rotate(self.history_path, self.history_path.with_name(self.history_path.name + ".1"))
        append(self.history_path, (line + "\n").encode())

    def close(self) -> None:
        """Nothing to release."""
