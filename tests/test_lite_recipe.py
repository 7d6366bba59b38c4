"""The nucleus lite recipe (`make package` with ``--runtime lite``, issue 18): lite manifests in
lite's recipe subset (tests/lite/recipe_rules.py) and within lite's 8,196-byte recipe buffer, the
same zips and privileges as the nucleus manifests of the default recipe."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import package
from tests.lite import recipe_rules
from tests.nucleus.player import select_manifest

ARCHES = ("amd64", "aarch64")


@pytest.fixture(scope="module")
def recipe(nucleus_recipe: dict[str, Any], zips: dict[str, tuple[Path, str]]) -> dict[str, Any]:
    """The lite recipe, over the same zips."""
    return _build(zips, "lite")


@pytest.fixture(scope="module")
def nucleus_recipe(zips: dict[str, tuple[Path, str]]) -> dict[str, Any]:
    """The default (Java nucleus) recipe."""
    return _build(zips, "nucleus")


def _build(zips: dict[str, tuple[Path, str]], runtime: str) -> dict[str, Any]:
    return package.build_recipe(
        name="gghealth.HealthAgent",
        version="9.9.9",
        author="tests",
        bucket="bucket",
        install_root="/opt/gghealth",
        pythons=["3.10", "3.11", "3.12", "3.13"],
        artifacts=zips,
        runtime=runtime,
    )


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Small zips of the real layout and the requirements text build_artifact would give."""
    out = tmp_path_factory.mktemp("lite-recipe")
    artifacts = {}
    for arch in ARCHES:
        zip_path = out / package.artifact_name(arch)
        with zipfile.ZipFile(zip_path, "w") as zf:
            zf.writestr("requirements.txt", f"pyyaml==6.0.2 --hash=sha256:{'0' * 64}\n")
        # As many hashes as a release carries per architecture (~30 wheels for 4 CPythons).
        requirements = "\n".join(f"pkg{i}==1.0 --hash=sha256:{i:064x}" for i in range(30))
        artifacts[arch] = (zip_path, requirements)
    return artifacts


def test_the_lite_manifests_are_in_lite_s_recipe_subset(recipe: dict[str, Any]) -> None:
    assert recipe_rules.violations(recipe) == []
    assert len(recipe_rules.lite_manifests(recipe)) == len(recipe["Manifests"]) == 3


def test_the_default_recipe_is_the_nucleus_one(nucleus_recipe: dict[str, Any]) -> None:
    """Unchanged for the Java nucleus: no lite manifest (with them it would pass the 16 kB AWS
    accepts for a recipe, tests/test_gdk.py publishes it)."""
    assert recipe_rules.lite_manifests(nucleus_recipe) == []


def test_the_rules_catch_what_lite_refuses(nucleus_recipe: dict[str, Any]) -> None:
    """The checker's negative control: the nucleus manifests, given a runtime, break lite's rules
    (capitalised steps, URI, a shell function's braces)."""
    broken = dict(nucleus_recipe)
    broken["Manifests"] = [
        {**m, "Platform": {**m["Platform"], "runtime": "aws_nucleus_lite"}}
        for m in nucleus_recipe["Manifests"]
        if "runtime" not in m["Platform"] and "Artifacts" in m
    ]
    found = "\n".join(recipe_rules.violations(broken))
    assert "lifecycle step 'Install'" in found
    assert "an artifact without Uri" in found
    assert "is no lite variable" in found  # fail() { ...; }


@pytest.mark.parametrize("arch", [*ARCHES, "arm"])
def test_lite_and_the_nucleus_each_pick_their_own_manifest(
    recipe: dict[str, Any], nucleus_recipe: dict[str, Any], arch: str
) -> None:
    lite = recipe_rules.lite_select(recipe, arch)
    assert lite is not None and lite["Platform"]["runtime"] == "aws_nucleus_lite"
    # Lite skips manifests without runtime; the Java nucleus (PlatformHelper.testField) those
    # naming a key its platform lacks: each runtime refuses the other's recipe.
    assert recipe_rules.lite_select(nucleus_recipe, arch) is None
    java = {"os": "linux", "architecture": arch}
    assert select_manifest(recipe["Manifests"], java) is None
    index = select_manifest(nucleus_recipe["Manifests"], java)
    assert index is not None
    assert lite["Name"] == f"lite-{index['Name']}"
    if arch == "arm":
        assert "not supported" in lite["Lifecycle"]["install"]["Script"]
        return
    # Same zip, same privileges.
    (nucleus_artifact,) = index["Artifacts"]
    (lite_artifact,) = lite["Artifacts"]
    assert lite_artifact["Uri"] == nucleus_artifact["URI"]
    assert lite_artifact["Digest"] == nucleus_artifact["Digest"]
    assert lite["Lifecycle"]["install"]["RequiresPrivilege"] is True
    assert lite["Lifecycle"]["run"] == index["Lifecycle"]["Run"]


def test_lite_install_pins_the_zip_it_verifies(recipe: dict[str, Any], tmp_path: Path) -> None:
    """The pinned SHA-256 is the zip's (the Digest lite checked at download), and sha256sum, as
    the script runs it, refuses another zip."""
    lite = recipe_rules.lite_select(recipe, "amd64")
    assert lite is not None
    script = lite["Lifecycle"]["install"]["Script"]
    line = next(x for x in script.splitlines() if "sha256sum" in x)
    pinned = line.split('"')[1].split()[0]
    (artifact,) = lite["Artifacts"]
    assert pinned == base64.b64decode(artifact["Digest"]).hex()
    zip_path = tmp_path / "a.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("requirements.txt", "x\n")
    assert pinned != hashlib.sha256(zip_path.read_bytes()).hexdigest()
    done = subprocess.run(
        ["sha256sum", "-c", "--status", "-"],
        input=f"{pinned}  {zip_path}\n",
        text=True,
        check=False,
    )
    assert done.returncode == 1  # another zip is refused


def test_the_recipe_fits_lite_s_recipe_buffer(
    recipe: dict[str, Any], nucleus_recipe: dict[str, Any]
) -> None:
    """As JSON (a cloud deployment) and as `make package` writes it (a local one)."""
    assert recipe_rules.size(recipe) <= recipe_rules.MAX_RECIPE_BYTES
    text = yaml.dump(recipe, Dumper=package._NoAliasDumper, sort_keys=False, width=100)
    assert len(text.encode()) <= recipe_rules.MAX_RECIPE_BYTES
    # The negative control: lite could not read the nucleus recipe.
    assert recipe_rules.size(nucleus_recipe) > recipe_rules.MAX_RECIPE_BYTES
