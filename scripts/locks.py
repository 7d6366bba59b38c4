"""Reading requirements/*.lock (``uv pip compile --universal --generate-hashes`` output).

The locks are universal: one file for every Python and platform, a pin that differs between
them carrying an environment marker. ``make package`` evaluates those markers for each target
interpreter itself, because ``pip download --python-version`` evaluates a requirement file's
markers for the interpreter running pip, not for the target.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import NormalizedName, canonicalize_name

REPO = Path(__file__).resolve().parent.parent
DEV_LOCK = REPO / "requirements" / "dev.lock"
RUNTIME_LOCK = REPO / "requirements" / "runtime.lock"
BUILD_LOCK = REPO / "requirements" / "build.lock"

# "name==version ; marker \" (the marker only where the pin differs between Pythons/platforms)
_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^ ;\\]+)"
    r"(?: ; (?P<marker>[^\\]+?))? *\\?$"
)
_HASH = re.compile(r"--hash=sha256:(?P<digest>[0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    """One locked requirement: a name, its exact version, where it applies, its file hashes."""

    name: NormalizedName
    version: str
    marker: Marker | None
    hashes: frozenset[str]

    def applies(self, environment: Mapping[str, str] | None = None) -> bool:
        """Whether an interpreter installs it: this one, or one described by ``environment``
        (PEP 508 marker variables overriding this interpreter's)."""
        return self.marker is None or self.marker.evaluate(dict(environment or {}))


def read_lock(path: Path) -> list[Pin]:
    """Every pin of a lock file, in file order; a line that is no pin, hash or comment fails."""
    pins: list[Pin] = []
    name = version = marker = None
    hashes: set[str] = set()

    def close() -> None:
        if name is not None and version is not None:
            pins.append(Pin(name, version, Marker(marker) if marker else None, frozenset(hashes)))

    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if (pin := _PIN.match(line)) is not None:
            close()
            name, version, marker = canonicalize_name(pin["name"]), pin["version"], pin["marker"]
            hashes = set()
        elif (digest := _HASH.search(stripped)) is not None and name is not None:
            hashes.add(digest["digest"])
        else:
            raise ValueError(f"{path.name}: not a pin, a hash or a comment: {line!r}")
    close()
    return pins


def pins_for(path: Path, environment: Mapping[str, str] | None = None) -> dict[NormalizedName, Pin]:
    """The pins an interpreter installs (this one, or the one ``environment`` describes)."""
    return {p.name: p for p in read_lock(path) if p.applies(environment)}
