"""Manifest selection as the nucleus does it, on the platforms of real recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.greengrass.platform import device_platform, platform_matches, select_manifest
from agent.greengrass.recipes import artifact_uris

PI4 = {
    "os": "linux",
    "architecture": "aarch64",
    "architecture.detail": "aarch64",
    "runtime": "aws_nucleus_classic",
}
PI3_32 = {
    "os": "linux",
    "architecture": "arm",
    "architecture.detail": "armv7l",
    "runtime": "aws_nucleus_classic",
}
PC = {
    "os": "linux",
    "architecture": "amd64",
    "architecture.detail": "x86_64",
    "runtime": "aws_nucleus_classic",
}
WINDOWS = {"os": "windows", "architecture": "amd64"}


def _recipe(shared_fixtures: Path, name: str) -> dict:
    return yaml.safe_load((shared_fixtures / "recipes" / name).read_text())


@pytest.mark.parametrize(
    ("device", "expected_zip"),
    [(PC, "x86_64"), (PI4, "arm64"), (PI3_32, "armv7l")],
)
def test_secure_tunneling_picks_one_manifest_per_device(
    shared_fixtures: Path, device: dict, expected_zip: str
) -> None:
    recipe = _recipe(shared_fixtures, "aws.greengrass.SecureTunneling-recipe-prod.yaml")
    (uri,) = artifact_uris(recipe, device)
    assert uri.endswith(f"GreengrassV2SecureTunnelingComponent-{expected_zip}.zip")


def test_windows_manifest_artifacts_do_not_count_on_linux(shared_fixtures: Path) -> None:
    recipe = _recipe(shared_fixtures, "aws.greengrass.labs.CertificateRotator-recipe.yaml")
    manifests = recipe["Manifests"]
    assert select_manifest(manifests, PI4) == 0
    assert select_manifest(manifests, WINDOWS) == 1


def test_regex_platform_values(shared_fixtures: Path) -> None:
    recipe = _recipe(shared_fixtures, "aws.greengrass.labs.S3FileDownloader-recipe.yaml")
    assert select_manifest(recipe["Manifests"], PI4) == 0
    assert select_manifest(recipe["Manifests"], {"os": "darwin", "architecture": "amd64"}) is None
    with pytest.raises(ValueError, match="no manifest applies"):
        list(artifact_uris(recipe, {"os": "darwin", "architecture": "amd64"}))


def test_manifest_without_platform_matches_everything(shared_fixtures: Path) -> None:
    recipe = _recipe(shared_fixtures, "aws-greengrass-testing-MultiPlatform-1.0.0.yaml")
    assert select_manifest(recipe["Manifests"], {"os": "plan9", "architecture": "mips"}) is not None


@pytest.mark.parametrize(
    ("spec", "matches"),
    [
        ({"os": "*"}, True),
        ({"os": "all"}, True),
        ({"os": "LINUX"}, True),
        ({"os": "/lin.*/"}, True),
        ({"os": "/[/"}, False),  # a broken regex never matches, never raises
        ({"architecture": "arm"}, False),
        ({"unknownKey": "x"}, False),
        (None, True),
        ("linux", False),
    ],
)
def test_platform_value_rules(spec: object, matches: bool) -> None:
    assert platform_matches(spec, PI4) is matches


def test_platform_override_of_the_nucleus_wins() -> None:
    found = device_platform({"platformOverride": {"architecture": "riscv64", "custom": "yes"}})
    assert found["architecture"] == "riscv64" and found["custom"] == "yes"
    assert device_platform(lite=True)["runtime"] == "aws_nucleus_lite"
