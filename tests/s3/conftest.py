"""The S3 test world: a moto server with enforced IAM, a token exchange role whose policy allows
some buckets and denies others, and realistic Greengrass roots whose deployed recipes are the
real-world fixture recipes, resolved as the nucleus stores them in ``packages/recipes/``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.checks.base import CheckContext, Kept
from agent.checks.s3 import CHECKS
from agent.config import build_config
from agent.greengrass.recipes import legacy_recipe_file_name, recipe_file_name
from agent.greengrass.root import load_root
from agent.report import CheckResult, Status
from agent.runner import run_checks
from tests.conftest import SHARED_FIXTURES
from tests.peers.iot_credentials import iot_credentials  # noqa: F401  (fixture)
from tests.peers.moto import (  # noqa: F401  (fixtures)
    ACCOUNT,
    MotoServer,
    moto_server,
    moto_server_open,
)
from tests.peers.silent import blackhole, canned, closed_port  # noqa: F401  (fixtures)
from tests.peers.tes import tes  # noqa: F401  (fixture)

ROLE = "GreengrassV2TokenExchangeRole"
THING = "pi-42"
RECIPES = SHARED_FIXTURES / "recipes"


@dataclass
class World:
    """Names of everything created in moto for the S3 tests (suffixed: the server is shared)."""

    moto: MotoServer
    suffix: str
    role_creds: dict[str, Any] = field(default_factory=dict)
    user_creds: dict[str, str] = field(default_factory=dict)

    def bucket(self, kind: str) -> str:
        """The bucket of one kind: ok, nolocation, denied, gone, write, nodelete, readonly, eu."""
        return f"gg-{kind}-{self.suffix}"

    @property
    def role_env(self) -> dict[str, str]:
        """The role's temporary credentials as environment variables."""
        return {
            "AWS_ACCESS_KEY_ID": self.role_creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": self.role_creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": self.role_creds["SessionToken"],
        }


