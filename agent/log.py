"""Event logging: JSON lines on a device, structlog's console rendering for people.

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

Lines go to stderr, except where ``stdout_levels`` says otherwise: the Greengrass nucleus logs a
component's stdout at INFO and its stderr at WARN, so ``run`` under the nucleus sends DEBUG and
INFO lines to stdout - unless stdout carries reports. Each line is written whole under one lock
shared by both streams and flushed at once: the nucleus reads the pipes line by line.
"""

from __future__ import annotations

import json as _json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timezone
from typing import Any, TextIO

from agent.secrets import scrub

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

COMPONENT_ENV = "SVCUID"
"""Set by the Java nucleus for every component process it starts, in the same code that sends the
process's stdout to the component log at INFO and its stderr at WARN (``ShellRunner.setup`` in
aws-greengrass-nucleus). ``AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT`` is not used: it
says where the IPC socket is, and nucleus lite sets it for systemd units whose stdout and stderr
both go to the journal at one priority, where moving lines between the streams gains nothing."""

NUCLEUS_INFO_LEVELS = frozenset({"debug", "info"})
"""The levels the nucleus's INFO (stdout) describes; WARN (stderr) covers warning and error."""

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
    """Where events go: threshold, renderer, streams and which levels go to stdout (one lock)."""

    def __init__(self) -> None:
        self.threshold = LEVELS["info"]
        self.render: Renderer = _json_line
        self.stream: TextIO | None = None  # None: sys.stderr as it is at write time
        self.stdout_levels: frozenset[str] = frozenset()  # these go to sys.stdout instead
        self.lock = threading.Lock()

    def emit(self, level: str, event: str, values: dict[str, Any], exc: bool) -> None:
        record = {"event": scrub(event)}
        for key, value in values.items():
            record[key] = _scrubbed(value)
        record["level"] = level
        record["timestamp"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        if exc and sys.exc_info()[0] is not None:
            record["exception"] = scrub(traceback.format_exc())
        line = self.render(record) + "\n"
        # The stream is chosen under the lock: once send_to_stdout() has returned, no line can
        # still be on its way to a stream it no longer routes to (stdout may carry reports next).
        with self.lock:
            stream = sys.stdout if level in self.stdout_levels else self.stream or sys.stderr
            if stream is None:  # Python's sys.stdout/stderr when fd 1/2 was closed at start
                return
            try:
                stream.write(line)  # one write: the line stays whole
                stream.flush()  # a pipe to the nucleus sees it now, not at exit
            except BrokenPipeError:
                discard_from_now_on(stream)
            except (OSError, ValueError):
                # A closed or broken stream (the nucleus went away, a full disk under the log)
                # must not stop the audit: the line is lost, as logging.Handler would lose it.
                pass


def discard_from_now_on(stream: TextIO) -> None:
    """The reader of ``stream`` is gone for good (EPIPE): point its descriptor at /dev/null.

    What the failed line left in Python's buffer then drains there instead of failing again at
    every later line and at exit, where a failed flush of stdout would turn the exit status into
    120 (the recipe of the ``signal`` module's "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
        stream.flush()
    except (OSError, ValueError):  # no descriptor (io.UnsupportedOperation is both), or closed
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


def stdout_levels(env: Mapping[str, str], *, stdout_reserved: bool) -> frozenset[str]:
    """The levels whose lines go to stdout; every other level's go to stderr.

    The one routing decision. Under the Greengrass nucleus (``COMPONENT_ENV`` set) DEBUG and INFO
    lines go to stdout and WARNING and ERROR lines to stderr, so that the component log
    (``logs/<component>.log``: stdout at INFO, stderr at WARN) shows each line at its level.
    Everything goes to stderr outside the nucleus, and whenever stdout is ``stdout_reserved`` for
    reports (the stdout transport). Only ``run`` asks (agent.cli): every other command keeps all
    its lines on stderr, so ``check --format json`` prints exactly one object on stdout.
    """
    if stdout_reserved or not env.get(COMPONENT_ENV):
        return frozenset()
    return NUCLEUS_INFO_LEVELS


def send_to_stdout(levels: Collection[str]) -> None:
    """Route the lines of ``levels`` to stdout from now on (see ``stdout_levels``); the rest, and
    everything when ``levels`` is empty, to the stream given to ``configure``."""
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise ValueError(f"unknown log level {sorted(unknown)!r}; use {', '.join(LEVELS)}")
    with _SINK.lock:  # see _Sink.emit: no line in flight keeps the old route
        _SINK.stdout_levels = frozenset(levels)


def configure(
    level: str = "INFO", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Log events at ``level`` and above to ``stream`` (default stderr), every level there.

    ``json`` defaults to "stderr is not a terminal": a component's output goes to the nucleus's
    log files, a person's to a terminal. Only ``send_to_stdout`` moves levels to stdout.
    """
    threshold = LEVELS.get(level.lower())
    if threshold is None:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    out = stream or sys.stderr
    if json is None:
        json = not out.isatty()
    _SINK.threshold = threshold
    _SINK.stream = stream
    send_to_stdout(())
    _SINK.render = _json_line if json else _console_renderer(colors=out.isatty())
