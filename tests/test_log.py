"""agent.log: the JSON lines a device writes, levels, routing, console output, and the import it
avoids. The routing as the CLI applies it, in real processes: tests/test_component_log.py."""

from __future__ import annotations

import io
import json
from datetime import datetime

import pytest

from agent.log import configure, get_logger, send_to_stdout, stdout_levels
from tests.conftest import log_events, modules_loaded_by

log = get_logger("tests.log")


def test_an_event_is_one_json_line_with_structlogs_keys(log_lines: io.StringIO) -> None:
    log.info("spool_dropped", count=3, path="/var/spool", ratio=0.5, ok=True, none=None)
    (event,) = log_events(log_lines)
    assert list(event) == ["event", "count", "path", "ratio", "ok", "none", "level", "timestamp"]
    assert event["event"] == "spool_dropped"
    assert (event["count"], event["ratio"], event["ok"], event["none"]) == (3, 0.5, True, None)
    assert event["level"] == "info"
    stamp = str(event["timestamp"])
    assert stamp.endswith("Z") and datetime.fromisoformat(stamp[:-1]).year >= 2024


def test_events_below_the_level_are_dropped(log_lines: io.StringIO) -> None:
    log.debug("noise")
    log.info("kept")
    configure("ERROR", json=True, stream=log_lines)
    log.warning("dropped too")
    log.error("also kept")
    assert [e["event"] for e in log_events(log_lines)] == ["kept", "also kept"]


def test_lines_are_ascii_whatever_the_text(log_lines: io.StringIO) -> None:
    log.info("thing_name", name="Gerät-Ω")
    assert log_lines.getvalue().isascii()
    (event,) = log_events(log_lines)
    assert event["name"] == "Gerät-Ω"


def test_other_values_are_written_as_their_repr(log_lines: io.StringIO) -> None:
    log.warning("odd", data=b"\x00raw", items=[1, "two"])
    (event,) = log_events(log_lines)
    assert event["data"] == repr(b"\x00raw")
    assert event["items"] == repr([1, "two"])


def test_exception_carries_the_traceback(log_lines: io.StringIO) -> None:
    try:
        raise KeyError("missing-thing")
    except KeyError:
        log.exception("lookup_failed", key="thing")
    (event,) = log_events(log_lines)
    assert event["level"] == "error"
    assert "Traceback" in str(event["exception"]) and "missing-thing" in str(event["exception"])


def test_a_closed_stream_loses_the_line_not_the_caller() -> None:
    out = io.StringIO()
    configure("INFO", json=True, stream=out)
    out.close()
    try:
        log.error("still_running", step=1)  # must not raise
    finally:
        configure("WARNING", json=True)
    assert out.closed


def test_an_unknown_level_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure("LOUD")


def test_console_output_is_structlogs_rendering() -> None:
    out = io.StringIO()
    configure("INFO", json=False, stream=out)
    try:
        log.warning("ipc_disconnected", reason="socket closed")
    finally:
        configure("WARNING", json=True)
    text = out.getvalue()
    assert "ipc_disconnected" in text and "reason='socket closed'" in text
    assert "[warning  ]" in text  # structlog's padded level column
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


@pytest.mark.parametrize(
    ("env", "stdout_reserved", "expected"),
    [
        ({}, False, set()),  # outside Greengrass: everything on stderr
        ({"SVCUID": "token"}, False, {"debug", "info"}),  # a component: INFO/WARN split
        ({"SVCUID": "token"}, True, set()),  # stdout carries reports or check's one object
        ({"SVCUID": ""}, False, set()),  # an empty variable is not the nucleus
        # The socket path alone (nucleus lite, or an IPC test rig) is not the signal.
        ({"AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": "/ipc.sock"}, False, set()),
    ],
)
def test_stdout_levels_is_the_one_routing_rule(
    env: dict[str, str], stdout_reserved: bool, expected: set[str]
) -> None:
    assert stdout_levels(env, stdout_reserved=stdout_reserved) == expected


def test_routed_levels_go_to_stdout_and_the_others_to_the_stream(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = io.StringIO()
    configure("DEBUG", json=True, stream=err)
    send_to_stdout(stdout_levels({"SVCUID": "token"}, stdout_reserved=False))
    try:
        log.debug("d")
        log.info("i")
        log.warning("w")
        log.error("e")
        try:
            raise OSError("boom")
        except OSError:
            log.exception("x")
    finally:
        configure("WARNING", json=True)
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["level"]) for e in out] == [("d", "debug"), ("i", "info")]
    assert [(e["event"], e["level"]) for e in log_events(err)] == [
        ("w", "warning"),
        ("e", "error"),
        ("x", "error"),
    ]


def test_configure_puts_every_level_back_on_its_stream(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = io.StringIO()
    send_to_stdout({"info"})
    configure("INFO", json=True, stream=err)  # a fresh configuration routes nothing to stdout
    try:
        log.info("here")
    finally:
        configure("WARNING", json=True)
    assert capsys.readouterr().out == ""
    assert [e["event"] for e in log_events(err)] == ["here"]


def test_an_unknown_routed_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        send_to_stdout({"info", "notice"})


def test_json_logging_does_not_import_structlog_or_asyncio() -> None:
    # The reason this module exists (docs/benchmarks.md): structlog imports asyncio and ssl.
    code = (
        "import io, os\n"
        "from agent.log import configure, get_logger, send_to_stdout, stdout_levels\n"
        "configure('INFO', json=True, stream=io.StringIO())\n"
        "send_to_stdout(stdout_levels(os.environ, stdout_reserved=True))\n"
        "get_logger('x').info('event', value=1)\n"
    )
    assert modules_loaded_by(code, ["structlog", "asyncio", "ssl"]) == []
