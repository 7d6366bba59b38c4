"""The agent as ggc_user: root-only files are UNKNOWN ("needs RequiresPrivilege"), not CRITICAL.

The suite runs as root, so a child Python process drops to uid/gid 65534 (nobody) before it
runs the real checks against real root-only files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.greengrass.root import GreengrassRoot
from tests.conftest import REPO
from tests.pki import Issued, make_greengrass_root, write

_CHILD = r"""
import json, os, sys
from pathlib import Path
from agent.checks.base import CheckContext
from agent.checks.certificates import CHECKS
from agent.config import build_config
from agent.greengrass.root import GreengrassRoot

spec = json.loads(sys.stdin.read())
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
root = GreengrassRoot(Path(spec["root"]), Path(spec["config_path"]), False, spec["raw"])
kwargs = {} if spec["privileged"] is None else {"privileged": spec["privileged"]}
ctx = CheckContext(config=build_config(spec["config"]), greengrass=root, env={}, **kwargs)
results = [r.to_dict() for chk in CHECKS for r in chk(ctx)]
print(json.dumps({"euid": os.geteuid(), "privileged": ctx.privileged, "results": results}))
"""


@pytest.fixture
def open_base() -> Iterator[Path]:
    """A directory others may traverse (pytest's tmp_path base is root-only)."""
    base = Path(tempfile.mkdtemp(prefix="gghealth-unpriv-"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base)


def _run_as_nobody(
    root: GreengrassRoot, config: dict[str, Any], privileged: bool | None = None
) -> dict[str, Any]:
    spec = {
        "root": str(root.root),
        "config_path": str(root.config_path),
        "raw": root.raw,
        "config": config,
        "privileged": privileged,
    }
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def _one(results: list[dict[str, Any]], check_id: str, target: str | Path) -> dict[str, Any]:
    found = [r for r in results if r["id"] == check_id and r["target"] == str(target)]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def layout(open_base: Path, device: Issued) -> tuple[GreengrassRoot, Path, Path]:
    root = make_greengrass_root(open_base, device=device)  # privKey.key is root-owned, mode 600
    hidden_dir = open_base / "root-only"
    hidden_dir.mkdir(mode=0o700)
    os.chmod(hidden_dir, 0o700)
    hidden_cert = write(hidden_dir / "client.pem", device.pem())
    locked_store = open_base / "store"
    write(locked_store / "inner" / "a.pem", device.pem())
    os.chmod(locked_store / "inner", 0o700)
    return root, hidden_cert, locked_store


def test_root_only_files_are_unknown_when_unprivileged(
    layout: tuple[GreengrassRoot, Path, Path],
) -> None:
    root, hidden_cert, locked_store = layout
    out = _run_as_nobody(
        root, {"certificates": {"extraPaths": [str(hidden_cert), str(locked_store)]}}
    )
    if os.geteuid() == 0:
        assert out["euid"] == 65534
    assert out["privileged"] is False
    results = out["results"]

    key = _one(results, "certificate.readable", root.path("privateKeyPath") or "")
    assert (key["status"], key["details"]["reason"]) == ("UNKNOWN", "permission_denied")
    assert "root-only" in key["message"]
    assert "RequiresPrivilege" in key["remediation"]

    hidden = _one(results, "certificate.readable", hidden_cert)
    assert (hidden["status"], hidden["details"]["reason"]) == ("UNKNOWN", "permission_denied")
    inner = _one(results, "certificate.readable", locked_store / "inner")
    assert (inner["status"], inner["details"]["reason"]) == ("UNKNOWN", "permission_denied")

    # what the unprivileged agent can read it still audits
    cert = _one(results, "certificate.readable", root.path("certificateFilePath") or "")
    assert cert["status"] == "OK"
    match = _one(results, "certificate.key_match", root.path("certificateFilePath") or "")
    assert (match["status"], match["details"]["reason"]) == ("UNKNOWN", "key_unreadable")
    perms = _one(results, "certificate.permissions", root.path("privateKeyPath") or "")
    assert perms["status"] == "OK"  # stat needs no read permission
    assert not [r for r in results if r["status"] == "CRITICAL"], [
        r for r in results if r["status"] == "CRITICAL"
    ]


def test_permission_denied_while_privileged_is_critical(
    layout: tuple[GreengrassRoot, Path, Path],
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges")
    root, _, _ = layout
    # the context claims privilege (e.g. a root-squashed NFS mount still says no): a real defect
    out = _run_as_nobody(root, {}, privileged=True)
    key = _one(out["results"], "certificate.readable", root.path("privateKeyPath") or "")
    assert (key["status"], key["details"]["reason"]) == ("CRITICAL", "permission_denied")
    assert "RequiresPrivilege" not in key["remediation"]


def test_stat_denied_permissions_are_unknown(open_base: Path, device: Issued) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges")
    vault = open_base / "vault"
    vault.mkdir(mode=0o700)
    os.chmod(vault, 0o700)
    key = write(vault / "privKey.key", device.key_pem("traditional"), 0o600)
    root = make_greengrass_root(
        open_base, device=device, system_overrides={"privateKeyPath": str(key)}
    )
    out = _run_as_nobody(root, {})
    perms = _one(out["results"], "certificate.permissions", key)
    assert (perms["status"], perms["details"]["reason"]) == ("UNKNOWN", "permission_denied")
    readable = _one(out["results"], "certificate.readable", key)
    assert readable["status"] == "UNKNOWN"


_CLI_CHILD = r"""
import os, sys
# Everything the commands import lazily, imported while still root: CI's checkout is a
# mode-700 temporary directory that nobody may read (an installed agent is root-owned 0755).
import agent.cli, agent.runner, agent.service, agent.config.files, agent.checks.registry
import agent.checks.certificates, agent.checks.subscriptions, agent.checks.agent_health
import agent.render, agent.report, agent.config.models, agent.log
import agent.transports.stdout, yaml, pydantic
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
sys.exit(agent.cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", [["check"], ["run", "--once", "--transport", "stdout"]])
def test_a_root_only_config_directory_gets_advice_not_a_crash(
    open_base: Path, device: Issued, command: list[str]
) -> None:
    """As the README's unprivileged variant warns: config/ is mode 700, and the documented
    answer is advice to run privileged or to pass a readable copy (issue 19 item 6: it was
    'internal error: PermissionError ... please report this')."""
    root = make_greengrass_root(open_base, device=device)
    os.chmod(root.config_path.parent, 0o700)
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_CHILD, *command, "--greengrass-root", str(root.root)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert "internal error" not in proc.stderr
    assert "run the agent privileged (RequiresPrivilege: true)" in proc.stderr
    assert "readable copy" in proc.stderr
