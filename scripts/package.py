#!/usr/bin/env python3
"""Build a GDK-style ``greengrass-build/`` for gghealth.HealthAgent.

    greengrass-build/recipes/<name>-<version>.yaml      one manifest per architecture
    greengrass-build/artifacts/<name>/<version>/gghealth-<arch>.zip   for amd64 and aarch64:
        gg_health_agent-<version>-py3-none-any.whl
        wheels/*.whl      requirements/runtime.lock's wheels for CPython 3.10-3.13 on <arch>

Each manifest names its own zip (with its ``Digest``) and carries the SHA-256 of every wheel in
it, so the privileged Install on the device installs exactly these files (``--require-hashes``)
and never compiles.

``--runtime lite`` builds the recipe for nucleus lite devices instead (issue 18): one lite
manifest per nucleus manifest, and only those. Not both in one recipe: the nucleus manifests
carry every wheel's hash (12.8 KB), and with the lite ones the recipe passes the 16 kB AWS
accepts, while lite itself reads a deployed recipe into 8,196 bytes (aws-greengrass-lite
modules/ggl-recipe/src/recipe.c ``file_mem``). The lite manifests:
(``Platform.runtime: aws_nucleus_lite``; the Java nucleus never selects a manifest whose
platform names a key its own platform lacks, PlatformHelper.testField in
aws-greengrass-component-common, and its platform has no ``runtime``; lite skips every manifest
without one, aws-greengrass-lite modules/ggl-recipe/src/recipe.c manifest_selection); same zip,
same privileges, written in lite's recipe subset: lowercase ``install``/``run``, ``Uri``, and no
``{`` in a script but a variable lite knows (recipe-runner opens a variable at every ``{``).
Its Install pins the zip's SHA-256 and takes the wheel hashes from ``requirements.txt`` inside
the zip (only the lite build puts it there), so that the lite recipe stays small.

``gdk component build`` runs this through gdk-config.json (``make gdk-build``, with
``--gdk-config``): the component name, version and author come from that file, and the recipe is
written as ``greengrass-build/recipes/recipe.yaml``, the name GDK gives the built recipe and the
file ``gdk component publish`` reads.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent import __version__  # noqa: E402
from agent.config.models import DEFAULT_COMPONENT_NAME  # noqa: E402
from scripts.wheelhouse import (  # noqa: E402
    MACHINES,
    PYTHONS,
    Target,
    download,
    missing_wheels,
    pip,
    prune,
    requirements_text,
    sha256,
)

DEFAULT_AUTHOR = "gg-health-agent maintainers"
INSTALL_ROOT = "/opt/gghealth"
"""Where Install builds the environment Run executes: root-owned, outside the nucleus's work
and artifact directories (which belong to the component's run-as user); one directory per
component version."""
GDK_RECIPE = "recipe.yaml"
"""The built recipe's name under GDK: that of the project's recipe file (GDK finds ``recipe.yaml``
in the project root, here a link to recipes/recipe.yaml). ``gdk component publish`` reads
``greengrass-build/recipes/recipe.yaml`` and writes what it publishes beside it as
``<name>-<version>.yaml``."""
TEMPLATE_ARCH = "{ARCH}"
LITE_RUNTIME = "aws_nucleus_lite"
LITE_INSTALL = REPO / "recipes" / "lite-install.sh"
"""The manifest of recipes/recipe.yaml whose architecture is this is repeated per architecture."""


def gdk_component(config_path: Path) -> tuple[str, str, str]:
    """Name, version and author of the component of a gdk-config.json (GDK takes its first)."""
    config = json.loads(config_path.read_text())
    name, component = next(iter(config["component"].items()))
    version = component.get("version", "")
    if version == "NEXT_PATCH" or not version:
        raise SystemExit(
            f"{config_path}: give the component an explicit version, not {version or 'none'!r}: "
            "the version is built into the recipe's Install and Run steps (the environment "
            f"under {INSTALL_ROOT}/<version>) and the artifact path, so it must be known at build "
            "time; gdk component publish publishes exactly this version"
        )
    return name, version, component.get("author") or DEFAULT_AUTHOR


def artifact_name(arch: str) -> str:
    return f"gghealth-{arch}.zip"


class _NoAliasDumper(yaml.SafeDumper):
    """The template shares one Lifecycle between manifests; the output spells each out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _literal_multiline(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # Lifecycle scripts stay readable as YAML block scalars.
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    )


_NoAliasDumper.add_representer(str, _literal_multiline)


def fill(node: Any, values: dict[str, str]) -> Any:
    """Replace ``{PLACEHOLDER}`` strings in keys and values, recursively."""
    if isinstance(node, dict):
        return {fill(k, values): fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [fill(v, values) for v in node]
    if isinstance(node, str):
        for key, value in values.items():
            node = node.replace("{" + key + "}", value)
    return node


def _base64_sha256(path: Path) -> str:
    """The artifact ``Digest`` as the nucleus checks it: Base64 of the SHA-256 of the file."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def build_recipe(
    *,
    name: str,
    version: str,
    author: str,
    bucket: str,
    install_root: str,
    pythons: list[str],
    artifacts: dict[str, tuple[Path, str]],
    runtime: str = "nucleus",
) -> dict[str, Any]:
    """The recipe template filled in: one manifest per architecture in ``artifacts``
    (arch -> (zip, requirements text)), then the template's fixed manifests; for
    ``runtime="lite"``, the nucleus lite twins of those instead."""
    template = yaml.safe_load((REPO / "recipes" / "recipe.yaml").read_text())
    common = {
        "COMPONENT_NAME": name,
        "COMPONENT_VERSION": version,
        "COMPONENT_AUTHOR": author,
        "BUCKET": bucket,
        "INSTALL_ROOT": install_root,
        "PYTHON_CASES": "|".join(pythons),
        "PYTHON_RANGE": f"{pythons[0]} to {pythons[-1]}" if len(pythons) > 1 else pythons[0],
    }
    manifests = []
    for manifest in template["Manifests"]:
        if manifest["Platform"]["architecture"] != TEMPLATE_ARCH:
            manifests.append(fill(manifest, common))
            continue
        for arch, (zip_path, requirements) in artifacts.items():
            values = {
                **common,
                "ARCH": arch,
                "ARTIFACT": zip_path.name,
                "ARTIFACT_DIR": zip_path.name.removesuffix(".zip"),
                "ARTIFACT_DIGEST": _base64_sha256(zip_path),
                "REQUIREMENTS": requirements,
            }
            manifests.append(fill(copy.deepcopy(manifest), values))
    if runtime == "lite":
        lite = LITE_INSTALL.read_text().rstrip("\n")
        manifests = [
            lite_manifest(
                m,
                lite,
                artifacts[m["Platform"]["architecture"]][0]
                if m["Platform"]["architecture"] in artifacts
                else None,
                common,
            )
            for m in manifests
        ]
    recipe = fill({k: v for k, v in template.items() if k != "Manifests"}, common)
    recipe["Manifests"] = manifests
    return recipe  # type: ignore[no-any-return]


def lite_manifest(
    nucleus: dict[str, Any], install: str, zip_path: Path | None, common: dict[str, str]
) -> dict[str, Any]:
    """The nucleus lite twin of a filled nucleus manifest: same platform plus ``runtime``, same
    artifact and privileges, in lite's recipe subset (aws-greengrass-lite
    docs/RECIPE_SUPPORT_CHANGES.md; modules/recipe2unit/src/unit_file_generator.c looks up
    ``install``/``run``/``startup`` case-sensitively; ggdeploymentd's deployment_handler.c
    requires an artifact's ``Uri``)."""
    lifecycle = nucleus["Lifecycle"]
    out: dict[str, Any] = {
        "Name": f"lite-{nucleus['Name']}",
        "Platform": {**nucleus["Platform"], "runtime": LITE_RUNTIME},
    }
    if zip_path is None:  # a refusing manifest (32-bit ARM): its Install says why
        out["Lifecycle"] = {"install": dict(lifecycle["Install"])}
        return out
    arch = nucleus["Platform"]["architecture"]
    values = {
        **common,
        "ARCH": arch,
        "ARTIFACT": zip_path.name,
        "ARTIFACT_SHA256": sha256(zip_path),
    }
    out["Lifecycle"] = {
        "install": {
            "RequiresPrivilege": lifecycle["Install"]["RequiresPrivilege"],
            "Timeout": lifecycle["Install"]["Timeout"],
            "Script": fill(install, values),
        },
        "run": dict(lifecycle["Run"]),
    }
    out["Artifacts"] = [
        {("Uri" if k == "URI" else k): v for k, v in a.items() if k != "Unarchive"}
        for a in nucleus["Artifacts"]
    ]
    return out


def build_wheel(dest: Path) -> Path:
    """The agent's own wheel, built with the locked setuptools of this venv."""
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(dest), str(REPO))
    (wheel,) = dest.glob("gg_health_agent-*.whl")
    return wheel


def build_artifact(
    out_dir: Path, arch: str, pythons: list[str], agent_wheel: Path, runtime: str = "nucleus"
) -> tuple[Path, str]:
    """The zip of one architecture and the requirements text its manifest carries."""
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        wheels = stage / "wheels"
        for python in pythons:
            download(wheels, Target(arch, python))
        for python in pythons:
            if missing := missing_wheels(Target(arch, python), wheels.glob("*.whl")):
                raise SystemExit(f"no {arch} wheel for CPython {python} of: {', '.join(missing)}")
        bundled = prune(sorted(wheels.glob("*.whl")), [Target(arch, p) for p in pythons])
        own = (
            f"gg-health-agent=={agent_wheel.name.split('-')[1]} --hash=sha256:{sha256(agent_wheel)}"
        )
        requirements = own + "\n" + requirements_text(bundled)
        shutil.copy2(agent_wheel, stage / agent_wheel.name)
        if runtime == "lite":
            # The lite manifests' Install reads the hashes from here (the zip's own is pinned);
            # the nucleus manifests carry them, and their Install trusts nothing in the zip.
            (stage / "requirements.txt").write_text(requirements + "\n")
        zip_path = out_dir / artifact_name(arch)
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(stage.rglob("*")):
                if f.is_file():
                    # The nucleus unarchives gghealth-<arch>.zip into
                    # {artifacts:decompressedPath}/gghealth-<arch>/: entries go at the top level.
                    zf.write(f, f.relative_to(stage).as_posix())
    return zip_path, requirements


def build(
    out: Path,
    *,
    name: str,
    version: str,
    author: str,
    bucket: str,
    arches: list[str],
    pythons: list[str],
    install_root: str = INSTALL_ROOT,
    recipe_name: str | None = None,
    runtime: str = "nucleus",
) -> Path:
    """Write greengrass-build/ and return the recipe's path (``recipe_name``, by default
    ``<name>-<version>.yaml``)."""
    recipes_dir = out / "recipes"
    artifact_dir = out / "artifacts" / name / version
    shutil.rmtree(out, ignore_errors=True)
    recipes_dir.mkdir(parents=True)
    artifact_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        agent_wheel = build_wheel(Path(tmp))
        artifacts = {
            a: build_artifact(artifact_dir, a, pythons, agent_wheel, runtime) for a in arches
        }
    recipe = build_recipe(
        name=name,
        version=version,
        author=author,
        bucket=bucket,
        install_root=install_root,
        pythons=pythons,
        artifacts=artifacts,
        runtime=runtime,
    )
    recipe_path = recipes_dir / (recipe_name or f"{name}-{version}.yaml")
    recipe_path.write_text(yaml.dump(recipe, Dumper=_NoAliasDumper, sort_keys=False, width=100))
    return recipe_path


def main() -> int:
    """Command line of ``make package``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "greengrass-build")
    p.add_argument("--name", help=f"component name (default: {DEFAULT_COMPONENT_NAME})")
    p.add_argument("--version", help=f"component version (default: {__version__})")
    p.add_argument("--author", help=f"component publisher (default: {DEFAULT_AUTHOR})")
    p.add_argument(
        "--gdk-config",
        type=Path,
        help="build for `gdk component build`: name, version and author from this\n"
        f"gdk-config.json, the recipe written as <out>/recipes/{GDK_RECIPE}",
    )
    p.add_argument(
        "--bucket", default="BUCKET_NAME", help="S3 bucket the artifacts will be uploaded to"
    )
    p.add_argument(
        "--arch",
        action="append",
        choices=sorted(MACHINES),
        help="an architecture to build (repeatable; default: all)",
    )
    p.add_argument(
        "--python",
        action="append",
        choices=PYTHONS,
        help="a CPython version to bundle wheels for (repeatable; default: all)",
    )
    p.add_argument(
        "--install-root",
        default=INSTALL_ROOT,
        help="where Install builds the environment on the device (tests only)",
    )
    p.add_argument(
        "--runtime",
        choices=("nucleus", "lite"),
        default="nucleus",
        help="the Greengrass runtime of the devices: the Java nucleus (default) or nucleus lite",
    )
    args = p.parse_args()
    recipe_name = None
    if args.gdk_config:
        if args.name or args.version or args.author:
            p.error("--gdk-config sets the name, version and author: give none of them")
        args.name, args.version, args.author = gdk_component(args.gdk_config)
        recipe_name = GDK_RECIPE
    recipe = build(
        args.out,
        name=args.name or DEFAULT_COMPONENT_NAME,
        version=args.version or __version__,
        author=args.author or DEFAULT_AUTHOR,
        bucket=args.bucket,
        arches=args.arch or sorted(MACHINES),
        pythons=sorted(set(args.python or PYTHONS), key=PYTHONS.index),
        install_root=args.install_root,
        recipe_name=recipe_name,
        runtime=args.runtime,
    )
    print(f"recipe:    {recipe}")
    for zip_path in sorted((args.out / "artifacts").rglob("*.zip")):
        print(f"artifact:  {zip_path} ({zip_path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
