"""structlog set-up: JSON lines on stderr on a device, console rendering for people at a TTY.

Every event passes through a processor that scrubs secrets (agent.secrets) from all values, so
nothing that reaches a log line can carry key material, tokens, SVCUID or PINs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from agent.secrets import scrub


def _scrub_event(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = scrub(value)
        elif not isinstance(value, (int, float, bool)) and value is not None:
            event[key] = scrub(repr(value))
    return event


def configure(level: str = "INFO", *, json: bool | None = None) -> None:
    """Route structlog to stderr; ``json`` defaults to "stderr is not a terminal"."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
