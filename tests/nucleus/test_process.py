"""The stand-in run as a process: JSON-lines records, SIGTERM exit, configuration errors."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import awsiot.greengrasscoreipc
import pytest
from awsiot.greengrasscoreipc import model
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from tests.nucleus.process import REPO, StandInProcess
from tests.nucleus.state import DEFAULT_COMPONENT

pytestmark = pytest.mark.peer


def test_process_records_each_publish_and_state_then_exits_on_sigterm(nucleus_dir: Path) -> None:
    token = secrets.token_urlsafe(24)
    report = b'{"status": "OK", "bytes": "\x00\xff"}'
    stand_in = StandInProcess(
        nucleus_dir / "p.sock",
        token,
        nucleus_dir,
        configuration={DEFAULT_COMPONENT: {"intervalSeconds": 60}},
        deny_topics=("denied/#",),
    )
    with stand_in:
        client = GreengrassCoreIPCClientV2(
            client=awsiot.greengrasscoreipc.connect(
                ipc_socket=str(stand_in.socket_path), authtoken=token, timeout=5.0
            )
        )
        try:
            assert client.get_configuration().value == {"intervalSeconds": 60}
            client.publish_to_iot_core(
                topic_name="dt/gghealth/core/health", qos="1", payload=report
            )
            client.update_state(state="RUNNING")
            with pytest.raises(model.UnauthorizedError):
                client.publish_to_iot_core(topic_name="denied/x", qos="0", payload=b"no")
        finally:
            client.close()
        # Each record is written before the reply leaves, so no waiting is needed here.
        records = stand_in.records()
    assert stand_in.process is not None and stand_in.process.returncode == 0
    assert not stand_in.socket_path.exists()
    assert records == [
        {"event": "connect", "accepted": True},
        {"event": "publish", "topic": "dt/gghealth/core/health", "qos": "1", "payload": report},
        {"event": "state", "state": "RUNNING"},
        {"event": "denied", "topic": "denied/x", "qos": "0", "payload": b"no"},
    ]
    assert token not in stand_in.record_path.read_text()


def test_process_reports_an_unreadable_configuration(nucleus_dir: Path) -> None:
    bad = nucleus_dir / "config.json"
    bad.write_text("{not json", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tests.nucleus.standin", "--socket", str(nucleus_dir / "s.sock"),
         "--svcuid", "token", "--config", str(bad)],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "cannot load the configuration" in done.stderr
    assert not (nucleus_dir / "s.sock").exists()
