#!/usr/bin/env python3
"""Build a GDK-style ``greengrass-build/`` for gghealth.HealthAgent.

    greengrass-build/recipes/<name>-<version>.yaml          the recipe, placeholders filled in
    greengrass-build/artifacts/<name>/<version>/gghealth.zip
        gg_health_agent-<version>-py3-none-any.whl
        wheels/*.whl      with --platform: requirements/runtime.lock's wheels, offline install

``gdk component build`` runs this through gdk-config.json (build_system "custom").
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent import __version__  # noqa: E402
from agent.config import DEFAULT_COMPONENT_NAME  # noqa: E402

ARTIFACT = "gghealth.zip"
RUNTIME_LOCK = REPO / "requirements" / "runtime.lock"


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


def build_recipe(name: str, version: str, author: str, bucket: str) -> dict[str, Any]:
    """The recipe template with its placeholders and artifact URI resolved."""
    template = yaml.safe_load((REPO / "recipes" / "recipe.yaml").read_text())
    recipe = fill(
        template, {"COMPONENT_NAME": name, "COMPONENT_VERSION": version, "COMPONENT_AUTHOR": author}
    )
    uri = f"s3://{bucket}/{name}/{version}/{ARTIFACT}"
    for manifest in recipe["Manifests"]:
        for artifact in manifest.get("Artifacts", []):
            artifact["URI"] = uri
    return recipe  # type: ignore[no-any-return]


def pip(*args: str) -> None:
    """Run pip of this interpreter, quietly, failing loudly."""
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True
    )


def download_locked_wheels(dest: Path, platform: str, python_version: str) -> None:
    """Exactly the runtime wheels of requirements/runtime.lock, each checked against its hash.

    The lock is complete (every transitive dependency, pinned), so ``--no-deps``; binary wheels
    only, so an Install on the device never compiles.
    """
    target = (
        []
        if platform == "native"
        else ["--platform", platform, "--python-version", python_version, "--implementation", "cp"]
    )
    pip(
        "download",
        "-d",
        str(dest),
        "--require-hashes",
        "--no-deps",
        "--only-binary=:all:",
        *target,
        "-r",
        str(RUNTIME_LOCK),
    )


def build(
    out: Path,
    *,
    name: str,
    version: str,
    author: str,
    bucket: str,
    platform: str | None,
    python_version: str,
) -> Path:
    """Write greengrass-build/ and return the artifact zip."""
    recipes_dir = out / "recipes"
    artifact_dir = out / "artifacts" / name / version
    shutil.rmtree(out, ignore_errors=True)
    recipes_dir.mkdir(parents=True)
    artifact_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "gghealth"
        # The build backend is the locked setuptools of this venv, not whatever PyPI serves.
        pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(stage), str(REPO))
        if platform:
            download_locked_wheels(stage / "wheels", platform, python_version)
        zip_path = artifact_dir / ARTIFACT
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(stage.rglob("*")):
                if f.is_file():
                    # The nucleus unarchives gghealth.zip into
                    # {artifacts:decompressedPath}/gghealth/: entries go at the top level.
                    zf.write(f, f.relative_to(stage).as_posix())
    recipe = build_recipe(name, version, author, bucket)
    (recipes_dir / f"{name}-{version}.yaml").write_text(
        yaml.dump(recipe, Dumper=_NoAliasDumper, sort_keys=False, width=100)
    )
    return zip_path


def main() -> int:
    """Command line of ``make package``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "greengrass-build")
    p.add_argument("--name", default=DEFAULT_COMPONENT_NAME)
    p.add_argument("--version", default=__version__)
    p.add_argument("--author", default="gg-health-agent maintainers")
    p.add_argument(
        "--bucket", default="BUCKET_NAME", help="S3 bucket the artifact will be uploaded to"
    )
    p.add_argument(
        "--platform",
        help="bundle dependency wheels for this pip platform tag "
        "(e.g. manylinux2014_aarch64 for a Raspberry Pi 4 on 64-bit OS) or 'native'",
    )
    p.add_argument("--python-version", default="3.11", help="target Python for --platform")
    args = p.parse_args()
    zip_path = build(
        args.out,
        name=args.name,
        version=args.version,
        author=args.author,
        bucket=args.bucket,
        platform=args.platform,
        python_version=args.python_version,
    )
    print(f"recipe:   {args.out / 'recipes' / f'{args.name}-{args.version}.yaml'}")
    print(f"artifact: {zip_path} ({zip_path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
