"""The file transport: the latest report, replaced atomically, and an optional JSONL history.

Atomic replacement (write a temp file in the same directory, fsync, rename) means a reader never
sees half a report (POSIX rename(2) is atomic within a file system), the same scheme as
prometheus/client_python's textfile writer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from agent.report import Delivery, HealthReport, PublishOutcome, to_json


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FilePublisher:
    """Keeps ``path`` holding the latest report; appends to ``<path>.jsonl`` when asked to."""

    name = "file"

    def __init__(self, path: Path, history_max_bytes: int = 0) -> None:
        self.path = path
        self.history_path = path.with_name(path.name + ".jsonl")
        self.history_max_bytes = history_max_bytes

    def publish(self, report: HealthReport) -> PublishOutcome:
        """Write the report; a full disk or a read-only directory is a failed delivery."""
        line = to_json(report)
        try:
            write_atomically(self.path, (line + "\n").encode())
            if self.history_max_bytes:
                self._append_history(line)
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
            os.replace(
                self.history_path, self.history_path.with_name(self.history_path.name + ".1")
            )
        with open(self.history_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def close(self) -> None:
        """Nothing to release."""
