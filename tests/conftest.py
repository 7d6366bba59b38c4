"""Shared fixtures: paths to the real-world fixtures in ../shared/fixtures."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Peers for every test, registered once: the nucleus stand-in (``nucleus``, ``nucleus_dir``,
# ``ipc_connect``), moto (``moto_server`` with IAM enforced, ``moto_server_open`` without),
# Mosquitto (``mosquitto``) and SoftHSM2 (``softhsm``: one token per process, because
# SoftHSM2 reads SOFTHSM2_CONF once, at the first C_Initialize).
pytest_plugins = [
    "tests.nucleus.fixtures",
    "tests.peers.moto",
    "tests.peers.mosquitto",
    "tests.peers.softhsm",
]

REPO = Path(__file__).resolve().parent.parent

# No test may depend on the machine being idle (CI machines are shared and loaded): no per-example
# deadline and no "input generation is slow" health check. In CI the examples are derived from
# each test's name (derandomize), so a failure there replays here with the same examples.
settings.register_profile(
    "gghealth", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("ci", settings.get_profile("gghealth"), derandomize=True, database=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "gghealth")
)


def modules_loaded_by(code: str, watched: Iterable[str]) -> list[str]:
    """Which of the ``watched`` modules a fresh interpreter has loaded after running ``code``.

    A name matches a module and its submodules (``awscrt`` covers ``awscrt.http``); the answer
    lists the loaded modules themselves, sorted.
    """
    probe = (
        f"{code}\nimport json, sys\nwatched = {sorted(watched)!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if any(m == w or m.startswith(w + '.')"
        " for w in watched))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def _shared_fixtures() -> Path:
    """``$GGHEALTH_SHARED_FIXTURES`` when set, else ``shared/fixtures`` beside the checkout.

    CI lays ``shared/`` beside its clone; a clone elsewhere names the folder in the variable.
    """
    env = os.environ.get("GGHEALTH_SHARED_FIXTURES")
    where = Path(env) if env else REPO.parent / "shared" / "fixtures"
    if not where.is_dir():
        raise pytest.UsageError(
            f"the real-world fixtures are not at {where}: lay shared/ beside the checkout, "
            "or set GGHEALTH_SHARED_FIXTURES to its fixtures folder"
        )
    return where


SHARED_FIXTURES = _shared_fixtures()


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The real-world Greengrass fixtures: nucleus configs, recipes, policies, Amazon roots."""
    return SHARED_FIXTURES


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The agent's JSON log lines (INFO and up) of one test, as they would reach stderr."""
    from agent.log import configure

    out = io.StringIO()
    configure("INFO", json=True, stream=out)
    yield out
    configure("WARNING", json=True)


def log_events(out: io.StringIO) -> list[dict[str, Any]]:
    """The events of :func:`log_lines`, parsed."""
    return [json.loads(line) for line in out.getvalue().splitlines()]
