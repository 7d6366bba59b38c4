"""Shared fixtures: paths to the real-world fixtures in ../shared/fixtures."""

from __future__ import annotations

import os
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
