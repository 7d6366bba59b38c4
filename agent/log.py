"""Event logging: JSON lines on stderr on a device, structlog's console rendering for people.

Call sites use the structlog style, an event name and keyword values::

    log = get_logger(__name__)
    log.warning("ipc_disconnected", reason="socket closed")

and a JSON line comes out with the keys structlog's ``JSONRenderer`` would write (``event``,
the values, ``level``, ``timestamp`` in UTC ISO 8601), so log pipelines see the same shape.

Why not structlog all the way: importing ``structlog`` imports ``structlog.stdlib``, which imports
``asyncio`` and with it ``ssl``, ``subprocess`` and ``selectors`` - 4.5 MB of resident memory in a
long-running agent that uses none of them (docs/benchmarks.md; the SPEC's budget is 55 MB). The
device path therefore formats its JSON lines itself, and structlog is loaded only when a person
at a terminal asks for console output (``check`` on a laptop), where its colours and exception
formatting are worth it and memory is not counted.

Every value passes through ``agent.secrets.scrub`` before it is rendered, so nothing that reaches
a log line can carry key material, tokens, SVCUID or PINs.
"""

from __future__ import annotations

import json as _json
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TextIO

from agent.secrets import scrub

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

Renderer = Callable[[dict[str, Any]], str]


def _json_line(event: dict[str, Any]) -> str:
    # ASCII with \u escapes, as structlog wrote it: whatever stderr's encoding, a line is whole.
    return _json.dumps(event, default=repr)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return scrub(repr(value))


class _Sink:
    """Where events go: the level threshold, the renderer and the stream (one lock per line)."""

    def __init__(self) -> None:
        self.threshold = LEVELS["info"]
        self.render: Renderer = _json_line
        self.stream: TextIO | None = None  # None: sys.stderr as it is at write time
        self.lock = threading.Lock()

    def emit(self, level: str, event: str, values: dict[str, Any], exc: bool) -> None:
        record = {"event": scrub(event)}
        for key, value in values.items():
            record[key] = _scrubbed(value)
        record["level"] = level
        record["timestamp"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        if exc and sys.exc_info()[0] is not None:
            record["exception"] = scrub(traceback.format_exc())
        line = self.render(record)
        stream = self.stream or sys.stderr
        with self.lock:
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):
                # A closed or broken stderr (the nucleus went away, a full disk under the log)
                # must not stop the audit: the line is lost, as logging.Handler would lose it.
                pass


_SINK = _Sink()


class EventLogger:
    """A logger with structlog's calling convention: ``log.info("event", key=value)``."""

    __slots__ = ()

    def _log(self, level: str, event: str, values: dict[str, Any], exc: bool = False) -> None:
        if LEVELS[level] >= _SINK.threshold:
            _SINK.emit(level, event, values, exc)

    def debug(self, event: str, **values: Any) -> None:
        self._log("debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        self._log("info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        self._log("warning", event, values)

    def error(self, event: str, **values: Any) -> None:
        self._log("error", event, values)

    def exception(self, event: str, **values: Any) -> None:
        """An error with the traceback of the exception being handled (scrubbed too)."""
        self._log("error", event, values, exc=True)


_LOGGER = EventLogger()


def get_logger(name: str) -> EventLogger:
    """The logger for module ``name``.

    structlog's signature; the lines do not carry the name, as structlog's JSONRenderer did not.
    """
    return _LOGGER


def _console_renderer(colors: bool) -> Renderer:
    import structlog  # people at a terminal only: see the module docstring

    render = structlog.dev.ConsoleRenderer(colors=colors)

    def console(event: dict[str, Any]) -> str:
        return str(render(None, event["level"], event))

    return console


def configure(
    level: str = "INFO", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Log events at ``level`` and above to ``stream`` (default stderr).

    ``json`` defaults to "stderr is not a terminal": a component's output goes to the nucleus's
    log files, a person's to a terminal.
    """
    threshold = LEVELS.get(level.lower())
    if threshold is None:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    out = stream or sys.stderr
    if json is None:
        json = not out.isatty()
    _SINK.threshold = threshold
    _SINK.stream = stream
    _SINK.render = _json_line if json else _console_renderer(colors=out.isatty())
