"""Playing the nucleus for a packaged component: what it does with a recipe and its artifacts.

The Greengrass nucleus picks the manifest of the device's platform, downloads and checks its
artifacts, unarchives a ZIP into ``{artifacts:decompressedPath}/<zip name without .zip>/``,
replaces the recipe variables in the lifecycle scripts and runs each step with ``sh -c``, as root
where the step says ``RequiresPrivilege``, in the component's work directory, with the step's
``Setenv`` over the component environment.
https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_VARIABLE = re.compile(r"\{[a-zA-Z]+:[^}]*\}")


@dataclass
class Component:
    """One manifest of a packaged recipe, laid out under a Greengrass root as the nucleus does."""

    build: Path
    """``greengrass-build/`` of ``make package``."""
    root: Path
    arch: str
    thing: str
    variables: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (recipe_path,) = (self.build / "recipes").glob("*.yaml")
        self.recipe: dict[str, Any] = yaml.safe_load(recipe_path.read_text())
        self.name = self.recipe["ComponentName"]
        self.version = self.recipe["ComponentVersion"]
        (self.manifest,) = [
            m for m in self.recipe["Manifests"] if m["Platform"]["architecture"] == self.arch
        ]
        self.decompressed = (
            self.root / "packages" / "artifacts-unarchived" / self.name / self.version
        )
        self.work = self.root / "work" / self.name
        self.variables = {
            "artifacts:path": str(self.root / "packages" / "artifacts" / self.name / self.version),
            "artifacts:decompressedPath": str(self.decompressed),
            "work:path": str(self.work),
            "kernel:rootPath": str(self.root),
            "iot:thingName": self.thing,
            **self.variables,
        }

    def artifact(self, artifact: dict[str, Any]) -> Path:
        """The built file an artifact URI names."""
        file_name = artifact["URI"].rsplit("/", 1)[-1]
        return self.build / "artifacts" / self.name / self.version / file_name

    def unarchive(self) -> None:
        """Check each artifact's digest and unarchive its ZIP, as the nucleus does first."""
        for artifact in self.manifest.get("Artifacts", []):
            path = self.artifact(artifact)
            if "Digest" in artifact:
                digest = base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
                assert digest == artifact["Digest"], f"{path.name}: digest mismatch"
            if artifact.get("Unarchive") == "ZIP":
                with zipfile.ZipFile(path) as zf:
                    zf.extractall(self.decompressed / path.name.removesuffix(".zip"))
        self.work.mkdir(parents=True, exist_ok=True)

    def script(self, step: str) -> str:
        """A lifecycle step's script with the recipe variables replaced; none may remain."""
        body = self.manifest["Lifecycle"][step]
        text: str = body if isinstance(body, str) else body["Script"]
        for key, value in self.variables.items():
            text = text.replace("{" + key + "}", value)
        left = _VARIABLE.findall(text)
        assert not left, f"unresolved recipe variables in {step}: {left}"
        return text

    def step_env(self, step: str, env: dict[str, str]) -> dict[str, str]:
        body = self.manifest["Lifecycle"][step]
        setenv = body.get("Setenv", {}) if isinstance(body, dict) else {}
        return {**env, **setenv}

    def run(
        self, step: str, env: dict[str, str], **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run one step to its end (Install), within its Timeout."""
        body = self.manifest["Lifecycle"][step]
        timeout = body.get("Timeout", 120) if isinstance(body, dict) else 120
        return subprocess.run(
            ["sh", "-c", self.script(step)],
            env=self.step_env(step, env),
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )

    def start(self, step: str, env: dict[str, str]) -> subprocess.Popen[str]:
        """Start a long-running step (Run) in the work directory, as the nucleus does."""
        return subprocess.Popen(
            ["sh", "-c", self.script(step)],
            env=self.step_env(step, env),
            cwd=self.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def requires_privilege(component: Component, step: str) -> bool:
    body = component.manifest["Lifecycle"][step]
    return isinstance(body, dict) and bool(body.get("RequiresPrivilege"))


def is_root() -> bool:
    return os.geteuid() == 0
