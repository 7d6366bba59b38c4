"""The packaged component, installed and run the way a nucleus would do it.

``make package`` output is unzipped where the nucleus puts artifacts, the recipe's variables are
resolved, its Install script runs as root (a root-owned venv outside the work directory, from
the bundled wheels whose hashes the recipe carries, offline) and then its Run script, with the
environment a nucleus gives a component, against the nucleus stand-in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import signal
import socket
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.utils import parse_wheel_filename

from agent.demo import THING, build_demo_root
from scripts.locks import RUNTIME_LOCK, pins_for
from tests.conftest import REPO
from tests.nucleus.player import Component, Deployment, is_root
from tests.nucleus.standin import NucleusStandIn
from tests.peers.base import unavailable

NAME = "gghealth.HealthAgent"
# Greengrass platform architecture names: https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html
ARCH = {"x86_64": "amd64", "aarch64": "aarch64"}[platform.machine()]
PLATFORM = {"os": "linux", "architecture": ARCH}
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
OTHER_PYTHON = "3.13" if PYTHON != "3.13" else "3.12"


def _package(out: Path, python: str, install_root: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "package.py"),
            "--out",
            str(out),
            "--arch",
            ARCH,
            "--python",
            python,
            "--install-root",
            str(install_root),
            "--bucket",
            "test-bucket",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


@pytest.fixture(scope="module")
def install_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where Install builds the environment (``/opt/gghealth`` on a device)."""
    return tmp_path_factory.mktemp("system") / "opt" / "gghealth"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, install_root: Path) -> Path:
    """``make package`` for this machine's architecture and Python."""
    return _package(tmp_path_factory.mktemp("greengrass-build"), PYTHON, install_root)


@pytest.fixture(scope="module")
def interpreter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bin directory whose ``python3`` is this Python's base interpreter, as /usr/bin is on a
    device (not the suite's venv)."""
    bin_dir = tmp_path_factory.mktemp("usr-bin")
    base = Path(sys.base_prefix) / "bin" / f"python{PYTHON}"
    (bin_dir / "python3").symlink_to(base)
    return bin_dir


def _env(interpreter: Path, home: Path) -> dict[str, str]:
    return {"PATH": f"{interpreter}:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home)}


@pytest.fixture(scope="module")
def installed(
    package: Path, interpreter: Path, tmp_path_factory: pytest.TempPathFactory
) -> Deployment:
    """The component after the nucleus ran its Install step (privileged: as root)."""
    if not is_root():
        unavailable("the privileged Install step needs root")
    root = build_demo_root(tmp_path_factory.mktemp("greengrass") / "v2")
    deployment = Deployment.of(package, root, PLATFORM, THING)
    component = deployment.component
    assert component.step("Install").requires_privilege and component.step("Run").requires_privilege
    done = deployment.run("Install", _env(interpreter, root))
    assert done.returncode == 0, done.stderr
    return deployment


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_recipe_is_least_privilege_and_names_its_artifacts(package: Path) -> None:
    from agent import __version__

    text = next((package / "recipes").glob("*.yaml")).read_text()
    # The nucleus's Jackson YAML parser does not resolve aliases: the published recipe has none.
    assert not any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text))
    recipe = yaml.safe_load(text)
    assert recipe["ComponentName"] == NAME and recipe["ComponentVersion"] == __version__
    assert (
        recipe["ComponentDependencies"]["aws.greengrass.TokenExchangeService"]["DependencyType"]
        == "HARD"
    )
    access = recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"]
    policies = access["aws.greengrass.ipc.mqttproxy"].values()
    assert all(p["operations"] == ["aws.greengrass#PublishToIoTCore"] for p in policies)
    assert [p["resources"] for p in policies] == [
        ["dt/gghealth/+/health"],
        ["$aws/things/+/shadow/name/gghealth/update"],
    ]
    by_arch = {m["Platform"]["architecture"]: m for m in recipe["Manifests"]}
    assert set(by_arch) == {ARCH, "arm"}
    (artifact,) = by_arch[ARCH]["Artifacts"]
    assert artifact["URI"] == f"s3://test-bucket/{NAME}/{__version__}/gghealth-{ARCH}.zip"
    zip_path = package / "artifacts" / NAME / __version__ / f"gghealth-{ARCH}.zip"
    digest = base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()
    assert (artifact["Digest"], artifact["Algorithm"]) == (digest, "SHA-256")
    assert "Artifacts" not in by_arch["arm"]
    # The default configuration is valid for the agent itself.
    from agent.config import build_config

    default = dict(recipe["ComponentConfiguration"]["DefaultConfiguration"])
    assert build_config(default).component_name == NAME


def test_the_artifact_bundles_exactly_the_locked_runtime_wheels(package: Path) -> None:
    """The wheels a device installs are the ones the suite ran with: same versions, same files,
    and the recipe carries the hash of each (Install trusts nothing in the artifact directory)."""
    from agent import __version__

    zip_path = package / "artifacts" / NAME / __version__ / f"gghealth-{ARCH}.zip"
    with zipfile.ZipFile(zip_path) as zf:
        files = {Path(n).name: hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()}
    install = Component.load(package, PLATFORM).step("Install").script
    bundled = {}
    for file_name, digest in files.items():
        assert f"--hash=sha256:{digest}" in install, f"{file_name}: its hash is not in the recipe"
        name, version, _, _ = parse_wheel_filename(file_name)
        if name != "gg-health-agent":
            bundled[name] = str(version)
            assert digest in pins_for(RUNTIME_LOCK)[name].hashes, f"{file_name}: not locked"
    assert bundled == {n: p.version for n, p in pins_for(RUNTIME_LOCK).items()}


