"""The wheels a device installs: requirements/runtime.lock, for every target interpreter.

A target is an architecture (as Greengrass names it in a recipe's ``Platform.architecture``)
and a CPython version. For each, the lock's markers are evaluated *for that target* and exactly
the pinned wheels are downloaded, each checked against the lock's hashes. What the device then
installs is described by :func:`requirements_text`: the locked pins with the hashes of the very
files bundled, which the recipe carries (pip's ``--require-hashes`` on the device).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import NormalizedName, parse_wheel_filename

from scripts.locks import RUNTIME_LOCK, Pin, pins_for, read_lock

PYTHONS = ("3.10", "3.11", "3.12", "3.13")
"""CPython versions of the supported devices: Ubuntu 22.04 (3.10), Raspberry Pi OS Bookworm
(3.11), Ubuntu 24.04 (3.12), Raspberry Pi OS Trixie (3.13)."""

OLDEST_GLIBC = (2, 35)
"""Ubuntu 22.04's glibc, the oldest of the supported devices (Bookworm 2.36, Trixie 2.41,
Ubuntu 24.04 2.39): no wheel may need a newer one (PEP 600 ``manylinux_2_35`` and older)."""

MACHINES = {"amd64": "x86_64", "aarch64": "aarch64"}
"""Greengrass ``Platform.architecture`` -> ``uname -m`` (the nucleus maps x86_64 to amd64)."""


@dataclass(frozen=True)
class Target:
    """One interpreter a package must install on."""

    arch: str
    python: str

    @property
    def machine(self) -> str:
        return MACHINES[self.arch]

    @property
    def platforms(self) -> list[str]:
        """pip platform tags, best first: PEP 600 names down to 2_17, and their legacy aliases."""
        newest = OLDEST_GLIBC[1]
        tags = [f"manylinux_2_{minor}_{self.machine}" for minor in range(newest, 16, -1)]
        return [*tags, f"manylinux2014_{self.machine}"]

    @property
    def markers(self) -> dict[str, str]:
        """PEP 508 marker variables of a CPython of this version on Linux on this machine."""
        return {
            "python_version": self.python,
            "python_full_version": f"{self.python}.0",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "platform_machine": self.machine,
            "platform_system": "Linux",
            "sys_platform": "linux",
            "os_name": "posix",
        }

    def tags(self) -> set[Tag]:
        """Every wheel tag this interpreter accepts."""
        version = tuple(int(p) for p in self.python.split("."))
        return {
            *cpython_tags(version, platforms=self.platforms),
            *compatible_tags(version, "cp" + "".join(map(str, version)), self.platforms),
        }


def targets(arches: Iterable[str], pythons: Iterable[str] = PYTHONS) -> list[Target]:
    return [Target(a, p) for a in arches for p in pythons]


def download(dest: Path, target: Target, lock: Path = RUNTIME_LOCK) -> None:
    """The locked wheels of ``target`` into ``dest``: hash-checked, binary only, no resolver."""
    pins = pins_for(lock, target.markers).values()
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as req:
        # Without their markers: pip would evaluate them for the interpreter running pip.
        req.write("".join(_requirement_line(p, p.hashes, marker=False) + "\n" for p in pins))
        req.flush()
        pip(
            "download",
            "-d",
            str(dest),
            "--require-hashes",
            "--no-deps",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            target.python,
            *(arg for platform in target.platforms for arg in ("--platform", platform)),
            "-r",
            req.name,
        )


def pip(*args: str) -> None:
    """pip of this interpreter, quiet, failing loudly."""
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def requirements_text(wheels: Iterable[Path], lock: Path = RUNTIME_LOCK) -> str:
    """What the device installs from ``wheels``: each lock pin that has a file among them, with
    its marker and the hashes of exactly those files, one requirement a line."""
    by_release: dict[tuple[NormalizedName, str], set[str]] = {}
    for wheel in wheels:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        by_release.setdefault((name, str(version)), set()).add(sha256(wheel))
    lines = []
    for pin in read_lock(lock):
        digests = by_release.pop((pin.name, pin.version), None)
        if digests:
            lines.append(_requirement_line(pin, digests))
    if by_release:
        raise ValueError(f"wheels that the lock does not name: {sorted(by_release)}")
    return "\n".join(lines)


def missing_wheels(target: Target, wheels: Iterable[Path], lock: Path = RUNTIME_LOCK) -> list[str]:
    """The pins ``target`` needs for which no wheel among ``wheels`` fits it (empty: complete)."""
    accepted = target.tags()
    fits: set[tuple[NormalizedName, str]] = set()
    for wheel in wheels:
        name, version, _, tags = parse_wheel_filename(wheel.name)
        if tags & accepted:
            fits.add((name, str(version)))
    return [
        f"{p.name}=={p.version}"
        for p in pins_for(lock, target.markers).values()
        if (p.name, p.version) not in fits
    ]


def prune(wheels: list[Path], targets: Iterable[Target], lock: Path = RUNTIME_LOCK) -> list[Path]:
    """Delete the wheels every target can do without (pip picks the best tag for each Python,
    so an abi3 wheel can arrive twice: cp311-abi3 and cp313-abi3), largest first; the rest."""
    kept = sorted(wheels, key=lambda w: w.stat().st_size, reverse=True)
    for wheel in list(kept):
        rest = [w for w in kept if w != wheel]
        if not any(missing_wheels(t, rest, lock) for t in targets):
            wheel.unlink()
            kept = rest
    return sorted(kept)


def _requirement_line(pin: Pin, digests: Iterable[str], *, marker: bool = True) -> str:
    where = f" ; {pin.marker}" if marker and pin.marker else ""
    hashes = "".join(f" --hash=sha256:{d}" for d in sorted(digests))
    return f"{pin.name}=={pin.version}{where}{hashes}"
