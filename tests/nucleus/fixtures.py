"""Pytest fixtures for the nucleus stand-in, importable by any test package.

Use them from another package's conftest with
``from tests.nucleus.fixtures import nucleus, nucleus_dir, ipc_connect  # noqa: F401``
(or list ``tests.nucleus.fixtures`` in the root conftest's ``pytest_plugins``).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.nucleus.standin import NucleusStandIn
from tests.nucleus.state import DEFAULT_COMPONENT

# A configuration shaped like the agent's own (SPEC "Configuration"), served for its component.
AGENT_CONFIGURATION: dict[str, Any] = {
    "intervalSeconds": 300,
    "healthTopic": "dt/gghealth/{iot:thingName}/health",
    "transport": "ipc",
    "certificates": {"warnDays": 30, "criticalDays": 7},
}


@pytest.fixture
def nucleus_dir() -> Iterator[Path]:
    """A short private directory under /tmp: Unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ggn-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def nucleus(nucleus_dir: Path) -> Iterator[NucleusStandIn]:
    """A started stand-in with a random SVCUID serving ``AGENT_CONFIGURATION`` for the agent."""
    stand_in = NucleusStandIn(
        nucleus_dir / "ipc.sock",
        svcuid=secrets.token_urlsafe(24),
        configuration={DEFAULT_COMPONENT: AGENT_CONFIGURATION},
    )
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.stop()
    errors = stand_in.server_errors
    assert errors == [], f"the stand-in itself failed: {errors}"


@pytest.fixture
def ipc_connect(nucleus: NucleusStandIn) -> Iterator[Callable[..., Any]]:
    """Factory for real ``GreengrassCoreIPCClientV2`` clients of ``nucleus``, closed afterwards.

    ``ipc_connect(authtoken=None, lifecycle_handler=None)``; the token defaults to the right one.
    """
    import awsiot.greengrasscoreipc
    from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

    clients: list[GreengrassCoreIPCClientV2] = []

    def connect(authtoken: str | None = None, lifecycle_handler: Any = None) -> Any:
        low_level = awsiot.greengrasscoreipc.connect(
            ipc_socket=str(nucleus.socket_path),
            authtoken=authtoken or nucleus.svcuid,
            lifecycle_handler=lifecycle_handler,
            timeout=5.0,
        )
        client = GreengrassCoreIPCClientV2(client=low_level)
        clients.append(client)
        return client

    try:
        yield connect
    finally:
        for client in clients:
            client.close()
