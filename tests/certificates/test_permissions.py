"""certificate.permissions: the mode matrix of key, certificates and their directories."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agent.greengrass.root import GreengrassRoot
from agent.report import Status
from tests.certificates.conftest import Run, one
from tests.pki import Issued, make_context, make_greengrass_root

ID = "certificate.permissions"


def _key(root: GreengrassRoot) -> Path:
    return Path(root.path("privateKeyPath") or "")


def _cert(root: GreengrassRoot) -> Path:
    return Path(root.path("certificateFilePath") or "")


def test_installer_modes_are_ok(gg_root: GreengrassRoot, run: Run) -> None:
    results = run(make_context(gg_root), ID)
    assert {r.status for r in results} == {Status.OK}
    assert one(results, _key(gg_root)).details["mode"] == "0600"
    directory = one(results, gg_root.root)
    assert sorted(directory.details["files"]) == sorted(
        str(p) for p in (_key(gg_root), _cert(gg_root), gg_root.path("rootCaPath"))
    )


@pytest.mark.parametrize(
    ("mode", "status", "reason"),
    [
        (0o600, Status.OK, None),
        (0o400, Status.OK, None),
        (0o640, Status.WARNING, "key_group_readable"),
        (0o660, Status.CRITICAL, "key_exposed"),
        (0o620, Status.CRITICAL, "key_exposed"),
        (0o604, Status.CRITICAL, "key_exposed"),
        (0o644, Status.CRITICAL, "key_exposed"),
        (0o602, Status.CRITICAL, "key_exposed"),
        (0o666, Status.CRITICAL, "key_exposed"),
    ],
)
def test_private_key_mode_matrix(
    gg_root: GreengrassRoot, run: Run, mode: int, status: Status, reason: str | None
) -> None:
    os.chmod(_key(gg_root), mode)
    r = one(run(make_context(gg_root), ID), _key(gg_root))
    assert r.status is status
    assert r.details["mode"] == f"{mode:04o}"
    assert r.details.get("reason") == reason
    if status is not Status.OK:
        assert f"chmod 600 {_key(gg_root)}" in (r.remediation or "")


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        (0o644, Status.OK),
        (0o664, Status.OK),
        (0o444, Status.OK),
        (0o646, Status.CRITICAL),
        (0o666, Status.CRITICAL),
    ],
)
def test_certificate_mode_matrix(
    gg_root: GreengrassRoot, run: Run, mode: int, status: Status
) -> None:
    os.chmod(_cert(gg_root), mode)
    r = one(run(make_context(gg_root), ID), _cert(gg_root))
    assert r.status is status
    if status is Status.CRITICAL:
        assert r.details["reason"] == "world_writable"
        assert r.remediation == f"chmod o-w {_cert(gg_root)}"


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o757])
def test_world_writable_directory_is_critical(gg_root: GreengrassRoot, run: Run, mode: int) -> None:
    os.chmod(gg_root.root, mode)
    r = one(run(make_context(gg_root), ID), gg_root.root)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "world_writable_directory")
    assert r.remediation == f"chmod o-w {gg_root.root}"
    assert str(_key(gg_root)) in r.message


def test_group_writable_directory_is_ok(gg_root: GreengrassRoot, run: Run) -> None:
    os.chmod(gg_root.root, 0o775)
    assert one(run(make_context(gg_root), ID), gg_root.root).status is Status.OK


def test_symlinked_key_checks_target_and_the_link_directory(
    tmp_path: Path, device: Issued, run: Run
) -> None:
    root = make_greengrass_root(tmp_path, device=device)
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    os.chmod(vault, 0o700)
    key = _key(root)
    shutil.move(key, vault / "privKey.key")
    key.symlink_to(vault / "privKey.key")
    os.chmod(vault / "privKey.key", 0o644)
    results = run(make_context(root), ID)
    # the mode that counts is the target's (a symlink's own mode is always 0777)
    assert one(results, key).details["reason"] == "key_exposed"
    assert one(results, vault).status is Status.OK
    assert one(results, root.root).status is Status.OK

    os.chmod(vault / "privKey.key", 0o600)
    os.chmod(root.root, 0o777)  # anyone could repoint the symlink
    results = run(make_context(root), ID)
    assert one(results, key).status is Status.OK
    link_dir = one(results, root.root)
    assert (link_dir.status, link_dir.details["reason"]) == (
        Status.CRITICAL,
        "world_writable_directory",
    )


def test_missing_files_are_left_to_readable(gg_root: GreengrassRoot, run: Run) -> None:
    _key(gg_root).unlink()
    results = run(make_context(gg_root), ID)
    assert not [r for r in results if r.target == str(_key(gg_root))]
    assert one(results, _cert(gg_root)).status is Status.OK


def test_ca_bundle_is_covered(
    tmp_path: Path, gg_root: GreengrassRoot, device_ca: Issued, run: Run
) -> None:
    byo = tmp_path / "byo"
    byo.mkdir()
    os.chmod(byo, 0o777)
    bundle = byo / "ca.pem"
    bundle.write_bytes(device_ca.pem())
    os.chmod(bundle, 0o666)
    results = run(make_context(gg_root, {"certificates": {"caBundle": str(bundle)}}), ID)
    assert one(results, bundle).status is Status.CRITICAL
    assert one(results, byo).status is Status.CRITICAL
