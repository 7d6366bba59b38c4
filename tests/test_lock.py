"""The locks are what the suite runs with and what ships.

``make install`` builds ``.venv`` from requirements/dev.lock with ``--require-hashes``;
``make package`` bundles requirements/runtime.lock (tests/test_lifecycle.py checks the zip).
These tests hold the venv, the two locks and pyproject.toml's ranges to each other.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from scripts.locks import BUILD_LOCK, DEV_LOCK, RUNTIME_LOCK, pins_for, read_lock
from tests.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PROJECT = canonicalize_name("gg-health-agent")
# The venv's own installer, put there by `python -m venv` before the lock is read.
BOOTSTRAP = {canonicalize_name("pip")}


def _pyproject() -> dict[str, list[Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    groups = {"": [Requirement(r) for r in project["dependencies"]]}
    for extra, reqs in project["optional-dependencies"].items():
        groups[extra] = [Requirement(r) for r in reqs]
    return groups


def _installed() -> dict[NormalizedName, str]:
    return {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) not in BOOTSTRAP | {PROJECT}
    }


def test_the_venv_is_exactly_the_dev_lock() -> None:
    """What pip freeze lists is what requirements/dev.lock names for this Python, and no more."""
    locked = {name: pin.version for name, pin in pins_for(DEV_LOCK).items()}
    installed = _installed()
    assert {n: v for n, v in installed.items() if locked.get(n) != v} == {}, (
        "installed but not locked at that version; rebuild the venv: make clean install"
    )
    assert set(locked) - set(installed) == set(), "locked but not installed"


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, BUILD_LOCK], ids=lambda p: p.name)
def test_every_pin_carries_hashes_and_agrees_with_the_dev_lock(lock: Path) -> None:
    """The runtime lock (what ships) and the build lock (what builds it) pin what the suite ran."""
    dev = {(p.name, p.marker and str(p.marker)): p for p in read_lock(DEV_LOCK)}
    pins = read_lock(lock)
    assert all(p.hashes for p in [*dev.values(), *pins])
    for pin in pins:
        assert pin.name in {name for name, _ in dev}, pin.name
        same = [p for (name, _), p in dev.items() if name == pin.name and p.marker == pin.marker]
        assert [p.version for p in same] == [pin.version], pin.name
        assert same[0].hashes == pin.hashes, pin.name


def test_the_runtime_lock_is_the_closure_of_the_runtime_dependencies() -> None:
    """runtime.lock holds every package the agent imports at run time, and nothing else."""
    wanted: set[NormalizedName] = set()
    todo = [r for r in _pyproject()[""] if r.marker is None or r.marker.evaluate()]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in wanted:
            continue
        wanted.add(name)
        for dep in metadata.requires(name) or []:
            r = Requirement(dep)
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r)
    assert set(pins_for(RUNTIME_LOCK)) == wanted


def test_pyproject_ranges_admit_the_locked_versions() -> None:
    """People who `pip install` the package get ranges; the ranges must allow what we tested."""
    locked = pins_for(DEV_LOCK)
    for extra, reqs in _pyproject().items():
        if extra == "fuzz":  # not part of the suite; `make fuzz` installs it when it can
            continue
        for req in reqs:
            pin = locked[canonicalize_name(req.name)]
            assert req.specifier.contains(pin.version, prereleases=True), (extra, str(req))


def test_the_build_lock_is_the_runtime_plus_the_build_tools_only() -> None:
    """`make package` / `make deploy-local` on a device install no test stack."""
    build = {p.name for p in read_lock(BUILD_LOCK)}
    runtime = {p.name for p in read_lock(RUNTIME_LOCK)}
    assert build - runtime == {"setuptools", "packaging"}
    assert runtime <= build
