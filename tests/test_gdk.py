"""`gdk component build` and `gdk component publish` with the real GDK CLI.

GDK is shared/tools/gdk-cli, installed by `make gdk` into .venv-gdk (`make test` does it). It runs
unchanged, from a copy of the project (the files git knows, so the test never writes into the
checkout), as a Greengrass developer would run it from the project root.

Publish talks to moto (STS GetCallerIdentity, S3; IAM enforced, as a publisher allowed only what
GDK needs) and, for the Greengrass v2 control plane, to a stand-in on loopback: moto has no
greengrassv2 (it answers 404 to ListComponentVersions, the call GDK makes before it uploads
anything, so with moto alone publish stops before S3). GDK's process runs with a guard that
refuses every connection off loopback: GDK's look-ups on GitHub are refused (GDK carries
on), and an AWS call that missed the local endpoints would fail the test.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from agent import __version__
from agent.config import DEFAULT_COMPONENT_NAME
from scripts import package
from scripts.wheelhouse import MACHINES, PYTHONS
from tests.conftest import REPO
from tests.peers.base import serving, unavailable
from tests.peers.moto import ACCOUNT, REGION, MotoServer

GDK = REPO / ".venv-gdk" / "bin" / "gdk"
GDK_CONFIG = json.loads((REPO / "gdk-config.json").read_text())
((NAME, COMPONENT),) = GDK_CONFIG["component"].items()
VERSION = COMPONENT["version"]
BUCKET = f"{COMPONENT['publish']['bucket']}-{COMPONENT['publish']['region']}-{ACCOUNT}"
"""The bucket GDK publishes to: the configured prefix, the region and the account."""
ARTIFACTS = Path("greengrass-build", "artifacts", NAME, VERSION)
GDK_LOOKUPS = {"raw.githubusercontent.com", "api.github.com"}
"""What every GDK command looks up on GitHub, and carries on without: a newer GDK release
(gdk/common/utils.py, cli_version_check) and the latest testing framework release
(gdk/common/config/TestConfiguration.py, which GDKProject builds for every command)."""

# Loaded by GDK's interpreter (PYTHONPATH): refuses, and records, every connection and name
# lookup that is not on loopback. PYTHONPATH is dropped at once, so what GDK starts (make, the
# build's pip) runs without it.
GUARD = """\
import os, sys
os.environ.pop("PYTHONPATH", None)
_log = os.environ.pop("GGHEALTH_GDK_REFUSED")
_LOOPBACK = ("127.", "::1", "localhost")

def _guard(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    else:
        return
    if isinstance(host, bytes):
        host = host.decode()
    if host is None or str(host).startswith(_LOOPBACK):
        return
    with open(_log, "a") as f:
        f.write(f"{host}\\n")
    raise OSError(f"test guard: {host} is not on loopback")

sys.addaudithook(_guard)
"""


@dataclass
class Gdk:
    """A GDK command's outcome: exit status, output and the hosts it was refused."""

    done: subprocess.CompletedProcess[str]
    seconds: float
    refused: list[str]

    def __str__(self) -> str:
        return (
            f"exit {self.done.returncode}\n{self.done.stdout[-6000:]}\n{self.done.stderr[-6000:]}"
        )


def _project_copy(dest: Path) -> Path:
    """The files git knows (tracked, and new ones not ignored) copied to ``dest``."""
    if shutil.which("git") is None:
        unavailable("git is not installed")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = REPO / name
        if not os.path.lexists(src):  # deleted in the work tree, not yet in the index
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name, follow_symlinks=False)
    return dest


