"""Where the log lines of the real CLI go, with and without the environment of a component.

The nucleus writes a component's stdout to ``logs/<component>.log`` at INFO and its stderr at
WARN, so under it (``SVCUID`` set) ``run`` sends DEBUG/INFO lines to stdout and WARNING/ERROR
lines to stderr - except when stdout carries reports (the stdout transport, wherever the
configuration names it) or ``check``'s one report object. Every test runs ``python -m agent`` as
a process and reads its two pipes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from agent.demo import build_demo_root
from tests.nucleus.standin import NucleusStandIn
from tests.nucleus.state import DEFAULT_COMPONENT

SOCKET_ENV = "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"
COMPONENT_ENV = {"SVCUID": "svcuid-of-the-component"}
TIMEOUT_S = 60.0  # a liveness bound, not a performance assertion
INFO_OR_BELOW = {"debug", "info"}
WARNING_OR_ABOVE = {"warning", "error"}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without anything of a nucleus or of the developer's AWS setup."""
    env = {
        k: v
        for k, v in os.environ.items()
        # PYTHONUNBUFFERED too: the nucleus does not set it, and it would hide a missing flush.
        if not k.startswith("AWS_") and k not in {"SVCUID", SOCKET_ENV, "PYTHONUNBUFFERED"}
    }
    env.update(extra or {})
    return env


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def log_lines(text: str) -> list[dict[str, Any]]:
    """Every line as a JSON log event (fails on a line that is not one)."""
    events = [json.loads(line) for line in text.splitlines()]
    assert all({"event", "level", "timestamp"} <= set(e) for e in events), text
    return events


def names(events: list[dict[str, Any]]) -> set[str]:
    return {str(e["event"]) for e in events}


@pytest.fixture
def demo_root(tmp_path: Path) -> Path:
    return build_demo_root(tmp_path / "gg")


def _config(tmp_path: Path, **extra: Any) -> Path:
    """A config file with the file transport's path in tmp and the shadow enabled: the shadow
    needs the ipc or mqtt transport, so the agent logs ``shadow_not_available`` at WARNING."""
    config = {"file": {"path": str(tmp_path / "report.json")}, "shadow": {"enabled": True}}
    config.update(extra)
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run_once(root: Path, config: Path, *extra: str) -> list[str]:
    # DEBUG: the s3 area logs s3_audit_done at DEBUG; the cycle logs cycle_done at INFO.
    return ["--log-level", "DEBUG", "run", "--once", "--only", "certificate,s3",
            "--greengrass-root", str(root), "--config", str(config), *extra]  # fmt: skip


def test_a_component_logs_info_on_stdout_and_warnings_on_stderr(
    demo_root: Path, tmp_path: Path
) -> None:
    args = _run_once(demo_root, _config(tmp_path), "--transport", "file")
    proc = cli(*args, env=_env(COMPONENT_ENV), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "report.json").read_text())["sequence"] == 1
    out, err = log_lines(proc.stdout), log_lines(proc.stderr)
    assert {"s3_audit_done", "cycle_done"} <= names(out)
    assert {e["level"] for e in out} == INFO_OR_BELOW
    assert "shadow_not_available" in names(err)
    assert {e["level"] for e in err} <= WARNING_OR_ABOVE
    assert not names(out) & names(err)