def _unsafe(path: Path) -> str | None:
    """Why root must not execute ``path``: not root's, or writable by group or others."""
    st = path.lstat()
    if st.st_uid != 0:
        return f"{path}: owned by uid {st.st_uid}"
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o022:
        return f"{path}: mode {stat.filemode(st.st_mode)}"
    return None


def _with_parents(path: Path, stop: Path | None = None) -> list[Path]:
    chain = [path]
    for parent in path.parents:
        if parent == stop:
            break
        chain.append(parent)
    return chain


def _executed_and_imported(pid: int, venv: Path) -> set[Path]:
    """What the running agent executes or may import: its interpreter, every mapped library, and
    every file on its import path (the same interpreter and flags as the Run step)."""
    files = {Path(os.readlink(f"/proc/{pid}/exe"))}
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/"):
            files.add(Path(parts[5]))
    path = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-B", "-c", "import sys; print(repr(sys.path))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for entry in map(Path, eval(path)):
        if entry.is_dir():
            files.update(entry.rglob("*"))
            files.add(entry)
    return files


def test_install_and_run_as_the_nucleus_would(
    installed: Deployment,
    install_root: Path,
    interpreter: Path,
    nucleus: NucleusStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    venv = install_root / installed.component.version
    assert (venv / "bin" / "python").exists()
    # Nothing of the environment is in the run-as user's directories.
    assert not list(installed.work.iterdir())
    root = installed.root
    env = {
        **_env(interpreter, root),
        "AWS_IOT_THING_NAME": THING,
        "AWS_REGION": "eu-west-1",
        "GGC_VERSION": "2.14.3",
        "GG_ROOT_CA_PATH": str(root / "rootCA.pem"),
        # Keep any AWS call on loopback: static credentials, a closed local endpoint.
        "AWS_ACCESS_KEY_ID": "AKIDLIFECYCLETEST",
        "AWS_SECRET_ACCESS_KEY": "lifecycle-secret",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
        **nucleus.env(),
    }
    nucleus.set_configuration(NAME, {"intervalSeconds": 3600, "transport": "ipc"})
    run = installed.start("Run", env)
    try:
        topic = f"dt/gghealth/{THING}/health"
        assert nucleus.wait_for(lambda: any(p.topic == topic for p in nucleus.publishes), 60), (
            run.stderr.read() if run.poll() is not None and run.stderr else "no report"
        )
        report = json.loads(next(p.payload for p in nucleus.publishes if p.topic == topic))
        assert report["thing_name"] == THING and report["sequence"] == 1
        assert {c["id"] for c in report["checks"]} >= {
            "certificate.validity",
            "certificate.key_match",
        }
        assert "RUNNING" in nucleus.states
        # The step's Setenv reached the agent itself (the script execs it).
        environ = Path(f"/proc/{run.pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environ
        # Root executes and imports only what root owns and nobody else may change.
        files = _executed_and_imported(run.pid, venv)
        assert any(venv in f.parents for f in files)
        boundary = tmp_path_factory.getbasetemp()  # the test's stand-in for / above /opt
        unsafe = {
            why
            for f in files
            for p in _with_parents(f, boundary if boundary in f.parents else None)
            if (why := _unsafe(p))
        }
        assert unsafe == set()
    finally:
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=30)
    assert run.returncode == 0, err


def test_run_refuses_an_environment_others_could_change(
    installed: Deployment, install_root: Path, interpreter: Path
) -> None:
    target = next((install_root / installed.component.version).rglob("agent/cli.py"))
    mode = target.stat().st_mode
    target.chmod(mode | stat.S_IWGRP)
    try:
        run = installed.start("Run", _env(interpreter, installed.root))
        _, err = run.communicate(timeout=60)
    finally:
        target.chmod(mode)
    assert run.returncode == 1
    assert f"refusing to start: {target}" in err and "redeploy" in err


def test_install_refuses_a_python_it_has_no_wheels_for(tmp_path: Path, interpreter: Path) -> None:
    build = _package(tmp_path / "build", OTHER_PYTHON, tmp_path / "opt" / "gghealth")
    deployment = Deployment.of(build, tmp_path / "greengrass", PLATFORM, THING)
    done = deployment.run("Install", _env(interpreter, tmp_path))
    assert done.returncode == 1
    assert f"is Python {PYTHON}" in done.stderr
    assert f"wheels for CPython {OTHER_PYTHON} on {ARCH} only" in done.stderr
    assert not (tmp_path / "opt").exists()  # stopped before touching anything


def test_install_names_python3_venv_when_the_interpreter_cannot_make_a_venv(
    package: Path, interpreter: Path, tmp_path: Path
) -> None:
    # Debian and Raspberry Pi OS ship ensurepip in python3-venv; without it, import fails so.
    hide = tmp_path / "no-ensurepip" / "ensurepip"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ImportError('ensurepip is not available')\n")
    deployment = Deployment.of(package, tmp_path / "greengrass", PLATFORM, THING)
    env = {**_env(interpreter, tmp_path), "PYTHONPATH": str(hide.parent)}
    done = deployment.run("Install", env)
    assert done.returncode == 1
    assert "cannot create a virtual environment: install python3-venv" in done.stderr
    assert f"(Python {PYTHON})" in done.stderr


def test_32_bit_arm_is_refused_at_install_with_the_way_out(package: Path, tmp_path: Path) -> None:
    arm = {"os": "linux", "architecture": "arm"}
    deployment = Deployment.of(package, tmp_path / "greengrass", arm, THING)
    done = deployment.run("Install", {"PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert "32-bit ARM" in done.stderr and "64-bit OS" in done.stderr