def role_policy(w: World) -> dict[str, Any]:
    """The token exchange role's policy: what each bucket kind allows or denies."""

    def arn(kind: str, objects: str = "") -> str:
        return f"arn:aws:s3:::{w.bucket(kind)}{objects}"

    # moto evaluates HeadBucket as "s3:HeadBucket"; AWS evaluates it as s3:ListBucket. Grant
    # both so the verdicts match what AWS would give.
    read = ["s3:GetObject", "s3:GetBucketLocation", "s3:ListBucket", "s3:HeadBucket"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": read,
                "Resource": [
                    arn(k, s)
                    for k in ("ok", "write", "nodelete", "readonly", "eu", "gone")
                    for s in ("", "/*")
                ],
            },
            # The classic "Failed to download artifact": GetObject without GetBucketLocation.
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket", "s3:HeadBucket"],
                "Resource": [arn("nolocation"), arn("nolocation", "/*")],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": arn("write", "/gghealth-probe/*"),
            },
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": arn("nodelete", "/gghealth-probe/*"),
            },
            {
                "Effect": "Deny",
                "Action": "s3:*",
                "Resource": [arn("denied"), arn("denied", "/*")],
            },
        ],
    }


ARTIFACT_KEYS = {
    "ok": [
        "aws.greengrass.SecureTunneling/2.0.0/GreengrassV2SecureTunnelingComponent-x86_64.zip",
        "aws.greengrass.SecureTunneling/2.0.0/GreengrassV2SecureTunnelingComponent-arm64.zip",
        "aws.greengrass.SecureTunneling/2.0.0/GreengrassV2SecureTunnelingComponent-armv7l.zip",
    ],
    "nolocation": ["aws.greengrass.labs.S3FileDownloader/1.0.0/S3FileDownloader-1.0.0.jar"],
    "denied": ["aws.greengrass.labs.CertificateRotator/1.1.0/certificate-rotator.zip"],
    "write": [],
    "nodelete": [],
    "readonly": [],
}


@pytest.fixture(scope="session")
def world(moto_server: MotoServer) -> World:  # noqa: F811
    """Buckets, objects, the token exchange role and a device user, created through moto's IAM."""
    w = World(moto_server, uuid.uuid4().hex[:8])
    s3 = moto_server.client("s3")
    for kind, keys in ARTIFACT_KEYS.items():
        s3.create_bucket(Bucket=w.bucket(kind))
        for key in keys:
            s3.put_object(Bucket=w.bucket(kind), Key=key, Body=b"PK\x03\x04 artifact")
    moto_server.client("s3", region="eu-west-1").create_bucket(
        Bucket=w.bucket("eu"), CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    moto_server.create_role(f"{ROLE}-{w.suffix}", role_policy(w))
    w.role_creds = moto_server.assume_role(f"{ROLE}-{w.suffix}", session=THING)
    w.user_creds = moto_server.create_user(f"device-user-{w.suffix}", role_policy(w))
    return w


def resolve_fixture_recipe(fixture: str, name: str, version: str, bucket: str) -> str:
    """A fixture recipe as a deployed one: GDK placeholders replaced, as `gdk publish` does."""
    text = (RECIPES / fixture).read_text()
    for placeholder, value in (
        ("{COMPONENT_NAME}", name),
        ("{COMPONENT_VERSION}", version),
        ("COMPONENT_NAME", name),
        ("COMPONENT_VERSION", version),
        ("BUCKET_NAME", bucket),
        ("aws-greengrass-components", bucket),
    ):
        text = text.replace(placeholder, value)
    return text


@dataclass
class RootBuilder:
    """Writes a Greengrass root as the nucleus leaves it: effectiveConfig + packages/recipes."""

    root: Path
    nucleus: dict[str, Any] = field(default_factory=dict)
    system: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)

    def deploy(self, name: str, version: str, recipe_text: str, *, legacy: bool = False) -> Path:
        """Deploy ``name@version``: its recipe file (+ metadata) and its services entry."""
        self.services[name] = {"componentType": "GENERIC", "version": version, "configuration": {}}
        return self.store(name, version, recipe_text, legacy=legacy)

    def store(self, name: str, version: str, recipe_text: str, *, legacy: bool = False) -> Path:
        """Put a recipe in the component store without deploying it (a stale version)."""
        recipes = self.root / "packages" / "recipes"
        recipes.mkdir(parents=True, exist_ok=True)
        file_name = (
            legacy_recipe_file_name(name, version) if legacy else recipe_file_name(name, version)
        )
        path = recipes / file_name
        path.write_text(recipe_text)
        if not legacy:
            meta = recipes / file_name.replace(".recipe.yaml", ".metadata.json")
            meta.write_text(json.dumps({"componentName": name, "componentVersion": version}))
        return path

    def write(self) -> Path:
        """Write config/effectiveConfig.yaml and return the root."""
        doc = {
            "system": {"rootpath": str(self.root), "thingName": THING, **self.system},
            "services": {
                "aws.greengrass.Nucleus": {
                    "componentType": "NUCLEUS",
                    "version": "2.12.0",
                    "configuration": {
                        "awsRegion": "us-east-1",
                        "iotRoleAlias": "GreengrassCoreTokenExchangeRoleAlias",
                        "iotCredEndpoint": "c1a2b3c4d5e6f7.credentials.iot.us-east-1.amazonaws.com",
                        "iotDataEndpoint": "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com",
                        **self.nucleus,
                    },
                },
                "main": {"lifecycle": {}, "dependencies": sorted(self.services)},
                **self.services,
            },
        }
        config = self.root / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "effectiveConfig.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        return self.root


@pytest.fixture
def root_builder(tmp_path: Path) -> RootBuilder:
    """An empty root under tmp_path/greengrass/v2."""
    return RootBuilder(tmp_path / "greengrass" / "v2")


WORLD_COMPONENTS = [
    # (fixture recipe, component, version, bucket its artifacts point at, legacy file name)
    ("aws.greengrass.SecureTunneling-recipe-prod.yaml", "aws.greengrass.SecureTunneling", "2.0.0",
     "ok", False),
    ("aws.greengrass.labs.S3FileDownloader-recipe.yaml", "aws.greengrass.labs.S3FileDownloader",
     "1.0.0", "nolocation", False),
    ("aws.greengrass.labs.CertificateRotator-recipe.yaml",
     "aws.greengrass.labs.CertificateRotator", "1.1.0", "denied", False),
    ("aws.greengrass.labs.HomeAssistant-recipe.yaml", "aws.greengrass.labs.HomeAssistant", "1.0.0",
     "ok", False),
    ("gg-pubsub-sdk-component-template-recipe.json", "com.example.PubSub", "0.0.1", "gone", True),
]  # fmt: skip


def deploy_world_components(builder: RootBuilder, w: World) -> None:
    """The deployed components of the world device, from the real fixture recipes."""
    for fixture, name, version, bucket, legacy in WORLD_COMPONENTS:
        recipe = resolve_fixture_recipe(fixture, name, version, w.bucket(bucket))
        builder.deploy(name, version, recipe, legacy=legacy)
    # A stale version left in the store points at the denied bucket: it must be ignored.
    stale = resolve_fixture_recipe(
        "aws.greengrass.SecureTunneling-recipe-prod.yaml",
        "aws.greengrass.SecureTunneling",
        "2.0.0",
        w.bucket("denied"),
    )
    builder.store(
        "aws.greengrass.SecureTunneling",
        "1.9.9",
        stale.replace('ComponentVersion: "2.0.0"', 'ComponentVersion: "1.9.9"'),
    )


WORLD_BUCKETS = [
    ("ok", "read"),
    ("write", "readwrite"),
    ("nodelete", "write"),
    ("readonly", "write"),
    ("eu", "read"),
    ("gone", "read"),
    ("denied", "read"),
]


def s3_config(w: World, **extra: Any) -> dict[str, Any]:
    """The agent configuration of the world device."""
    s3: dict[str, Any] = {
        "buckets": [{"name": w.bucket(kind), "access": access} for kind, access in WORLD_BUCKETS],
        "expectedRole": f"{ROLE}-{w.suffix}",
        **extra,
    }
    return {"s3": s3}


Run = Callable[..., list[CheckResult]]


@pytest.fixture
def run_s3() -> Run:
    """Run the s3 checks on a root with an explicit environment and configuration."""

    def run(
        root: Path,
        env: Mapping[str, str],
        config: Mapping[str, Any] | None = None,
        kept: Kept | None = None,
    ) -> list[CheckResult]:
        ctx = CheckContext(
            config=build_config(dict(config or {})),
            greengrass=load_root(root),
            env=dict(env),
            kept=kept if kept is not None else Kept(),
        )
        return assert_folded(run_checks(CHECKS, ctx))

    return run


def assert_folded(results: list[CheckResult]) -> list[CheckResult]:
    """``results``, after checking that every non-OK one carries the details every area's
    results carry (:func:`agent.report.fold`): ``reason`` is the worst finding's, first of
    ``reasons`` and of ``findings``, and the message names every finding."""
    for r in results:
        if r.status is Status.OK:
            assert not {"reason", "reasons", "findings"} & r.details.keys(), r
            continue
        reasons, findings = r.details["reasons"], r.details["findings"]
        assert r.details["reason"] == reasons[0] == findings[0]["code"], r
        assert [f["code"] for f in findings] == reasons, r
        assert findings[0]["status"] == r.status.value, r
        assert all(f["message"] in r.message for f in findings), r
    return results


def by_target(results: list[CheckResult], check_id: str) -> dict[str, CheckResult]:
    """The results of one check, keyed by target."""
    return {r.target: r for r in results if r.id == check_id}


def base_env(w: World, tmp_path: Path) -> dict[str, str]:
    """Endpoints pointing at moto and a HOME with no AWS profile."""
    return {"AWS_ENDPOINT_URL": w.moto.url, "HOME": str(tmp_path), "AWS_REGION": "us-east-1"}


__all__ = ["ACCOUNT", "THING", "World"]
