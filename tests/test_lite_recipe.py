"""The packaged recipe on nucleus lite (issue 18): lite manifests in lite's recipe subset
(tests/lite/recipe_rules.py), the same zips and privileges as the nucleus manifests, and the Java
nucleus still picking its own."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scripts import package
from tests.lite import recipe_rules
from tests.nucleus.player import select_manifest

ARCHES = ("amd64", "aarch64")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """build_recipe as `make package` calls it, over small zips of the real layout."""
    out = tmp_path_factory.mktemp("lite-recipe")
    artifacts = {}
    for arch in ARCHES:
        zip_path = out / package.artifact_name(arch)
        with zipfile.ZipFile(zip_path, "w") as zf:
            zf.writestr("requirements.txt", f"pyyaml==6.0.2 --hash=sha256:{'0' * 64}\n")
        artifacts[arch] = (zip_path, f"pyyaml==6.0.2 --hash=sha256:{'1' * 64}")
    return package.build_recipe(
        name="gghealth.HealthAgent",
        version="9.9.9",
        author="tests",
        bucket="bucket",
        install_root="/opt/gghealth",
        pythons=["3.10", "3.11", "3.12", "3.13"],
        artifacts=artifacts,
    )


def test_the_lite_manifests_are_in_lite_s_recipe_subset(recipe: dict[str, Any]) -> None:
    assert recipe_rules.violations(recipe) == []
    assert len(recipe_rules.lite_manifests(recipe)) == 3


def test_the_rules_catch_what_lite_refuses(recipe: dict[str, Any]) -> None:
    """The checker's negative control: the nucleus manifests, given a runtime, break lite's rules
    (capitalised steps, URI, a shell function's braces)."""
    broken = dict(recipe)
    broken["Manifests"] = [
        {**m, "Platform": {**m["Platform"], "runtime": "aws_nucleus_lite"}}
        for m in recipe["Manifests"]
        if "runtime" not in m["Platform"] and "Artifacts" in m
    ]
    found = "\n".join(recipe_rules.violations(broken))
    assert "lifecycle step 'Install'" in found
    assert "an artifact without Uri" in found
    assert "is no lite variable" in found  # fail() { ...; }


@pytest.mark.parametrize("arch", [*ARCHES, "arm"])
def test_lite_and_the_nucleus_each_pick_their_own_manifest(
    recipe: dict[str, Any], arch: str
) -> None:
    lite = recipe_rules.lite_select(recipe, arch)
    assert lite is not None and lite["Platform"]["runtime"] == "aws_nucleus_lite"
    # The Java nucleus: PlatformHelper.testField fails a key its platform lacks (runtime).
    index = select_manifest(recipe["Manifests"], {"os": "linux", "architecture": arch})
    assert index is not None and "runtime" not in index["Platform"]
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


@pytest.mark.xfail(
    strict=True,
    reason="issue 18, open: lite reads a deployed recipe into 8196 bytes (ggl-recipe recipe.c); "
    "the nucleus and lite manifests' scripts exceed it, and the released nucleus manifests "
    "carry ~5 KB of wheel hashes each (12.8 KB before any lite manifest)",
)
def test_the_recipe_fits_lite_s_recipe_buffer(recipe: dict[str, Any]) -> None:
    assert recipe_rules.size(recipe) <= recipe_rules.MAX_RECIPE_BYTES