def run_gdk(project: Path, *args: str, env: dict[str, str] | None = None) -> Gdk:
    """``gdk ARGS`` in ``project`` with the loopback guard and a clean environment."""
    if not GDK.exists():
        unavailable(f"GDK is not installed at {GDK}: run `make gdk`")
    guard = project.parent / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD)
    refused = guard / f"refused-{args[-1]}.txt"
    refused.write_text("")
    clean = {
        k: v
        for k, v in os.environ.items()
        # No AWS settings of this machine; no make variables of a `make test` around us (its
        # command-line variables reach a sub-make through MAKEFLAGS); the build's own defaults.
        if not k.startswith("AWS_")
        and k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
        and k not in {"ARCH", "PYTHON_VERSIONS", "VERSION", "BUCKET", "PYTHONPATH"}
    }
    clean.update(PYTHONPATH=str(guard), GGHEALTH_GDK_REFUSED=str(refused), **(env or {}))
    start = time.monotonic()
    done = subprocess.run(
        [str(GDK), *args],
        cwd=project,
        env=clean,
        capture_output=True,
        text=True,
        timeout=1200,
        stdin=subprocess.DEVNULL,
    )
    return Gdk(done, time.monotonic() - start, refused.read_text().split())


def _digest(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


@dataclass
class Built:
    project: Path
    gdk: Gdk
    recipes: list[str]
    """greengrass-build/recipes/ right after the build."""
    recipe: dict[str, Any]
    recipe_text: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """`gdk component build` as released: every architecture, every supported CPython."""
    project = _project_copy(tmp_path_factory.mktemp("gdk") / "project")
    build = run_gdk(project, "component", "build")
    assert build.done.returncode == 0, build
    recipes = project / "greengrass-build" / "recipes"
    text = (recipes / "recipe.yaml").read_text() if (recipes / "recipe.yaml").exists() else ""
    return Built(
        project=project,
        gdk=build,
        recipes=sorted(p.name for p in recipes.iterdir()),
        recipe=yaml.safe_load(text) if text else {},
        recipe_text=text,
    )


def _artifacts(recipe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Architecture -> the one artifact of its manifest (manifests without artifacts left out)."""
    found = {}
    for manifest in recipe["Manifests"]:
        if "Artifacts" in manifest:
            (artifact,) = manifest["Artifacts"]
            found[manifest["Platform"]["architecture"]] = artifact
    return found


def test_the_gdk_config_is_the_component_as_released() -> None:
    """GDK publishes the name and version of gdk-config.json: those of the agent it builds.

    And GDK finds the project's recipe where it looks, recipe.yaml in the project root (a link
    to recipes/recipe.yaml, which `make package` fills in).
    """
    assert package.gdk_component(REPO / "gdk-config.json") == (
        DEFAULT_COMPONENT_NAME,
        __version__,
        package.DEFAULT_AUTHOR,
    )
    assert (REPO / "recipe.yaml").resolve() == (REPO / "recipes" / "recipe.yaml").resolve()


@pytest.mark.parametrize("version", ["NEXT_PATCH", ""])
def test_a_gdk_build_without_an_explicit_version_is_refused(tmp_path: Path, version: str) -> None:
    """The version is built into the Install and Run steps: GDK's NEXT_PATCH (a version found
    only at publish) would leave them naming another one, so the build refuses it, saying why."""
    config = copy.deepcopy(GDK_CONFIG)
    config["component"][NAME]["version"] = version
    (tmp_path / "gdk-config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit, match="give the component an explicit version") as refused:
        package.gdk_component(tmp_path / "gdk-config.json")
    assert "Install and Run steps" in str(refused.value)


def test_gdk_build_writes_the_recipe_publish_reads_and_every_zip_it_names(built: Built) -> None:
    # The one recipe, under the name GDK's publish reads: that of the project's recipe file.
    assert built.recipes == ["recipe.yaml"], built.gdk
    recipe = built.recipe
    assert (recipe["ComponentName"], recipe["ComponentVersion"]) == (NAME, VERSION)
    assert recipe["ComponentPublisher"] == COMPONENT["author"]
    # Filled in: no {UPPER_CASE} placeholder left, the nucleus's {lower:case} variables kept.
    assert not re.findall(r"\{[A-Z_]+\}", built.recipe_text)
    assert "{artifacts:decompressedPath}" in built.recipe_text
    architectures = [m["Platform"]["architecture"] for m in recipe["Manifests"]]
    assert sorted(architectures) == sorted([*MACHINES, "arm"])
    # Each architecture's zip is where publish uploads from, named by its manifest's URI (GDK
    # matches them by file name), with the Digest the nucleus checks; nothing else is there.
    artifacts = _artifacts(recipe)
    assert sorted(artifacts) == sorted(MACHINES)
    directory = built.project / ARTIFACTS
    for arch, artifact in artifacts.items():
        zip_name = package.artifact_name(arch)
        assert artifact["URI"] == f"s3://BUCKET_NAME/{NAME}/{VERSION}/{zip_name}"
        assert artifact["Digest"] == _digest(directory / zip_name)
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        package.artifact_name(a) for a in MACHINES
    )
    # The default build is the full release: wheels of every supported CPython in each zip.
    for manifest in recipe["Manifests"]:
        if "Artifacts" in manifest:
            assert f"{'|'.join(PYTHONS)})" in manifest["Lifecycle"]["Install"]["Script"]
    assert set(built.gdk.refused) <= GDK_LOOKUPS, built.gdk.refused


@dataclass
class GreengrassV2:
    """A stand-in for the Greengrass v2 control plane (moto has none): ListComponentVersions and
    CreateComponentVersion, as boto3 calls them; records every request."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, list[str]] = field(default_factory=dict)


