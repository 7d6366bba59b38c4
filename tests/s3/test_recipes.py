"""Deployed-recipe discovery on the real fixture recipes laid out as the nucleus stores them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from agent.greengrass.recipes import (
    deployed_components,
    find_deployed_artifacts,
    legacy_recipe_file_name,
    recipe_file_name,
)
from agent.greengrass.root import load_root
from agent.report import Status
from tests.conftest import REPO
from tests.s3.conftest import RECIPES, RootBuilder, Run, resolve_fixture_recipe

TUNNEL = "aws.greengrass.SecureTunneling"


def test_recipe_file_name_is_base64url_of_the_sha256_without_padding() -> None:
    name = "aws.greengrass.Nucleus"
    expected = base64.urlsafe_b64encode(hashlib.sha256(name.encode()).digest()).decode().rstrip("=")
    assert recipe_file_name(name, "2.12.0") == f"{expected}@2.12.0.recipe.yaml"
    assert "=" not in recipe_file_name(name, "2.12.0")
    assert legacy_recipe_file_name(name, "2.12.0") == "aws.greengrass.Nucleus-2.12.0.yaml"


def test_only_the_deployed_version_counts_and_every_manifest_is_read(
    root_builder: RootBuilder,
) -> None:
    current = resolve_fixture_recipe(
        "aws.greengrass.SecureTunneling-recipe-prod.yaml", TUNNEL, "2.0.0", "current-bucket"
    )
    root_builder.deploy(TUNNEL, "2.0.0", current)
    stale = resolve_fixture_recipe(
        "aws.greengrass.SecureTunneling-recipe-prod.yaml", TUNNEL, "2.0.0", "stale-bucket"
    )
    root_builder.store(TUNNEL, "1.0.0", stale.replace('"2.0.0"', '"1.0.0"'))
    found = find_deployed_artifacts(load_root(root_builder.write()))
    uris = [a.uri for a in found.with_scheme("s3")]
    # Four linux manifests, three distinct artifacts (two manifests share the arm64 zip).
    assert sorted(uris) == sorted(
        f"s3://current-bucket/{TUNNEL}/2.0.0/GreengrassV2SecureTunnelingComponent-{arch}.zip"
        for arch in ("x86_64", "arm64", "armv7l")
    )
    assert found.components == ((TUNNEL, "2.0.0"),)
    assert found.problems == ()
    assert all(
        a.version == "2.0.0" and a.recipe.name.endswith("@2.0.0.recipe.yaml")
        for a in found.artifacts
    )


def test_uri_and_uri_spellings_json_and_legacy_names(root_builder: RootBuilder) -> None:
    # "Uri" (HomeAssistant, YAML, new naming) and "URI" (pub/sub template, JSON, legacy naming).
    root_builder.deploy(
        "com.example.Home",
        "1.0.0",
        resolve_fixture_recipe(
            "aws.greengrass.labs.HomeAssistant-recipe.yaml", "com.example.Home", "1.0.0", "home-bkt"
        ),
    )
    root_builder.deploy(
        "com.example.PubSub",
        "0.0.1",
        resolve_fixture_recipe(
            "gg-pubsub-sdk-component-template-recipe.json", "com.example.PubSub", "0.0.1", "ps-bkt"
        ),
        legacy=True,
    )
    found = find_deployed_artifacts(load_root(root_builder.write()))
    by_scheme = {a.uri: a.scheme for a in found.artifacts}
    assert by_scheme == {
        "docker:$DOCKER_IMAGE": "docker",
        "s3://home-bkt/1.0.0/home-assistant.zip": "s3",
        "s3://ps-bkt/src.zip": "s3",
    }
    assert {a.component for a in found.with_scheme("s3")} == {
        "com.example.Home",
        "com.example.PubSub",
    }


def test_a_recipe_found_only_by_scanning_is_still_matched_by_its_contents(
    root_builder: RootBuilder,
) -> None:
    text = resolve_fixture_recipe(
        "aws.greengrass.labs.S3FileDownloader-recipe.yaml", "com.example.Dl", "1.0.0", "dl-bkt"
    )
    root_builder.services["com.example.Dl"] = {"version": "1.0.0"}
    recipes = root_builder.root / "packages" / "recipes"
    recipes.mkdir(parents=True)
    (recipes / "renamed-by-hand.yaml").write_text(text)
    (recipes / "something.metadata.json").write_text("{not json")
    found = find_deployed_artifacts(load_root(root_builder.write()))
    assert [a.uri for a in found.artifacts] == [
        "s3://dl-bkt/com.example.Dl/1.0.0/S3FileDownloader-1.0.0.jar"
    ]


def test_all_fixture_recipes_parse_without_problems(root_builder: RootBuilder) -> None:
    count = 0
    for path in sorted(RECIPES.glob("*")):
        text = path.read_text()
        if "Manifests" not in text:  # bridge/router configuration merges, not recipes
            continue
        name = f"com.example.R{count}"
        root_builder.deploy(name, "1.0.0", resolve_fixture_recipe(path.name, name, "1.0.0", "b"))
        count += 1
    # The MultiPlatform and Nucleus recipes declare their own names: deployed under them.
    multi = (RECIPES / "aws-greengrass-testing-MultiPlatform-1.0.0.yaml").read_text()
    root_builder.deploy("_MultiPlatform_", "1.0.0", multi)
    found = find_deployed_artifacts(load_root(root_builder.write()))
    mismatched = {p.component for p in found.problems if p.reason == "recipe_mismatch"}
    # Recipes with a fixed ComponentName/Version do not match the name they were deployed under.
    assert all(p.reason == "recipe_mismatch" for p in found.problems)
    assert "_MultiPlatform_" not in mismatched
    assert "s3://$bucketName$/$testArtifactsDirectory$/hello_world.py" in {
        a.uri for a in found.artifacts
    }
    assert count >= 6


def test_bad_recipes_give_a_problem_each_never_a_crash(root_builder: RootBuilder) -> None:
    root_builder.deploy("com.example.Broken", "1.0.0", "ComponentName: [unclosed\n")
    root_builder.deploy("com.example.List", "1.0.0", "- just\n- a list\n")
    root_builder.deploy(
        "com.example.BadManifests",
        "1.0.0",
        "ComponentName: com.example.BadManifests\nComponentVersion: '1.0.0'\n"
        "Manifests: {not: a list}\n",
    )
    root_builder.deploy(
        "com.example.NoUri",
        "1.0.0",
        "ComponentName: com.example.NoUri\nComponentVersion: '1.0.0'\n"
        "Manifests:\n  - Artifacts:\n      - Unarchive: ZIP\n",
    )
    root_builder.deploy(
        "com.example.Other",
        "1.0.0",
        "ComponentName: com.example.Elsewhere\nComponentVersion: '9.9.9'\n",
    )
    root_builder.services["com.example.Ghost"] = {"version": "4.0.0"}
    root_builder.services["aws.greengrass.Nucleus"] = {"version": "2.12.0"}  # no recipe: quiet
    found = find_deployed_artifacts(load_root(root_builder.write()))
    reasons = {p.component: p.reason for p in found.problems}
    assert reasons == {
        "com.example.Broken": "recipe_unreadable",
        "com.example.List": "recipe_unreadable",
        "com.example.BadManifests": "bad_artifacts",
        "com.example.NoUri": "bad_artifacts",
        "com.example.Other": "recipe_mismatch",
        "com.example.Ghost": "recipe_missing",
    }
    messages = {p.component: p.message for p in found.problems}
    assert "not valid YAML at line" in messages["com.example.Broken"]
    assert "Manifests[0].Artifacts[0] has no URI" in messages["com.example.NoUri"]
    assert "com.example.Elsewhere@9.9.9" in messages["com.example.Other"]


_AS_NOBODY = r"""
import json, os, sys
from pathlib import Path
from agent.greengrass.recipes import find_deployed_artifacts
from agent.greengrass.root import load_root
# Import what is otherwise imported lazily: this Python's stdlib is readable by root only.
import agent.config.layering, agent.greengrass.platform
os.setgroups([]); os.setgid(65534); os.setuid(65534)
found = find_deployed_artifacts(load_root(Path(sys.argv[1])))
print(json.dumps([[p.reason, p.message] for p in found.problems]))
"""


def test_unreadable_recipe_is_a_problem(tmp_path: Path) -> None:
    # The suite runs as root, who reads every file: the discovery runs as nobody instead.
    base = Path(tempfile.mkdtemp(prefix="gghealth-recipes-"))
    try:
        base.chmod(0o755)
        builder = RootBuilder(base / "gg")
        path = builder.deploy("com.example.Secret", "1.0.0", "ComponentName: x\n")
        path.chmod(0)
        root = builder.write()
        for d in (root, root / "config", root / "packages", root / "packages" / "recipes"):
            d.chmod(0o755)
        (root / "config" / "effectiveConfig.yaml").chmod(0o644)
        proc = subprocess.run(
            [sys.executable, "-c", _AS_NOBODY, str(root)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert proc.returncode == 0, proc.stderr
        ((reason, message),) = json.loads(proc.stdout)
        assert reason == "recipe_unreadable"
        assert "permission denied" in message
    finally:
        shutil.rmtree(base)


def test_recipe_problems_and_invalid_uris_become_results(
    root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    multi = (RECIPES / "aws-greengrass-testing-MultiPlatform-1.0.0.yaml").read_text()
    root_builder.deploy("_MultiPlatform_", "1.0.0", multi)
    root_builder.deploy("com.example.Broken", "2.0.0", "ComponentName: [unclosed\n")
    env = {"HOME": str(tmp_path)}  # no credentials: the S3 part is UNKNOWN once
    results = run_s3(root_builder.write(), env, {"s3": {"credentials": {"source": "default"}}})
    artifacts = {r.target: r for r in results if r.id == "s3.artifact"}
    broken = artifacts["com.example.Broken@2.0.0"]
    assert broken.status is Status.UNKNOWN and broken.remediation
    assert broken.details["reason"] == "recipe_unreadable"
    # Only the readable artifacts wait for credentials: one UNKNOWN for all of them.
    waiting = artifacts["deployed artifacts"]
    assert waiting.status is Status.UNKNOWN and waiting.details["count"] == 1


def test_parsed_recipes_are_reused_while_unchanged(root_builder: RootBuilder) -> None:
    path = root_builder.deploy(
        "com.example.Home",
        "1.0.0",
        resolve_fixture_recipe(
            "aws.greengrass.labs.HomeAssistant-recipe.yaml", "com.example.Home", "1.0.0", "one"
        ),
    )
    root = load_root(root_builder.write())
    cache: dict[str, object] = {}
    first = find_deployed_artifacts(root, cache)
    assert any("s3://one/" in a.uri for a in first.artifacts)
    assert any(k.startswith("recipe:") for k in cache)
    path.write_text(path.read_text().replace("s3://one/", "s3://two/"))
    os.utime(path, ns=(1, 1))  # a different mtime: the cache must notice
    second = find_deployed_artifacts(root, cache)
    assert any("s3://two/" in a.uri for a in second.artifacts)


def test_deployed_components_skip_entries_without_a_version(root_builder: RootBuilder) -> None:
    root_builder.services["com.example.A"] = {"version": "1.2.3"}
    root_builder.services["com.example.NoVersion"] = {"configuration": {}}
    root_builder.services["broken"] = "not a mapping"
    found = deployed_components(load_root(root_builder.write()))
    assert found["com.example.A"] == "1.2.3"
    assert "com.example.NoVersion" not in found and "broken" not in found


def test_a_service_name_cannot_lead_out_of_packages_recipes(root_builder: RootBuilder) -> None:
    """A service named ``../../evil`` must not make the agent read ``evil-1.0.yaml`` beside the
    root and echo what it says (issue 19 item 12)."""
    evil = "../../evil"
    root = root_builder.write()
    (root / "packages" / "recipes").mkdir(parents=True, exist_ok=True)
    outside = root / "packages" / "recipes" / legacy_recipe_file_name(evil, "1.0")
    planted = resolve_fixture_recipe(
        "aws.greengrass.SecureTunneling-recipe-prod.yaml", evil, "1.0", "planted-bucket"
    )
    outside.resolve().write_text(planted)
    assert outside.resolve().is_file() and not outside.resolve().is_relative_to(root / "packages")
    root_builder.services[evil] = {"componentType": "GENERIC", "version": "1.0"}
    found = find_deployed_artifacts(load_root(root_builder.write()))
    assert found.artifacts == ()
    [problem] = found.problems
    assert problem.reason == "recipe_missing" and problem.path is None
    assert "planted-bucket" not in problem.message
