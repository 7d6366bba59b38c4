"""``--only system`` through the real command line, for ``check`` and ``run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.system.conftest import DatePeer, Pki, loopback, tls_server, write_root


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **env},
    )  # fmt: skip


def test_check_and_run_only_system(tmp_path: Path, pki: Pki, date_peer: DatePeer) -> None:
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    date_peer.date = format_datetime(datetime.now(timezone.utc) - timedelta(hours=3), usegmt=True)
    env = {"AWS_ENDPOINT_URL_STS": date_peer.url}
    with tls_server(pki.server, client_ca=pki.device_ca) as peer:
        nucleus = loopback(peer.port, peer.port, peer.port)
        nucleus["iotCredEndpoint"] = ""  # the Date comes from the STS stand-in
        root = write_root(tmp_path, pki, nucleus, agent={"system": {"timeoutSeconds": 2}})
        check = _cli("check", "--greengrass-root", str(root), "--only", "system",
                     "--format", "json", env=env)  # fmt: skip
        out = tmp_path / "report.json"
        run = _cli("run", "--greengrass-root", str(root), "--only", "system", "--once",
                   "--transport", "file", "--config", str(_file_config(tmp_path, out)),
                   env=env)  # fmt: skip
    assert check.returncode == 2, check.stderr  # the clock is 3 h ahead: CRITICAL
    assert "Traceback" not in check.stderr
    report = json.loads(check.stdout)
    ids = {c["id"] for c in report["checks"]}
    assert ids == {"system.clock", "system.endpoint"}
    clock = next(c for c in report["checks"] if c["id"] == "system.clock")
    assert clock["status"] == "CRITICAL" and "3 h 0 min ahead of" in clock["message"]
    data = [c for c in report["checks"] if c["details"].get("role") == "iot_data"]
    assert data and data[0]["status"] == "OK"
    assert run.returncode == 0, run.stderr
    published = json.loads(out.read_text())
    assert {c["id"] for c in published["checks"]} == ids


def _file_config(tmp_path: Path, out: Path) -> Path:
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({"file": {"path": str(out)}}))
    return config
