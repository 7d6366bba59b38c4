"""The recipes of the component versions deployed now, and the artifacts they name.

The nucleus stores each resolved recipe under ``<root>/packages/recipes/`` as
``<base64url-no-padding(sha256(componentName))>@<version>.recipe.yaml`` (nucleus 2.x) or, on
older nuclei, ``<name>-<version>.yaml``, beside a ``.metadata.json``; nucleus lite keeps them under
its root path as ``<name>-<version>.json`` (or ``.yaml``/``.yml``). Stale versions stay there
after an upgrade, so only the version in ``services.<name>.version`` of effectiveConfig counts.
Name and version are read from the recipe itself (YAML or JSON, keys case-insensitive as the
nucleus parses them). Recipe format:
https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config.files import InputError, load_yaml_file
from agent.greengrass.platform import select_manifest
from agent.greengrass.root import NUCLEUS_NAMES, GreengrassRoot

MAX_RECIPE_BYTES = 1024 * 1024
MAX_SCANNED_FILES = 5000
_RECIPE_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Artifact:
    """One artifact URI of a deployed component version."""

    uri: str
    component: str
    version: str
    recipe: Path

    @property
    def scheme(self) -> str:
        """``s3``, ``greengrass``, ``docker``..."""
        return self.uri.split(":", 1)[0].lower() if ":" in self.uri else ""

    def s3_location(self) -> tuple[str, str]:
        """(bucket, key) of an ``s3://bucket/key`` URI; key may be empty when malformed."""
        rest = self.uri[len("s3://") :]
        bucket, _, key = rest.partition("/")
        return bucket, key


@dataclass(frozen=True)
class RecipeProblem:
    """Why the artifacts of one deployed component could not be read."""

    component: str
    version: str
    path: Path | None
    reason: str
    """``recipe_missing``, ``recipe_unreadable``, ``recipe_mismatch``, ``bad_artifacts``."""
    message: str


@dataclass(frozen=True)
class DeployedArtifacts:
    """What the deployed recipes name."""

    artifacts: tuple[Artifact, ...]
    """Every artifact of every manifest, first occurrence of each URI."""
    problems: tuple[RecipeProblem, ...]
    components: tuple[tuple[str, str], ...]
    """(name, version) of every deployed component whose recipe was read."""

    def with_scheme(self, scheme: str) -> list[Artifact]:
        """The artifacts whose URI uses ``scheme`` (e.g. ``s3``)."""
        return [a for a in self.artifacts if a.scheme == scheme]


