"""The packaged component, installed and run the way a nucleus would do it.

``make package`` output is unzipped where the nucleus puts artifacts, the recipe's variables are
resolved, its Install script runs (a venv from the bundled wheels, offline) and then its Run
script, with the environment a nucleus gives a component, against the nucleus stand-in.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import parse_wheel_filename

from agent.demo import THING, build_demo_root
from tests.conftest import REPO
from tests.lockfile import RUNTIME_LOCK, pins_here
from tests.nucleus.standin import NucleusStandIn

NAME = "gghealth.HealthAgent"
# Greengrass platform architecture names: https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html
ARCH = {"x86_64": "amd64", "aarch64": "aarch64", "armv7l": "arm"}[platform.machine()]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("greengrass-build")
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "package.py"),
            "--out",
            str(out),
            "--platform",
            "native",
            "--bucket",
            "test-bucket",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def resolve(script: str, variables: dict[str, str]) -> str:
    for key, value in variables.items():
        script = script.replace("{" + key + "}", value)
    assert "{" not in script.replace("${", ""), f"unresolved recipe variable in {script!r}"
    return script


def test_recipe_is_least_privilege_and_names_its_artifact(package: Path) -> None:
    from agent import __version__

    recipe = yaml.safe_load((package / "recipes" / f"{NAME}-{__version__}.yaml").read_text())
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
    assert {m["Platform"]["architecture"] for m in recipe["Manifests"]} == {
        "amd64",
        "aarch64",
        "arm",
    }
    uris = {a["URI"] for m in recipe["Manifests"] for a in m["Artifacts"]}
    assert uris == {f"s3://test-bucket/{NAME}/{__version__}/gghealth.zip"}
    # The default configuration is valid for the agent itself.
    from agent.config import build_config

    default = dict(recipe["ComponentConfiguration"]["DefaultConfiguration"])
    assert build_config(default).component_name == NAME


def test_the_artifact_bundles_exactly_the_locked_runtime_wheels(package: Path) -> None:
    """The wheels a device installs are the ones the suite ran with: same versions, same files."""
    from agent import __version__

    zip_path = package / "artifacts" / NAME / __version__ / "gghealth.zip"
    with zipfile.ZipFile(zip_path) as zf:
        wheels = {
            Path(n).name: hashlib.sha256(zf.read(n)).hexdigest()
            for n in zf.namelist()
            if n.startswith("wheels/")
        }
    bundled = {}
    for file_name, digest in wheels.items():
        name, version, _, _ = parse_wheel_filename(file_name)
        bundled[name] = str(version)
        assert digest in pins_here(RUNTIME_LOCK)[name].hashes, f"{file_name}: not the locked file"
    assert bundled == {n: p.version for n, p in pins_here(RUNTIME_LOCK).items()}


def test_install_and_run_as_the_nucleus_would(
    package: Path,
    nucleus: NucleusStandIn,
    tmp_path: Path,
) -> None:
    from agent import __version__

    recipe = yaml.safe_load((package / "recipes" / f"{NAME}-{__version__}.yaml").read_text())
    (manifest,) = [m for m in recipe["Manifests"] if m["Platform"]["architecture"] == ARCH]
    root = build_demo_root(tmp_path / "greengrass" / "v2")
    decompressed = root / "packages" / "artifacts-unarchived" / NAME / __version__
    with zipfile.ZipFile(package / "artifacts" / NAME / __version__ / "gghealth.zip") as zf:
        zf.extractall(decompressed / "gghealth")
    work = root / "work" / NAME
    work.mkdir(parents=True)
    variables = {
        "artifacts:decompressedPath": str(decompressed),
        "work:path": str(work),
        "kernel:rootPath": str(root),
        "iot:thingName": THING,
    }
    env: dict[str, Any] = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
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
    install = manifest["Lifecycle"]["Install"]
    subprocess.run(
        ["sh", "-c", resolve(install["Script"], variables)],
        env=env,
        check=True,
        timeout=install["Timeout"],
        capture_output=True,
    )
    assert (work / "venv" / "bin" / "gg-health-agent").exists()

    nucleus.set_configuration(NAME, {"intervalSeconds": 3600, "transport": "ipc"})
    run_step = manifest["Lifecycle"]["Run"]
    run = subprocess.Popen(
        ["sh", "-c", resolve(run_step["Script"], variables)],
        env={**env, **run_step.get("Setenv", {})},
        cwd=work,  # the nucleus starts components in their work directory
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        topic = f"dt/gghealth/{THING}/health"
        assert nucleus.wait_for(lambda: any(p.topic == topic for p in nucleus.publishes), 60)
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
    finally:
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=30)
    assert run.returncode == 0, err
