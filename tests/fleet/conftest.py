"""Peers for the fleet tests: Mosquitto (the MQTT transport's shadow updates) and a moto server
for AWS IoT's indexing configuration.

Not the shared ``moto_server`` fixture: with IAM enforcement on, moto rejects the SigV4 signature
of IoT GET requests (GetIndexingConfiguration fails with SignatureDoesNotMatch for boto3 and the
AWS CLI alike), and the indexing script needs no IAM policy evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.moto import MotoServer, running_moto

__all__ = ["moto_iot"]


@pytest.fixture
def moto_iot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A fresh moto server without IAM enforcement (the indexing configuration is per account)."""
    with running_moto(tmp_path_factory, enforce_iam=False) as server:
        yield server