def recipe_file_name(name: str, version: str) -> str:
    """The nucleus 2.x file name of a recipe."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return f"{encoded}@{version}.recipe.yaml"


def legacy_recipe_file_name(name: str, version: str) -> str:
    """The file name older nuclei used."""
    return f"{name}-{version}.yaml"


def deployed_components(root: GreengrassRoot) -> dict[str, str]:
    """``{name: version}`` of every service that has a version (components, not plugins)."""
    found: dict[str, str] = {}
    for name, service in root.services.items():
        version = service.get("version") if isinstance(service, Mapping) else None
        if isinstance(version, (str, int, float)) and str(version).strip():
            found[str(name)] = str(version).strip()
    return found


def find_deployed_artifacts(
    root: GreengrassRoot,
    cache: MutableMapping[str, Any] | None = None,
    *,
    ignore: Iterable[str] = (),
    device: Mapping[str, str] | None = None,
) -> DeployedArtifacts:
    """Artifacts of the recipes of the deployed component versions; never raises for bad input.

    Components in ``ignore`` (the agent itself) and the nucleus are not reported when their
    recipe is missing: the nucleus comes from the installer, the agent is evidently running.
    """
    quiet = {*NUCLEUS_NAMES, *ignore}
    recipes_dir = root.root / "packages" / "recipes"
    cache = cache if cache is not None else {}
    artifacts: dict[str, Artifact] = {}
    problems: list[RecipeProblem] = []
    read: list[tuple[str, str]] = []
    by_identity: dict[tuple[str, str], Path] | None = None
    for name, version in sorted(deployed_components(root).items()):
        path = _expected_path(recipes_dir, name, version)
        if path is None:
            if by_identity is None:
                by_identity = _scan(recipes_dir, cache)
            path = by_identity.get((name, version))
        if path is None:
            if name not in quiet:
                problems.append(
                    RecipeProblem(
                        name,
                        version,
                        None,
                        "recipe_missing",
                        f"no recipe for {name}@{version} in {recipes_dir}",
                    )
                )
            continue
        try:
            recipe = _load(path, cache)
        except InputError as exc:
            problems.append(RecipeProblem(name, version, path, "recipe_unreadable", str(exc)))
            continue
        identity = _identity(recipe)
        if identity != (name, version):
            problems.append(
                RecipeProblem(
                    name,
                    version,
                    path,
                    "recipe_mismatch",
                    f"{path.name} declares {identity[0]}@{identity[1]}, not the deployed "
                    f"{name}@{version}",
                )
            )
            continue
        read.append((name, version))
        try:
            uris = list(artifact_uris(recipe, device))
        except ValueError as exc:
            problems.append(RecipeProblem(name, version, path, "bad_artifacts", f"{path}: {exc}"))
            continue
        for uri in uris:
            artifacts.setdefault(uri, Artifact(uri, name, version, path))
    return DeployedArtifacts(tuple(artifacts.values()), tuple(problems), tuple(read))


def artifact_uris(
    recipe: Mapping[str, Any], device: Mapping[str, str] | None = None
) -> Iterator[str]:
    """The ``URI``/``Uri`` of every artifact; ValueError when malformed.

    With ``device``, only the manifest the nucleus would pick for it counts (a Windows-only
    artifact cannot break a Linux deployment); without, every manifest does.
    """
    manifests = _get(recipe, "Manifests")
    if manifests is None:
        return
    if not isinstance(manifests, list):
        raise ValueError("Manifests is not a list")
    chosen = None if device is None else select_manifest(manifests, device)
    if device is not None and chosen is None:
        raise ValueError(f"no manifest applies to this device ({_describe(device)})")
    for index, manifest in enumerate(manifests):
        if chosen is not None and index != chosen:
            continue
        if not isinstance(manifest, Mapping):
            raise ValueError(f"Manifests[{index}] is not a mapping")
        entries = _get(manifest, "Artifacts")
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise ValueError(f"Manifests[{index}].Artifacts is not a list")
        for pos, entry in enumerate(entries):
            uri = _get(entry, "URI") if isinstance(entry, Mapping) else None
            if not isinstance(uri, str) or not uri.strip():
                raise ValueError(f"Manifests[{index}].Artifacts[{pos}] has no URI")
            yield uri.strip()


def _describe(device: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={device[k]}" for k in ("os", "architecture") if k in device)


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    if key in mapping:
        return mapping[key]
    folded = key.casefold()
    for k, v in mapping.items():
        if isinstance(k, str) and k.casefold() == folded:
            return v
    return None


def _identity(recipe: Any) -> tuple[str, str]:
    if not isinstance(recipe, Mapping):
        return ("?", "?")
    name, version = _get(recipe, "ComponentName"), _get(recipe, "ComponentVersion")
    return (
        str(name).strip() if name is not None else "?",
        str(version).strip() if version is not None else "?",
    )


def lite_recipe_file_names(name: str, version: str) -> tuple[str, ...]:
    """Nucleus lite's: ``<name>-<version>`` + ``.json`` (how ggdeploymentd saves a cloud recipe),
    ``.yaml`` or ``.yml``, tried in that order by ggl_recipe_get_from_file
    (aws-greengrass-lite modules/ggl-recipe/src/recipe.c; deployment_handler.c)."""
    return tuple(f"{name}-{version}{ext}" for ext in (".json", ".yaml", ".yml"))


def _expected_path(recipes_dir: Path, name: str, version: str) -> Path | None:
    for file_name in (
        recipe_file_name(name, version),
        legacy_recipe_file_name(name, version),
        *lite_recipe_file_names(name, version),
    ):
        if "/" in file_name or "\0" in file_name:
            # A service named "../../etc/evil" must not lead the agent out of packages/recipes
            # (component names and versions never hold either character).
            continue
        candidate = recipes_dir / file_name
        if candidate.is_file():
            return candidate
    return None


def _load(path: Path, cache: MutableMapping[str, Any]) -> Any:
    """Parse a recipe, reusing the parse while the file's identity and mtime are unchanged."""
    try:
        st = path.stat()
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror}") from None
    stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    key = f"recipe:{path}"
    hit = cache.get(key)
    if hit is not None and hit[0] == stamp:
        if isinstance(hit[1], InputError):
            raise hit[1]
        return hit[1]
    try:
        data = load_yaml_file(path, MAX_RECIPE_BYTES)
        if not isinstance(data, Mapping):
            raise InputError(f"{path} does not hold a recipe mapping")
    except InputError as exc:
        cache[key] = (stamp, exc)
        raise
    cache[key] = (stamp, data)
    return data


def _scan(recipes_dir: Path, cache: MutableMapping[str, Any]) -> dict[tuple[str, str], Path]:
    """Index every readable recipe in the directory by its declared (name, version)."""
    index: dict[tuple[str, str], Path] = {}
    try:
        entries = sorted(os.scandir(recipes_dir), key=lambda e: e.name)[:MAX_SCANNED_FILES]
    except OSError:
        return index
    for entry in entries:
        name = entry.name
        if not name.endswith(_RECIPE_SUFFIXES) or name.endswith(".metadata.json"):
            continue
        path = Path(entry.path)
        try:
            recipe = _load(path, cache)
        except InputError:
            continue
        index.setdefault(_identity(recipe), path)
    return index