def test_outside_greengrass_every_line_stays_on_stderr(demo_root: Path, tmp_path: Path) -> None:
    args = _run_once(demo_root, _config(tmp_path), "--transport", "file")
    proc = cli(*args, env=_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    err = log_lines(proc.stderr)
    assert {"s3_audit_done", "cycle_done", "shadow_not_available"} <= names(err)
    assert {e["level"] for e in err} == {"debug", "info", "warning"}


def _set_component_transport(root: Path, transport: str) -> None:
    effective = root / "config" / "effectiveConfig.yaml"
    document = yaml.safe_load(effective.read_text())
    document["services"][DEFAULT_COMPONENT]["configuration"]["transport"] = transport
    effective.write_text(yaml.safe_dump(document))


@pytest.mark.parametrize("named_by", ["flag", "config_file", "component_configuration"])
def test_with_the_stdout_transport_stdout_carries_only_reports(
    named_by: str, demo_root: Path, tmp_path: Path
) -> None:
    if named_by == "flag":
        args = _run_once(demo_root, _config(tmp_path), "--transport", "stdout")
    elif named_by == "config_file":
        args = _run_once(demo_root, _config(tmp_path, transport="stdout"))
    else:  # services.<component>.configuration in effectiveConfig.yaml
        _set_component_transport(demo_root, "stdout")
        args = _run_once(demo_root, _config(tmp_path))
    proc = cli(*args, env=_env(COMPONENT_ENV), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (report,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert report["schema_version"] == 1 and report["sequence"] == 1
    err = log_lines(proc.stderr)
    assert {"s3_audit_done", "cycle_done", "shadow_not_available"} <= names(err)


def test_stdout_transport_from_the_ipc_configuration_keeps_logs_off_stdout(
    demo_root: Path, tmp_path: Path, nucleus: NucleusStandIn
) -> None:
    # effectiveConfig.yaml says ipc (the first configuration loaded: stdout free), the nucleus
    # answers GetConfiguration with stdout: the reports then own stdout from the first one.
    nucleus.set_configuration(
        DEFAULT_COMPONENT, {"transport": "stdout", "shadow": {"enabled": True}}
    )
    args = ["--log-level", "DEBUG", "run", "--once", "--only", "certificate,s3",
            "--greengrass-root", str(demo_root)]  # fmt: skip
    proc = cli(*args, env=_env(nucleus.env()), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (report,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert report["schema_version"] == 1
    assert {"s3_audit_done", "cycle_done", "shadow_not_available"} <= names(log_lines(proc.stderr))
    assert nucleus.publishes == []  # it really used the stdout transport


def test_ipc_component_splits_its_log_by_level(
    demo_root: Path, tmp_path: Path, nucleus: NucleusStandIn
) -> None:
    # The deployed case: the ipc transport against a nucleus. A wrong-shaped IPC configuration
    # is a WARNING (the agent keeps effectiveConfig.yaml's); the published cycle an INFO.
    nucleus.set_configuration(DEFAULT_COMPONENT, {"intervalSeconds": "soon"})
    args = ["--log-level", "INFO", "run", "--once", "--only", "certificate",
            "--greengrass-root", str(demo_root)]  # fmt: skip
    proc = cli(*args, env=_env(nucleus.env()), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(nucleus.publishes) == 1
    out, err = log_lines(proc.stdout), log_lines(proc.stderr)
    assert [(e["event"], e["level"]) for e in out] == [("cycle_done", "info")]
    assert out[0]["delivery"] == "delivered"
    assert [(e["event"], e["level"]) for e in err] == [("ipc_configuration_unavailable", "warning")]


def test_check_json_under_greengrass_prints_only_the_report(
    demo_root: Path, tmp_path: Path
) -> None:
    args = ["--log-level", "DEBUG", "check", "--only", "s3", "--format", "json",
            "--greengrass-root", str(demo_root)]  # fmt: skip
    proc = cli(*args, env=_env(COMPONENT_ENV), cwd=tmp_path)
    report = json.loads(proc.stdout)  # exactly one JSON document
    assert proc.stdout.count("\n") == 1 and report["schema_version"] == 1
    assert proc.returncode == {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}[report["status"]]
    err = log_lines(proc.stderr)
    assert [(e["event"], e["level"]) for e in err] == [("s3_audit_done", "debug")]


class Pipe:
    """The lines of a running child's pipe as they arrive (a reader thread), to wait on."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.lines: list[str] = []
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._arrived:
                    self.lines.append(line)
                    self._arrived.notify_all()

    def wait_for(self, predicate: Callable[[list[str]], bool]) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: predicate(self.lines), TIMEOUT_S)

    def events(self) -> list[dict[str, Any]]:
        """Every line as a log event, once the child has exited and the pipe is read to its end."""
        self._reader.join(TIMEOUT_S)
        return log_lines("".join(self.lines))


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent", *args], env=env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _stop(agent: subprocess.Popen[str]) -> int:
    agent.send_signal(signal.SIGTERM)
    try:
        return agent.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        agent.kill()
        raise


def test_each_line_reaches_the_nucleus_while_the_agent_runs(
    demo_root: Path, tmp_path: Path
) -> None:
    # A block-buffered stdout would hold cycle_done until exit; the nucleus must see it now.
    args = ["--log-level", "INFO", "run", "--only", "certificate", "--interval", "3600",
            "--greengrass-root", str(demo_root), "--config", str(_config(tmp_path)),
            "--transport", "file"]  # fmt: skip
    agent = _start(args, _env(COMPONENT_ENV), tmp_path)
    out, err = Pipe(agent.stdout), Pipe(agent.stderr)
    try:
        assert out.wait_for(lambda lines: len(lines) >= 1), "no INFO line before the exit"
        assert agent.poll() is None  # still running: the line was not waiting for the exit
    finally:
        rc = _stop(agent)
    assert rc == 0, err.lines
    assert [(e["event"], e["level"]) for e in out.events()] == [
        ("cycle_done", "info"),
        ("stopping", "info"),  # logged by the SIGTERM handler on the main thread
    ]
    assert names(err.events()) == {"shadow_not_available"}


def test_stdout_stays_the_reports_when_an_update_away_from_it_is_rejected(
    demo_root: Path, tmp_path: Path, nucleus: NucleusStandIn
) -> None:
    # Reports on stdout; then an update to transport mqtt that cannot be built (no endpoint
    # anywhere): the agent keeps the stdout transport, so the log lines must stay off stdout.
    effective = demo_root / "config" / "effectiveConfig.yaml"
    document = yaml.safe_load(effective.read_text())
    del document["services"]["aws.greengrass.Nucleus"]["configuration"]["iotDataEndpoint"]
    effective.write_text(yaml.safe_dump(document))
    nucleus.set_configuration(DEFAULT_COMPONENT, {"transport": "stdout", "intervalSeconds": 1})
    args = ["--log-level", "INFO", "run", "--only", "certificate",
            "--greengrass-root", str(demo_root)]  # fmt: skip
    agent = _start(args, _env(nucleus.env()), tmp_path)
    out, err = Pipe(agent.stdout), Pipe(agent.stderr)
    try:
        assert out.wait_for(lambda lines: len(lines) >= 1), err.lines
        nucleus.set_configuration(DEFAULT_COMPONENT, {"transport": "mqtt", "intervalSeconds": 1})
        nucleus.push_configuration_update(DEFAULT_COMPONENT, ["transport"])
        assert err.wait_for(lambda lines: any("configuration_update_rejected" in x for x in lines))
        seen = len(out.lines)
        assert out.wait_for(lambda lines: len(lines) >= seen + 2), err.lines  # two more cycles
    finally:
        rc = _stop(agent)
    assert rc == 0, err.lines
    reports = [json.loads(line) for line in out.lines]
    assert all(r.get("schema_version") == 1 for r in reports), out.lines
    events = err.events()
    (rejected,) = [e for e in events if e["event"] == "configuration_update_rejected"]
    assert "endpoint" in rejected["error"] and rejected["level"] == "error"
    after = events[events.index(rejected) + 1 :]
    assert sum(e["event"] == "cycle_done" for e in after) >= 2  # the INFO lines went here


def test_no_stdout_at_all_loses_the_info_lines_not_the_cycle(
    demo_root: Path, tmp_path: Path
) -> None:
    # fd 1 closed at start: Python's sys.stdout is None. The cycle must still run and deliver.
    args = _run_once(demo_root, _config(tmp_path), "--transport", "file")
    proc = subprocess.run(
        ["sh", "-c", 'exec "$@" 1>&-', "sh", sys.executable, "-m", "agent", *args],
        env=_env(COMPONENT_ENV), cwd=tmp_path, stderr=subprocess.PIPE, text=True,
        timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "report.json").read_text())["sequence"] == 1
    assert names(log_lines(proc.stderr)) == {"shadow_not_available"}


def test_a_broken_stdout_pipe_loses_the_info_lines_not_the_cycle(
    demo_root: Path, tmp_path: Path
) -> None:
    # The reader of stdout went away (EPIPE on every write): the cycle still runs and delivers.
    args = _run_once(demo_root, _config(tmp_path), "--transport", "file")
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent", *args], env=_env(COMPONENT_ENV), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert agent.stdout is not None
    agent.stdout.close()
    _, err = agent.communicate(timeout=TIMEOUT_S)
    assert agent.returncode == 0, err
    assert json.loads((tmp_path / "report.json").read_text())["sequence"] == 1
    assert names(log_lines(err)) == {"shadow_not_available"}


CONCURRENT = """
import sys, threading
from agent.log import configure, get_logger, send_to_stdout, stdout_levels
configure("DEBUG", json=True)
send_to_stdout(stdout_levels({"SVCUID": "x"}, stdout_reserved=False))
log = get_logger("t")
pad = "x" * 9000  # longer than a pipe's atomic write (PIPE_BUF, 4096) and io's buffer (8192)
def work(n):
    for i in range(60):
        (log.info if i % 2 else log.warning)("line", thread=n, i=i, pad=pad)
threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
"""


def test_lines_from_many_threads_stay_whole_on_both_pipes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CONCURRENT], env=_env(), cwd=tmp_path,
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out, err = log_lines(proc.stdout), log_lines(proc.stderr)
    assert len(out) == len(err) == 8 * 30
    assert {e["level"] for e in out} == {"info"} and {e["level"] for e in err} == {"warning"}
    assert all(len(e["pad"]) == 9000 for e in out + err)
    assert {(e["thread"], e["i"]) for e in out} == {
        (n, i) for n in range(8) for i in range(1, 60, 2)
    }
