"""The harness of the hostile-input corpus: a healthy device to break, the CLI as a subprocess,
an in-process cycle that cannot hang the suite, and the invariants every verdict must hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.report import CheckResult, HealthReport, Status
from agent.runner import check_once, load_settings
from agent.transports.sizing import MAX_PAYLOAD_BYTES, payloads
from tests.conftest import REPO
from tests.pki import NOW, Issued, make_ca, make_device_cert, make_greengrass_root, rsa_key

CLI_TIMEOUT_S = 60.0
"""A liveness bound: a hang is the bug, and this turns it into a failure instead of a stall."""
CYCLE_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def device() -> Issued:
    """A device certificate and key from a test CA (RSA 2048, valid around ``tests.pki.NOW``)."""
    return make_device_cert(make_ca("Hostile Test Device CA", key=rsa_key()))


@dataclass
class Device:
    """A healthy Greengrass root (installer layout) that a case then breaks."""

    root: Path
    device: Issued

    @property
    def config_path(self) -> Path:
        """``config/effectiveConfig.yaml``."""
        return self.root / "config" / "effectiveConfig.yaml"

    def load(self) -> dict[str, Any]:
        """The effective configuration as plain data."""
        data: dict[str, Any] = yaml.safe_load(self.config_path.read_text())
        return data

    def save(self, doc: Mapping[str, Any]) -> None:
        """Write the effective configuration back."""
        self.config_path.write_text(yaml.safe_dump(dict(doc), sort_keys=False))

    def edit(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Load, change in place, save."""
        doc = self.load()
        change(doc)
        self.save(doc)

    def set_system(self, **values: Any) -> None:
        """Replace ``system`` keys."""
        self.edit(lambda d: d["system"].update(values))

    def path(self, key: str) -> Path:
        """A ``system`` path (``certificateFilePath``...)."""
        return Path(self.load()["system"][key])


@pytest.fixture
def healthy(tmp_path: Path, device: Issued) -> Device:
    """A fresh healthy root under ``tmp_path``."""
    gg = make_greengrass_root(tmp_path, device=device)
    return Device(gg.root, device)


def cli_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: no AWS variables of the developer, no bytecode writes."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    env.update(extra or {})
    return env


def run_cli(
    args: Iterable[str], env: Mapping[str, str], timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """``python -m agent ARGS`` in the environment's HOME (a scratch directory: the default
    spool directory is relative to the working directory), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=env.get("HOME", REPO),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_clean_exit_3(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    """Exit 3, a one-paragraph message naming the problem, no traceback, no report."""
    assert proc.returncode == 3, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert fragment.lower() in proc.stderr.lower(), proc.stderr[-2000:]
    assert proc.stdout == ""


def bounded(fn: Callable[[], Any], timeout: float = CYCLE_TIMEOUT_S) -> Any:
    """Run ``fn`` on a daemon thread; a hang fails the test instead of stalling the suite."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the test thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="hostile-cycle", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        pytest.fail(f"no verdict within {timeout:.0f} s: the input made the agent hang")
    if "error" in box:
        raise box["error"]
    return box["value"]


def cycle(
    root: Path,
    areas: Iterable[str],
    *,
    config: Mapping[str, Any] | None = None,
    config_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> HealthReport:
    """One in-process check cycle of ``areas`` with a pinned clock and an explicit environment.

    ``config`` is written as a ``--config`` file in ``config_dir`` (the layer an operator uses).
    """
    config_file = None
    if config:
        assert config_dir is not None
        config_file = config_dir / "agent-config.json"
        config_file.write_text(json.dumps(dict(config)))
    settings = load_settings(root, config_file)
    return bounded(  # type: ignore[no-any-return]
        lambda: check_once(settings, list(areas), clock=lambda: NOW, env=dict(env or {}))
    )


def assert_invariants(report: HealthReport) -> None:
    """What holds for every report whatever the input: no crash, advice, publishable."""
    crashed = [r for r in report.checks if r.details.get("reason") == "internal_error"]
    assert crashed == [], [r.message for r in crashed]
    for r in report.checks:
        if r.status is not Status.OK:
            assert r.remediation, f"{r.id} {r.target}: non-OK without remediation"
    assert all(len(p) <= MAX_PAYLOAD_BYTES for p in payloads(report))
    json.dumps(report.to_dict())


def find(
    results: Iterable[CheckResult],
    check_id: str,
    *,
    target: str | None = None,
    target_suffix: str | None = None,
) -> list[CheckResult]:
    """The results of ``check_id`` (optionally about one target)."""
    return [
        r
        for r in results
        if r.id == check_id
        and (target is None or r.target == target)
        and (target_suffix is None or r.target.endswith(target_suffix))
    ]
