"""A running agent reuses its S3 audit for ``s3.refreshSeconds`` and probes again at once when
what the verdicts depend on changes. Requests are counted by moto's own request recorder
(filtered by the access key the agent signs with), so "no request" means none reached AWS."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agent.checks.base import CheckContext, Kept
from agent.checks.s3 import CHECKS
from agent.config import build_config
from agent.greengrass.root import load_root
from agent.report import CheckResult, Status
from agent.runner import run_checks
from tests.peers.silent import Canned
from tests.peers.tes import TokenExchangeService
from tests.s3.conftest import RootBuilder, World, assert_folded, base_env, by_target

pytestmark = pytest.mark.peer

T0 = datetime(2026, 5, 4, 12, 0, 0, tzinfo=timezone.utc)
ARTIFACT = "com.example.App/1.0.0/app.zip"
RECIPE = """
RecipeFormatVersion: "2020-01-25"
ComponentName: {name}
ComponentVersion: "1.0.0"
Manifests:
  - Platform: {{os: "*"}}
    Artifacts:
      - URI: s3://{bucket}/{key}
"""

Count = Callable[[], int]


@pytest.fixture
def requests_signed_with(world: World) -> Iterator[Callable[[str], Count]]:
    """``counter(key_id)()``: requests moto received signed with that access key id."""
    url = world.moto.url + "/moto-api/recorder/"

    def call(action: str, method: str = "POST") -> bytes:
        data = b"" if method == "POST" else None
        with urllib.request.urlopen(
            urllib.request.Request(url + action, data=data, method=method), timeout=10
        ) as resp:
            body: bytes = resp.read()
            return body

    call("reset-recording")
    call("start-recording")

    def counter(key_id: str) -> Count:
        def count() -> int:
            lines = call("download-recording", "GET").decode().splitlines()
            entries = [json.loads(line) for line in lines if line.strip()]
            return sum(
                f"Credential={key_id}/" in (e["headers"].get("Authorization") or "")
                for e in entries
            )

        return count

    try:
        yield counter
    finally:
        call("stop-recording")
        call("reset-recording")


@pytest.fixture
def device(world: World, root_builder: RootBuilder) -> RootBuilder:
    """A device with one deployed component whose artifact is in the readable bucket."""
    s3 = world.moto.client("s3")
    s3.put_object(Bucket=world.bucket("ok"), Key=ARTIFACT, Body=b"PK\x03\x04 app")
    deploy(root_builder, "com.example.App", world.bucket("ok"), ARTIFACT)
    root_builder.write()
    return root_builder


def deploy(builder: RootBuilder, name: str, bucket: str, key: str) -> None:
    builder.deploy(name, "1.0.0", RECIPE.format(name=name, bucket=bucket, key=key))


def config(world: World, **s3: Any) -> dict[str, Any]:
    return {
        "s3": {
            "buckets": [
                {"name": world.bucket("ok"), "access": "read"},
                {"name": world.bucket("write"), "access": "readwrite"},
            ],
            **s3,
        }
    }


class Agent:
    """Cycles of the s3 area over one cache, as a running agent does, with a pinned clock."""

    def __init__(self, root: Path, env: Mapping[str, str], cfg: dict[str, Any]) -> None:
        self.root, self.env, self.cfg = root, dict(env), cfg
        self.kept = Kept()

    def cycle(self, at: datetime) -> list[CheckResult]:
        ctx = CheckContext(
            config=build_config(self.cfg),
            greengrass=load_root(self.root),
            env=self.env,
            clock=lambda: at,
            kept=self.kept,
        )
        return assert_folded(run_checks(CHECKS, ctx))


@pytest.fixture
def agent(world: World, device: RootBuilder, tmp_path: Path) -> Agent:
    return Agent(device.root, {**base_env(world, tmp_path), **world.role_env}, config(world))


@pytest.fixture
def count(world: World, requests_signed_with: Callable[[str], Count]) -> Count:
    return requests_signed_with(world.role_creds["AccessKeyId"])


def artifact_result(world: World, results: list[CheckResult], key: str = ARTIFACT) -> CheckResult:
    return by_target(results, "s3.artifact")[f"s3://{world.bucket('ok')}/{key}"]


def test_a_cycle_within_refresh_seconds_sends_no_request(
    agent: Agent, world: World, count: Count
) -> None:
    first = agent.cycle(T0)
    probes = count()
    assert probes >= 6  # STS, 2 x GetBucketLocation, HeadBucket x2, Put+Delete, HeadObject
    assert artifact_result(world, first).status is Status.OK
    assert {r.details["checked_at"] for r in first} == {"2026-05-04T12:00:00Z"}

    second = agent.cycle(T0 + timedelta(seconds=899))
    assert count() == probes  # nothing reached moto
    assert second == first
    assert all(a is b for a, b in zip(first, second, strict=True))  # the very same verdicts


def test_refresh_seconds_elapsed_probes_again(agent: Agent, world: World, count: Count) -> None:
    agent.cycle(T0)
    probes = count()
    later = agent.cycle(T0 + timedelta(seconds=900))
    assert count() == 2 * probes
    assert artifact_result(world, later).details["checked_at"] == "2026-05-04T12:15:00Z"


def test_a_clock_stepped_back_probes_again(agent: Agent, count: Count) -> None:
    agent.cycle(T0)
    probes = count()
    agent.cycle(T0 - timedelta(hours=1))  # NTP corrected a clock that ran ahead
    assert count() == 2 * probes


def test_a_new_deployed_artifact_is_probed_at_once(
    agent: Agent, device: RootBuilder, world: World, count: Count
) -> None:
    agent.cycle(T0)
    probes = count()
    key = "com.example.Other/1.0.0/other.zip"
    deploy(device, "com.example.Other", world.bucket("ok"), key)
    device.write()

    results = agent.cycle(T0 + timedelta(seconds=60))
    assert count() > probes
    found = artifact_result(world, results, key)
    assert found.status is Status.CRITICAL  # never uploaded: the next deployment would fail
    assert found.details["reason"] == "not_found"
    assert found.details["checked_at"] == "2026-05-04T12:01:00Z"


def test_changed_bucket_settings_are_probed_at_once(
    agent: Agent, world: World, count: Count
) -> None:
    agent.cycle(T0)
    probes = count()
    agent.cfg = config(world, expectedRole="SomeOtherRole")
    results = agent.cycle(T0 + timedelta(seconds=60))
    assert count() > probes
    identity = by_target(results, "s3.identity")
    assert [r.status for r in identity.values()] == [Status.WARNING]


def test_other_credentials_are_probed_at_once(
    agent: Agent, world: World, requests_signed_with: Callable[[str], Count]
) -> None:
    role, user = world.role_creds["AccessKeyId"], world.user_creds["key_id"]
    by_role, by_user = requests_signed_with(role), requests_signed_with(user)
    agent.cycle(T0)
    assert by_role() > 0 and by_user() == 0
    agent.env.pop("AWS_SESSION_TOKEN")
    agent.env |= {"AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": world.user_creds["secret"]}
    results = agent.cycle(T0 + timedelta(seconds=60))
    assert by_user() > 0
    creds = by_target(results, "s3.credentials")["default"]
    assert creds.details["access_key_id"].startswith(user[:4])


def test_refresh_seconds_zero_probes_every_cycle(agent: Agent, world: World, count: Count) -> None:
    agent.cfg = config(world, refreshSeconds=0)
    agent.cycle(T0)
    probes = count()
    agent.cycle(T0)
    assert count() == 2 * probes


def test_expiring_credentials_are_fetched_and_probed_again(
    world: World,
    device: RootBuilder,
    tes: TokenExchangeService,
    count: Count,
    tmp_path: Path,
) -> None:
    tes.serve(world.role_creds)
    tes.expiration = T0 + timedelta(minutes=10)
    agent = Agent(
        device.root,
        {**base_env(world, tmp_path), **tes.env()},
        config(world, credentials={"source": "tes"}, refreshSeconds=3600),
    )
    agent.cycle(T0)
    fetched, probes = len(tes.requests), count()
    agent.cycle(T0 + timedelta(minutes=5))
    assert (len(tes.requests), count()) == (fetched, probes)  # still valid: nothing asked
    tes.expiration = T0 + timedelta(hours=2)
    results = agent.cycle(T0 + timedelta(minutes=10))
    assert len(tes.requests) == fetched + 1 and count() == 2 * probes
    assert by_target(results, "s3.credentials")["tes"].status is Status.OK


def test_no_answer_is_asked_again_next_cycle(
    device: RootBuilder, canned: Canned, world: World, tmp_path: Path
) -> None:
    canned.answer(503, b"<Error><Code>ServiceUnavailable</Code></Error>")
    env = {**base_env(world, tmp_path), **world.role_env, "AWS_ENDPOINT_URL": canned.url}
    agent = Agent(device.root, env, config(world))
    first = agent.cycle(T0)
    assert any(r.details.get("reason") == "server_error" for r in first), first
    asked = len(canned.requests)
    agent.cycle(T0 + timedelta(seconds=60))
    assert len(canned.requests) > asked  # "could not verify" must not stick for 15 minutes
