"""Nucleus lite's recipe subset, as rules a recipe can be checked against, and lite's manifest
selection. Each rule names the lite source or document that sets it (aws-greengrass-lite 2.6.0).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

LITE_RUNTIMES = ("aws_nucleus_lite", "*")
"""docs/RECIPE_SUPPORT_CHANGES.md; modules/ggl-recipe/src/recipe.c manifest_selection."""
LITE_ARCHITECTURES = {"x86_64": "amd64", "i386": "x86", "aarch64": "aarch64", "arm": "arm"}
"""recipe.c get_current_architecture: the compiler's target -> the name a manifest must spell."""
STEPS = {"install", "run", "startup", "bootstrap"}
"""modules/recipe2unit/src/unit_file_generator.c manifest_builder (case-sensitive lookups)."""
UNSUPPORTED_STEPS = {"shutdown", "recover"}
"""unit_file_generator.c compatibility_check; RECIPE_SUPPORT_CHANGES.md."""
STEP_KEYS = {"Script", "RequiresPrivilege", "Setenv", "Timeout"}
"""recipe.c process_script_section_as_map (no Skipif: RECIPE_SUPPORT_CHANGES.md)."""
ARTIFACT_KEYS = {"Uri", "Unarchive", "Digest", "Algorithm", "Permission"}
"""modules/ggdeploymentd/src/deployment_handler.c: gg_map_validate of an artifact, Uri required."""
VARIABLE = re.compile(
    r"\A(artifacts:path|artifacts:decompressedPath|kernel:rootPath|iot:thingName|work:path"
    r"|configuration:/.*)\Z"
)
"""RECIPE_SUPPORT_CHANGES.md's list; modules/ggl-config-interpolation/src/interpolation.c
ggl_substitute_escape fails on anything else."""
MAX_RECIPE_BYTES = 8196
"""recipe.c ggl_recipe_get_from_file reads a deployed recipe into ``file_mem[8196]``;
gg_file_read_path_at answers GG_ERR_NOMEM for a larger file."""


def lite_manifests(recipe: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        m
        for m in recipe.get("Manifests") or []
        if isinstance(m, Mapping) and (m.get("Platform") or {}).get("runtime") in LITE_RUNTIMES
    ]


def _braces(script: str) -> Iterator[str]:
    """What recipe-runner takes for a variable: every ``{`` up to the next ``}``
    (modules/recipe-runner/src/runner.c handle_escape; there is no escape)."""
    i = 0
    while (start := script.find("{", i)) != -1:
        end = script.find("}", start)
        yield script[start + 1 :] if end == -1 else script[start + 1 : end]
        if end == -1:
            return
        i = end + 1


def violations(recipe: Mapping[str, Any]) -> list[str]:
    """Every way ``recipe`` leaves lite's subset, the size limit aside (see :func:`size`)."""
    found: list[str] = []
    if recipe.get("ComponentType", "aws.greengrass.generic") != "aws.greengrass.generic":
        found.append("only aws.greengrass.generic components (RECIPE_SUPPORT_CHANGES.md)")
    for index, manifest in enumerate(recipe.get("Manifests") or []):
        if not isinstance(manifest, Mapping) or not isinstance(manifest.get("Platform"), Mapping):
            # recipe.c: "Platform not provided" fails the selection of the whole recipe
            found.append(f"Manifests[{index}] has no Platform")
    for manifest in lite_manifests(recipe):
        name = manifest.get("Name", "?")
        for key, value in manifest["Platform"].items():
            if isinstance(value, str) and len(value) > 1 and value.startswith("/"):
                found.append(f"{name}: Platform.{key} is a regex (RECIPE_SUPPORT_CHANGES.md)")
        lifecycle = manifest.get("Lifecycle")
        if not isinstance(lifecycle, Mapping) or not lifecycle:
            found.append(f"{name}: no Lifecycle of its own")
            continue
        for step, definition in lifecycle.items():
            if step == "Setenv":
                continue
            if step in UNSUPPORTED_STEPS or step.lower() in UNSUPPORTED_STEPS:
                found.append(f"{name}: {step} is not supported by lite")
            elif step not in STEPS:
                found.append(f"{name}: lifecycle step {step!r} (lite looks up {sorted(STEPS)})")
            body = definition if isinstance(definition, Mapping) else {"Script": definition}
            for key in body:
                if key not in STEP_KEYS:
                    found.append(f"{name}.{step}: {key!r} (lite reads {sorted(STEP_KEYS)})")
            script = body.get("Script")
            if isinstance(script, str):
                for variable in _braces(script):
                    if not VARIABLE.match(variable):
                        found.append(f"{name}.{step}: {{{variable[:40]}}} is no lite variable")
        for artifact in manifest.get("Artifacts") or []:
            if "Uri" not in artifact:
                found.append(f"{name}: an artifact without Uri")
            found.extend(f"{name}: artifact key {k!r}" for k in artifact if k not in ARTIFACT_KEYS)
    return found


def size(recipe: Mapping[str, Any]) -> int:
    """The bytes of the recipe as ggdeploymentd stores a cloud recipe: JSON."""
    return len(json.dumps(recipe, separators=(",", ":")).encode())


def lite_select(recipe: Mapping[str, Any], architecture: str) -> Mapping[str, Any] | None:
    """The manifest lite picks on a Linux device (recipe.c select_linux_manifest): the first
    with runtime aws_nucleus_lite or '*', os linux/'*'/all, architecture absent, '*' or equal,
    and a non-empty Lifecycle."""
    for manifest in recipe.get("Manifests") or []:
        platform = manifest["Platform"]
        if platform.get("runtime") not in LITE_RUNTIMES:
            continue
        if platform.get("os") not in ("linux", "*", "all"):
            continue
        if platform.get("architecture", "") not in ("", "*", architecture):
            continue
        if manifest.get("Lifecycle"):
            return manifest  # type: ignore[no-any-return]
    return None
