"""Run the stand-in as a separate process (for tests that run the agent as a process too).

``StandInProcess`` starts ``python -m tests.nucleus.standin``, waits for its ``ready`` line (the
socket is listening from then on), and stops it with SIGTERM. The SVCUID travels in the child's
environment, not its argv, so it does not show in ``ps``. ``read_records`` parses the JSON-lines
record file back, payloads as bytes.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.nucleus.state import DEFAULT_COMPONENT

REPO = Path(__file__).resolve().parents[2]


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records appended so far; ``payload`` is decoded back to bytes."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "payload" in record:
            record["payload"] = base64.b64decode(record["payload"])
        records.append(record)
    return records


class StandInProcess:
    """The stand-in in a child process, serving ``configuration`` on ``socket_path``."""

    def __init__(
        self,
        socket_path: Path,
        svcuid: str,
        workdir: Path,
        configuration: dict[str, dict[str, Any]] | None = None,
        component_name: str = DEFAULT_COMPONENT,
        deny_topics: tuple[str, ...] = (),
    ) -> None:
        self.socket_path = socket_path
        self.svcuid = svcuid
        self.record_path = workdir / "nucleus-records.jsonl"
        self._config_path = workdir / "nucleus-config.json"
        self._config_path.write_text(json.dumps(configuration or {}), encoding="utf-8")
        self._argv = [
            sys.executable, "-m", "tests.nucleus.standin",
            "--socket", str(socket_path), "--component", component_name,
            "--config", str(self._config_path), "--record", str(self.record_path),
        ]  # fmt: skip
        for topic_filter in deny_topics:
            self._argv += ["--deny-topic", topic_filter]
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start the child and wait until it listens; RuntimeError with its stderr otherwise."""
        env = {**os.environ, "SVCUID": self.svcuid, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            self._argv, cwd=REPO, env=env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith('{"event": "ready"'):
            self.process.kill()
            _, err = self.process.communicate(timeout=timeout)
            raise RuntimeError(f"the stand-in process did not start: {line!r} {err.strip()}")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM the child and return its exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
        return self.process.returncode

    def records(self) -> list[dict[str, Any]]:
        """What the child recorded so far."""
        return read_records(self.record_path)

    def env(self) -> dict[str, str]:
        """The environment a component gets to reach this IPC server."""
        return {
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": str(self.socket_path),
            "SVCUID": self.svcuid,
        }

    def __enter__(self) -> StandInProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
