"""Reading requirements/*.lock (``uv pip compile --universal --generate-hashes`` output)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import NormalizedName, canonicalize_name

from tests.conftest import REPO

DEV_LOCK = REPO / "requirements" / "dev.lock"
RUNTIME_LOCK = REPO / "requirements" / "runtime.lock"

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

    def applies_here(self) -> bool:
        """Whether this interpreter installs it (the lock is universal: markers per Python)."""
        return self.marker is None or self.marker.evaluate()


def read_lock(path: Path) -> list[Pin]:
    """Every pin of a lock file, in file order; a line that is no pin, hash or comment fails."""
    pins: list[Pin] = []
    current: dict[str, object] | None = None

    def close() -> None:
        if current is not None:
            pins.append(Pin(**current))  # type: ignore[arg-type]

    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if (pin := _PIN.match(line)) is not None:
            close()
            marker = pin["marker"]
            current = {
                "name": canonicalize_name(pin["name"]),
                "version": pin["version"],
                "marker": Marker(marker) if marker else None,
                "hashes": frozenset(),
            }
        elif (digest := _HASH.search(stripped)) is not None and current is not None:
            current["hashes"] = current["hashes"] | {digest["digest"]}  # type: ignore[operator]
        else:
            raise AssertionError(f"{path.name}: not a pin, a hash or a comment: {line!r}")
    close()
    return pins


def pins_here(path: Path) -> dict[NormalizedName, Pin]:
    """The pins this interpreter installs, by normalised name."""
    return {p.name: p for p in read_lock(path) if p.applies_here()}