def _greengrass_handler(state: GreengrassV2) -> type[BaseHTTPRequestHandler]:
    arn_prefix = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _call(self, operation: str, **details: Any) -> None:
            # "AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, ..."
            credential = self.headers.get("Authorization", "").split("Credential=")[-1]
            key_id, _, region, service, *_ = credential.split(",")[0].split("/") + [""] * 4
            state.calls.append(
                {"operation": operation, "key_id": key_id, "scope": (region, service), **details}
            )

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            match = re.fullmatch(r"/greengrass/v2/components/(.+)/versions", path)
            if not match:
                return self._answer(404, {"message": f"no route {path}"})
            arn = unquote(match.group(1))
            self._call("ListComponentVersions", arn=arn)
            name = arn.removeprefix(arn_prefix)
            versions = [
                {"componentName": name, "componentVersion": v, "arn": f"{arn}:versions:{v}"}
                for v in sorted(state.versions.get(name, []), reverse=True)
            ]
            self._answer(200, {"componentVersions": versions})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if urlsplit(self.path).path != "/greengrass/v2/createComponentVersion":
                return self._answer(404, {"message": f"no route {self.path}"})
            recipe_text = base64.b64decode(json.loads(body)["inlineRecipe"]).decode()
            self._call("CreateComponentVersion", recipe=recipe_text)
            recipe = yaml.safe_load(recipe_text)
            name, version = recipe["ComponentName"], recipe["ComponentVersion"]
            state.versions.setdefault(name, []).append(version)
            self._answer(
                201,
                {
                    "arn": f"{arn_prefix}{name}:versions:{version}",
                    "componentName": name,
                    "componentVersion": version,
                    "creationTimestamp": time.time(),
                    "status": {"componentState": "REQUESTED", "message": "NONE", "errors": {}},
                },
            )

    return Handler


@pytest.fixture
def greengrassv2() -> Iterator[GreengrassV2]:
    state = GreengrassV2()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _greengrass_handler(state))
    with serving(server, "greengrassv2") as port:
        state.url = f"http://127.0.0.1:{port}"
        yield state


PUBLISHER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:CreateBucket", "s3:GetBucketLocation", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        }
    ],
}
"""What `gdk component publish` needs of S3 (s3:CreateBucket for the first publish only), besides
greengrass:ListComponentVersions and greengrass:CreateComponentVersion, which the stand-in does
not authorise. STS GetCallerIdentity needs no permission."""


