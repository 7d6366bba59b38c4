"""The minor findings of issue 19's hostile round: each a regression test against the real CLI
or the real file system."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from agent.x509.parse import rfc3339
from agent.x509.walk import MAX_DEPTH
from tests.hostile.conftest import Device, cli_env, run_cli


def _check(dev: Device, work: Path, *extra: str) -> list[dict[str, object]]:
    args = ["check", "--only", "certificate", "--format", "json", "--greengrass-root"]
    proc = run_cli([*args, str(dev.root), *extra], cli_env(work))
    assert proc.returncode in (0, 1, 2, 3), proc.stderr
    checks: list[dict[str, object]] = json.loads(proc.stdout)["checks"]
    return checks


def test_year_two_is_written_with_four_digits() -> None:
    """glibc's %Y wrote year 2 as '2-01-01T00:00:00Z'."""
    year_two = datetime(2, 1, 1, tzinfo=timezone.utc).timestamp()
    assert rfc3339(year_two) == "0002-01-01T00:00:00Z"
    assert rfc3339(0) == "1970-01-01T00:00:00Z"


def test_a_device_node_as_certificate_is_not_a_world_writable_certificate(
    healthy: Device, tmp_path: Path
) -> None:
    node = tmp_path / "dev" / "cert"
    node.parent.mkdir()
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    healthy.set_system(certificateFilePath=str(node))
    checks = _check(healthy, tmp_path)
    about = [c for c in checks if c["target"] == str(node)]
    reasons = {c["details"].get("reason") for c in about}  # type: ignore[union-attr]
    assert "world_writable" not in reasons
    assert any(c["id"] == "certificate.readable" and c["status"] != "OK" for c in about)


def test_a_wrongly_typed_pin_names_the_key_not_a_redaction(healthy: Device, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("pkcs11:\n  userPin: [1, 2]\n")
    args = ["check", "--greengrass-root", str(healthy.root), "--config", str(config)]
    proc = run_cli(args, cli_env(tmp_path))
    assert proc.returncode == 3
    assert "'pkcs11.userPin' - Input should be a valid string" in proc.stderr
    assert "[REDACTED] should" not in proc.stderr


def test_a_walk_cut_short_by_depth_says_so(healthy: Device, tmp_path: Path) -> None:
    store = tmp_path / "store"
    deep = store.joinpath(*[f"d{n}" for n in range(MAX_DEPTH + 9)])
    deep.mkdir(parents=True)
    (deep / "client.pem.crt").write_bytes(healthy.device.pem())
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"certificates": {"extraPaths": [str(store)]}}))
    checks = _check(healthy, tmp_path, "--config", str(config))
    [cut] = [c for c in checks if c["details"].get("reason") == "too_deep"]  # type: ignore[union-attr]
    assert cut["status"] == "UNKNOWN"
    assert f"more than {MAX_DEPTH} levels" in str(cut["message"])


def test_sigterm_while_a_large_configuration_loads_exits_0(healthy: Device, tmp_path: Path) -> None:
    """The nucleus may stop the component while it still loads a large configuration: that is
    a clean stop (exit 0), not death by signal (143)."""
    config = tmp_path / "large.yaml"
    paths = "".join(f"    - /nonexistent/{'x' * 180}/{n}.pem\n" for n in range(150_000))
    config.write_text(f"certificates:\n  extraPaths:\n{paths}")
    args = [sys.executable, "-m", "agent", "--log-level", "DEBUG", "run", "--transport", "stdout",
            "--greengrass-root", str(healthy.root), "--config", str(config)]  # fmt: skip
    agent = subprocess.Popen(
        args, env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        assert agent.stderr is not None
        time.sleep(0.5)  # well inside the load (~2 s): imports, then reading 28 MB of YAML
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=60) == 0, agent.stderr.read()[-2000:]
    finally:
        agent.kill()
