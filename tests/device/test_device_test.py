"""The nucleus's part of scripts/device_test.py, without emulation: which manifest it picks,
where it puts the artifacts, and which recipe variables it refuses to leave in a script.

The emulated run itself is ``make device-test`` (root, Linux >= 6.7, minutes): not part of
``make test``.
"""

from __future__ import annotations

import base64
import hashlib
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scripts import device_userland
from scripts.device_test import (
    DEVICE_PLATFORM,
    Component,
    DeviceTestError,
    lay_out_artifacts,
    resolve,
    select_manifest,
)
from scripts.device_userland import UserlandSpec, enter_command

NAME, VERSION = "gghealth.HealthAgent", "1.2.3"


def _manifest(arch: str, **extra: Any) -> dict[str, Any]:
    return {"Name": f"linux-{arch}", "Platform": {"os": "linux", "architecture": arch}, **extra}


def test_the_first_matching_manifest_is_chosen_as_the_nucleus_does() -> None:
    manifests = [_manifest("amd64"), _manifest("aarch64"), {"Name": "any", "Platform": {}}]
    assert select_manifest(manifests, DEVICE_PLATFORM)["Name"] == "linux-aarch64"  # type: ignore[index]
    wildcard = [{"Name": "w", "Platform": {"os": "linux", "architecture": "*"}}]
    assert select_manifest(wildcard, DEVICE_PLATFORM) is wildcard[0]
    regex = [{"Name": "r", "Platform": {"architecture": "/aarch64|arm64/"}}]
    assert select_manifest(regex, DEVICE_PLATFORM) is regex[0]
    assert select_manifest([_manifest("amd64"), _manifest("arm")], DEVICE_PLATFORM) is None


def test_a_recipe_variable_left_over_fails_but_shell_expansions_do_not() -> None:
    script = 'cd {work:path} && echo "${HOME:-/root}" {iot:thingName}'
    assert resolve(script, {"work:path": "/w", "iot:thingName": "t"}) == (
        'cd /w && echo "${HOME:-/root}" t'
    )
    with pytest.raises(DeviceTestError, match=r"\{configuration:/x\}"):
        resolve("echo {configuration:/x}", {})


def _component(tmp_path: Path, digest: str | None = None) -> Component:
    artifact_dir = tmp_path / "build" / "artifacts" / NAME / VERSION
    artifact_dir.mkdir(parents=True)
    with zipfile.ZipFile(artifact_dir / "gghealth-aarch64.zip", "w") as zf:
        zf.writestr("wheels/a.whl", b"wheel")
    data = (artifact_dir / "gghealth-aarch64.zip").read_bytes()
    artifact = {
        "URI": f"s3://bucket/{NAME}/{VERSION}/gghealth-aarch64.zip",
        "Digest": digest or base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "Unarchive": "ZIP",
        "Permission": {"Read": "OWNER"},
    }
    manifest = _manifest("aarch64", Artifacts=[artifact])
    return Component(NAME, VERSION, {}, manifest, artifact_dir)


def test_artifacts_are_unarchived_where_the_nucleus_puts_them(tmp_path: Path) -> None:
    root = tmp_path / "greengrass" / "v2"
    variables = lay_out_artifacts(_component(tmp_path), root)
    decompressed = Path(variables["artifacts:decompressedPath"])
    assert decompressed == root / "packages" / "artifacts-unarchived" / NAME / VERSION
    wheel = decompressed / "gghealth-aarch64" / "wheels" / "a.whl"
    assert wheel.read_bytes() == b"wheel"
    assert stat.S_IMODE(wheel.stat().st_mode) == 0o400  # Read: OWNER
    assert Path(variables["work:path"]) == root / "work" / NAME
    assert (Path(variables["artifacts:path"]) / "gghealth-aarch64.zip").is_file()


def test_an_artifact_whose_digest_differs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeviceTestError, match="Digest"):
        lay_out_artifacts(_component(tmp_path, digest="AAAA"), tmp_path / "root")


def test_the_userland_is_entered_in_namespaces_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing the guest does outlives it or reaches the host: user, mount and network
    namespaces, binfmt_misc mounted inside them, the cached root behind an overlay."""
    # The host's qemu-user-static registration, whether or not this machine has the package.
    line = ":qemu-aarch64:M::magic:mask:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF"
    (tmp_path / "qemu-aarch64.conf").write_text(line + "\n")
    monkeypatch.setattr(device_userland, "BINFMT_DIR", tmp_path)
    command = enter_command(tmp_path / "lower", ["true"], overlay=tmp_path / "scratch")
    assert command[:5] == ["unshare", "--user", "--map-root-user", "--mount", "--net"]
    script = command[command.index("-c") + 1]
    assert "mount -t overlay" in script and "mount -t binfmt_misc" in script
    assert f"chroot {tmp_path / 'scratch' / 'merged'}" in script
    assert line in script
    assert UserlandSpec().key() != UserlandSpec(packages=("python3",)).key()
