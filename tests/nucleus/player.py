"""Playing the nucleus for a packaged component: what it does with a recipe and its artifacts.

The Greengrass nucleus picks the manifest of the device's platform, downloads and checks its
artifacts, unarchives a ZIP into ``{artifacts:decompressedPath}/<zip name without .zip>/``,
replaces the recipe variables in the lifecycle scripts and runs each step with ``sh -c``, as root
where the step says ``RequiresPrivilege``, in the component's work directory, with the step's
``Setenv`` over the component environment.
https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html

The recipe logic (:class:`Component`, :func:`select_manifest`, :func:`resolve`) serves both the
native lifecycle test (tests/test_lifecycle.py, through :class:`Deployment`, which also runs the
steps) and the emulated device test (scripts/device_test.py, which runs them in its chroot).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_INSTALL_TIMEOUT = 120
"""The nucleus's Install timeout when a recipe gives none (seconds)."""
VARIABLE = re.compile(r"(?<!\$)\{[A-Za-z][\w.-]*:[^{}\s]*\}")
"""A recipe variable such as ``{work:path}``; ``${var:-x}`` is shell, not a recipe variable."""


class RecipeError(Exception):
    """What the nucleus would refuse in a recipe or its artifacts; the message says what."""


@dataclass(frozen=True)
class Step:
    """One lifecycle step of the selected manifest, its script not yet resolved."""

    script: str
    setenv: dict[str, str]
    """The Lifecycle's own ``Setenv``, then the step's over it."""
    timeout: float | None
    """The step's ``Timeout`` (seconds), None where the recipe gives none."""
    requires_privilege: bool


@dataclass(frozen=True)
class Component:
    """The component as the recipe and the selected manifest describe it."""

    name: str
    version: str
    recipe: dict[str, Any]
    manifest: dict[str, Any]
    artifact_dir: Path
    """greengrass-build/artifacts/<name>/<version>: where ``make package`` put the artifacts."""

    @classmethod
    def load(cls, build: Path, platform: Mapping[str, str]) -> Component:
        """The one recipe under ``build/recipes`` (``make package``) and its manifest for
        ``platform``."""
        recipes = sorted((build / "recipes").glob("*.yaml"))
        if len(recipes) != 1:
            found = ", ".join(p.name for p in recipes) or "none"
            raise RecipeError(
                f"expected one recipe in {build / 'recipes'} (found: {found}); run `make package`"
            )
        recipe = yaml.safe_load(recipes[0].read_text())
        name, version = recipe["ComponentName"], recipe["ComponentVersion"]
        manifest = select_manifest(recipe.get("Manifests") or [], platform)
        if manifest is None:
            raise RecipeError(
                f"{recipes[0].name} has no manifest for {dict(platform)}: a nucleus on that "
                "platform would refuse the deployment"
            )
        return cls(name, version, recipe, manifest, build / "artifacts" / name / version)

    def step(self, step: str) -> Step:
        """``step`` of the manifest's Lifecycle (a bare script or a mapping with ``Script``)."""
        lifecycle = self.manifest.get("Lifecycle") or {}
        definition = lifecycle.get(step)
        if definition is None:
            raise RecipeError(f"the manifest {self.manifest.get('Name', '')!r} has no {step}")
        if isinstance(definition, str):
            definition = {"Script": definition}
        env = {**(lifecycle.get("Setenv") or {}), **(definition.get("Setenv") or {})}
        timeout = definition.get("Timeout")
        return Step(
            script=definition["Script"],
            setenv={k: str(v) for k, v in env.items()},
            timeout=None if timeout is None else float(timeout),
            requires_privilege=bool(definition.get("RequiresPrivilege")),
        )

    def lay_out(self, root: Path, thing: str) -> dict[str, str]:
        """Put the manifest's artifacts where the nucleus keeps them under the Greengrass
        ``root`` (downloaded, Digest-checked, unarchived, permissions applied), make the work
        directory, and return the recipe variables that point there."""
        artifacts = root / "packages" / "artifacts" / self.name / self.version
        decompressed = root / "packages" / "artifacts-unarchived" / self.name / self.version
        artifacts.mkdir(parents=True)
        decompressed.mkdir(parents=True)
        for artifact in self.manifest.get("Artifacts") or []:
            file_name = artifact["URI"].rsplit("/", 1)[-1]
            source = self.artifact_dir / file_name
            if not source.is_file():
                raise RecipeError(f"the manifest names {artifact['URI']}, but {source} is missing")
            check_digest(source, artifact)
            shutil.copyfile(source, artifacts / file_name)
            permission = artifact.get("Permission") or {}
            if str(artifact.get("Unarchive", "NONE")).upper() == "ZIP":
                # The nucleus unarchives a.zip into {artifacts:decompressedPath}/a/.
                target = decompressed / file_name.removesuffix(".zip")
                with zipfile.ZipFile(source) as archive:
                    archive.extractall(target)
                apply_permission(target, permission)
            apply_permission(artifacts / file_name, permission)
        work = root / "work" / self.name
        work.mkdir(parents=True)
        return {
            "artifacts:path": str(artifacts),
            "artifacts:decompressedPath": str(decompressed),
            "work:path": str(work),
            "kernel:rootPath": str(root),
            "iot:thingName": thing,
        }


