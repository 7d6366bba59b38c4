"""Peers for the fleet tests: Mosquitto (the MQTT transport's shadow updates) and a moto server
for AWS IoT's indexing configuration.

Not the shared ``moto_server`` fixture: with IAM enforcement on, moto rejects the SigV4 signature
of IoT GET requests (GetIndexingConfiguration fails with SignatureDoesNotMatch for boto3 and the
AWS CLI alike), and the indexing script needs no IAM policy evaluation.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import pytest

from tests.peers.base import free_port, unavailable, wait_for_port
from tests.peers.mosquitto import mosquitto

__all__ = ["MotoIot", "mosquitto", "moto_iot"]

REGION = "us-east-1"
KEY_ID, SECRET = "fleet-test", "fleet-test-secret"  # moto without IAM accepts any keys


@dataclass(frozen=True)
class MotoIot:
    """A running moto server without IAM enforcement."""

    url: str

    def client(self, service: str) -> Any:
        """A boto3 client on this server."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )


@pytest.fixture
def moto_iot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoIot]:
    """A fresh moto server on a free loopback port (the indexing configuration is per account)."""
    if find_spec("moto.server") is None or find_spec("boto3") is None:
        unavailable("moto[server] and boto3 are not installed in this environment")
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto-iot") / "moto.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys\nfrom moto.server import main\nmain(sys.argv[1:])",
             "-H", "127.0.0.1", "-p", str(port)],
            cwd=log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "m", "AWS_SECRET_ACCESS_KEY": "m"},
        )  # fmt: skip
    try:
        if not wait_for_port(port):
            unavailable(f"moto_server did not start: {log_path.read_text()[-2000:]}")
        yield MotoIot(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
