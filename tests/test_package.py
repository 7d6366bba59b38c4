"""`make package` as released: every architecture, every supported CPython, complete.

The packaged recipe's requirements (the ones its Install step installs with --require-hashes)
are resolved by an independent resolver (uv, for the target Python and platform, against the
zip's wheels only, no index): a dry run of what each device would install.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import canonicalize_name, parse_wheel_filename

from scripts.locks import RUNTIME_LOCK, pins_for
from scripts.wheelhouse import MACHINES, OLDEST_GLIBC, PYTHONS, Target
from tests.conftest import REPO

UV = Path(sys.executable).parent / "uv"
GLIBC = f"manylinux_{OLDEST_GLIBC[0]}_{OLDEST_GLIBC[1]}"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make package`` with its defaults, unzipped per architecture beside greengrass-build/."""
    out = tmp_path_factory.mktemp("release")
    build = out / "greengrass-build"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "package.py"), "--out", str(build)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    for zip_path in build.glob("artifacts/*/*/*.zip"):
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(out / zip_path.stem)
    return out


def _manifest(release: Path, arch: str) -> dict[str, Any]:
    (recipe,) = (release / "greengrass-build" / "recipes").glob("*.yaml")
    manifests = yaml.safe_load(recipe.read_text())["Manifests"]
    (manifest,) = [m for m in manifests if m["Platform"]["architecture"] == arch]
    return manifest  # type: ignore[no-any-return]


def _resolve(release: Path, arch: str, python: str) -> subprocess.CompletedProcess[str]:
    """uv's dry-run resolution of the manifest's requirements for one target interpreter."""
    script = _manifest(release, arch)["Lifecycle"]["Install"]["Script"]
    requirements = script.split("<<'REQUIREMENTS'\n", 1)[1].split("\nREQUIREMENTS\n", 1)[0]
    req = release / f"requirements-{arch}.txt"
    req.write_text(requirements + "\n")
    unzipped = release / f"gghealth-{arch}"
    return subprocess.run(
        [
            str(UV),
            "pip",
            "compile",
            "--quiet",
            "--no-header",
            "--no-annotate",
            "--no-deps",
            "--no-index",
            "--only-binary",
            ":all:",
            "--find-links",
            str(unzipped),
            "--find-links",
            str(unzipped / "wheels"),
            "--python-version",
            python,
            "--python-platform",
            f"{MACHINES[arch]}-{GLIBC}",
            str(req),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("arch", sorted(MACHINES))
@pytest.mark.parametrize("python", PYTHONS)
def test_each_supported_python_resolves_from_the_bundled_wheels_alone(
    release: Path, arch: str, python: str
) -> None:
    done = _resolve(release, arch, python)
    assert done.returncode == 0, done.stderr
    resolved = dict(line.split("==") for line in done.stdout.split())
    expected = {
        n: p.version for n, p in pins_for(RUNTIME_LOCK, Target(arch, python).markers).items()
    }
    from agent import __version__

    assert resolved == {**expected, "gg-health-agent": __version__}


def test_an_unsupported_python_does_not_resolve(release: Path) -> None:
    """The negative control of the dry run: no cp314 wheels were bundled."""
    done = _resolve(release, "aarch64", "3.14")
    assert done.returncode != 0
    assert "cp314" in done.stderr


@pytest.mark.parametrize("arch", sorted(MACHINES))
def test_each_zip_holds_only_its_own_architecture(release: Path, arch: str) -> None:
    wheels = list((release / f"gghealth-{arch}" / "wheels").glob("*.whl"))
    assert wheels
    for wheel in wheels:
        _, _, _, tags = parse_wheel_filename(wheel.name)
        platforms = {t.platform for t in tags}
        assert platforms == {"any"} or all(p.endswith(MACHINES[arch]) for p in platforms), wheel
    names = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w in wheels}
    assert names == set(pins_for(RUNTIME_LOCK, Target(arch, PYTHONS[-1]).markers))