def _publish_env(
    moto: MotoServer, greengrass: GreengrassV2, creds: dict[str, str]
) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_ENDPOINT_URL_GREENGRASSV2": greengrass.url,
        "AWS_ACCESS_KEY_ID": creds["key_id"],
        "AWS_SECRET_ACCESS_KEY": creds["secret"],
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,  # GDK's STS client takes its region from here
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.mark.peer
def test_gdk_publish_uploads_to_its_bucket_and_creates_the_version_from_the_build(
    built: Built, moto_server: MotoServer, greengrassv2: GreengrassV2
) -> None:
    s3 = moto_server.client("s3")
    assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    publisher = moto_server.create_user("gdk-publisher", PUBLISHER_POLICY)

    publish = run_gdk(
        built.project,
        "component",
        "publish",
        env=_publish_env(moto_server, greengrassv2, publisher),
    )
    assert publish.done.returncode == 0, publish
    # Every AWS call went to loopback; the only refusals were GDK's look-ups on GitHub.
    assert set(publish.refused) <= GDK_LOOKUPS, publish.refused

    # The bucket GDK names <bucket>-<region>-<account> and creates, in the configured region,
    # holding each zip under <name>/<version>/, byte for byte.
    assert s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] is None  # us-east-1
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {f"{NAME}/{VERSION}/{package.artifact_name(a)}" for a in MACHINES}
    uploaded = {}
    for key in keys:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        uploaded[f"s3://{BUCKET}/{key}"] = base64.b64encode(hashlib.sha256(body).digest()).decode()
        assert body == (built.project / ARTIFACTS / key.rsplit("/", 1)[1]).read_bytes()

    # GDK asked for the component's versions in the configured account and region, then created
    # this one, as the publisher, from the built recipe with only the artifact URIs rewritten.
    calls = greengrassv2.calls
    assert [c["operation"] for c in calls] == ["ListComponentVersions", "CreateComponentVersion"]
    assert calls[0]["arn"] == f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:{NAME}"
    assert {(c["key_id"], c["scope"]) for c in calls} == {
        (publisher["key_id"], (REGION, "greengrass"))
    }
    published = yaml.safe_load(calls[1]["recipe"])
    expected = copy.deepcopy(built.recipe)
    for artifact in _artifacts(expected).values():
        artifact["URI"] = artifact["URI"].replace("s3://BUCKET_NAME/", f"s3://{BUCKET}/")
    assert published == expected
    # Every artifact the published recipe names is in the bucket with the Digest it states:
    # what the nucleus downloads (with s3:GetObject on the bucket) and checks.
    assert {a["URI"]: a["Digest"] for a in _artifacts(published).values()} == uploaded
    # GDK keeps what it published beside the build's recipe.
    recipes = built.project / "greengrass-build" / "recipes"
    assert yaml.safe_load((recipes / f"{NAME}-{VERSION}.yaml").read_text()) == published
    print(
        f"gdk component build {built.gdk.seconds:.0f} s, publish {publish.seconds:.0f} s",
        file=sys.stderr,
    )


@pytest.mark.peer
def test_gdk_publish_denied_the_upload_creates_no_component_version(
    built: Built, moto_server: MotoServer, greengrassv2: GreengrassV2
) -> None:
    """A version is created only once its artifacts are in S3: a publisher that may not upload
    (nor create the bucket, so the outcome is the same before or after the publish above) fails
    with S3's AccessDenied, and Greengrass is never asked to create the version."""
    policy = copy.deepcopy(PUBLISHER_POLICY)
    policy["Statement"][0]["Action"] = ["s3:GetBucketLocation"]
    publisher = moto_server.create_user("gdk-publisher-no-upload", policy)
    publish = run_gdk(
        built.project,
        "component",
        "publish",
        env=_publish_env(moto_server, greengrassv2, publisher),
    )
    assert publish.done.returncode == 1, publish
    assert "AccessDenied" in publish.done.stdout + publish.done.stderr, publish
    assert "CreateComponentVersion" not in [c["operation"] for c in greengrassv2.calls]