def select_manifest(
    manifests: Sequence[dict[str, Any]], platform: Mapping[str, str]
) -> dict[str, Any] | None:
    """The first manifest whose every ``Platform`` attribute matches, as the nucleus picks it:
    equal, ``*``, or a ``/regex/``; an attribute the manifest leaves out matches anything."""
    for manifest in manifests:
        wanted = manifest.get("Platform") or {}
        if all(_attribute_matches(str(v), platform.get(k, "")) for k, v in wanted.items()):
            return manifest
    return None


def _attribute_matches(wanted: str, actual: str) -> bool:
    if wanted == "*":
        return True
    if len(wanted) > 1 and wanted.startswith("/") and wanted.endswith("/"):
        return re.fullmatch(wanted[1:-1], actual) is not None
    return wanted == actual


def resolve(script: str, variables: Mapping[str, str]) -> str:
    """``script`` with the recipe variables substituted; fails on any one left over, which the
    nucleus would have known and this runner does not."""
    for key, value in variables.items():
        script = script.replace("{" + key + "}", value)
    if leftover := sorted(set(VARIABLE.findall(script))):
        raise RecipeError(f"recipe variables this runner cannot resolve: {', '.join(leftover)}")
    return script


def check_digest(path: Path, artifact: Mapping[str, Any]) -> None:
    """The nucleus refuses an artifact whose SHA-256 differs from the recipe's ``Digest``."""
    if "Digest" not in artifact:
        return
    if str(artifact.get("Algorithm", "SHA-256")).upper() != "SHA-256":
        raise RecipeError(f"{path.name}: unsupported Algorithm {artifact['Algorithm']}")
    digest = base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
    if digest != artifact["Digest"]:
        raise RecipeError(
            f"{path.name}: SHA-256 {digest} is not the recipe's Digest {artifact['Digest']}; "
            "the nucleus would refuse it (run `make package` again)"
        )


def apply_permission(path: Path, permission: Mapping[str, str]) -> None:
    """The recipe's ``Permission`` (Read default OWNER, Execute default NONE) as file modes."""
    read = {"NONE": 0, "OWNER": 0o400, "ALL": 0o444}[str(permission.get("Read", "OWNER"))]
    execute = {"NONE": 0, "OWNER": 0o100, "ALL": 0o111}[str(permission.get("Execute", "NONE"))]
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in paths:
        if item.is_dir():
            item.chmod(0o700 | (0o055 if read & 0o004 else 0))
        else:
            item.chmod(read | execute)


@dataclass(frozen=True)
class Deployment:
    """A component laid out under a Greengrass root, its steps run on this machine as the
    nucleus runs them: ``sh -c`` in the work directory, the step's Setenv over ``env``."""

    component: Component
    root: Path
    variables: dict[str, str]

    @classmethod
    def of(cls, build: Path, root: Path, platform: Mapping[str, str], thing: str) -> Deployment:
        """The manifest of ``build`` for ``platform``, laid out under ``root``, as the nucleus
        does before the first step."""
        component = Component.load(build, platform)
        return cls(component, root, component.lay_out(root, thing))

    @property
    def work(self) -> Path:
        return Path(self.variables["work:path"])

    def _command(self, step: str) -> tuple[list[str], Step]:
        definition = self.component.step(step)
        return ["sh", "-c", resolve(definition.script, self.variables)], definition

    def run(
        self, step: str, env: Mapping[str, str], **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run one step to its end (Install), within its Timeout."""
        command, definition = self._command(step)
        return subprocess.run(
            command,
            env={**env, **definition.setenv},
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=definition.timeout or DEFAULT_INSTALL_TIMEOUT,
            **kwargs,
        )

    def start(self, step: str, env: Mapping[str, str]) -> subprocess.Popen[str]:
        """Start a long-running step (Run) in the work directory, as the nucleus does."""
        command, definition = self._command(step)
        return subprocess.Popen(
            command,
            env={**env, **definition.setenv},
            cwd=self.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def is_root() -> bool:
    return os.geteuid() == 0
