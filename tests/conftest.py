"""Shared fixtures: paths to the real-world fixtures in ../shared/fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

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
    env = os.environ.get("GGHEALTH_SHARED_FIXTURES")
    candidates = [Path(env)] if env else []
    # CI lays shared/ beside the clone; a throwaway clone in /tmp falls back to the workplace copy.
    candidates += [REPO.parent / "shared" / "fixtures", Path("/work/shared/fixtures")]
    for c in candidates:
        if c.is_dir():
            return c
    raise RuntimeError(
        "shared/fixtures not found beside the checkout; set GGHEALTH_SHARED_FIXTURES"
    )


SHARED_FIXTURES = _shared_fixtures()


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The real-world Greengrass fixtures: nucleus configs, recipes, policies, Amazon roots."""
    return SHARED_FIXTURES
