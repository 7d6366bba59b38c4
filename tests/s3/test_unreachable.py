"""No answer, slow answers and odd answers: refused, silent, throttled, erroring and redirecting
S3 endpoints end the audit within its budget with the SPEC statuses (asserted on results)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agent.report import CheckResult, Status
from tests.peers.silent import Blackhole, Canned
from tests.s3.conftest import RootBuilder, Run, World, base_env, by_target, s3_config

pytestmark = pytest.mark.peer

MANY = 40


def many_artifacts(builder: RootBuilder, bucket: str, count: int = MANY) -> Path:
    """A deployed component with ``count`` s3:// artifacts."""
    artifacts = "\n".join(f"      - URI: s3://{bucket}/blob/{i}.bin" for i in range(count))
    recipe = (
        "RecipeFormatVersion: '2020-01-25'\n"
        "ComponentName: com.example.Many\n"
        "ComponentVersion: '3.0.0'\n"
        "Manifests:\n"
        "  - Platform: {os: linux}\n"
        f"    Artifacts:\n{artifacts}\n"
    )
    builder.deploy("com.example.Many", "3.0.0", recipe)
    return builder.write()


def s3_only(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.id in ("s3.bucket", "s3.artifact")]


def test_refused_endpoint_gives_unknown_everywhere_but_credentials(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path, closed_port: int
) -> None:
    root = many_artifacts(root_builder, world.bucket("ok"))
    env = {
        **base_env(world, tmp_path),
        **world.role_env,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}",
    }
    results = run_s3(root, env, s3_config(world))
    creds = by_target(results, "s3.credentials")["default"]
    assert creds.status is Status.OK  # obtained from the environment...
    assert "not yet verified" in creds.message  # ...but STS could not confirm them
    identity = next(r for r in results if r.id == "s3.identity")
    assert identity.status is Status.UNKNOWN and identity.details["reason"] == "unreachable"
    assert "connection refused" in identity.message
    rest = s3_only(results)
    assert len(rest) == MANY + 7
    assert all(r.status is Status.UNKNOWN for r in rest)
    assert all(r.details["reason"] == "unreachable" and r.remediation for r in rest)


def test_silent_s3_endpoint_is_dialled_once_per_slot_not_per_artifact(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path, blackhole: Blackhole
) -> None:
    root = many_artifacts(root_builder, world.bucket("ok"))
    env = {
        **base_env(world, tmp_path),
        **world.role_env,
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{blackhole.port}",
    }
    config = s3_config(world, requestTimeoutSeconds=0.3, maxConcurrency=4)
    results = run_s3(root, env, config)
    assert by_target(results, "s3.identity")  # STS (moto) answered
    rest = s3_only(results)
    assert len(rest) == MANY + 7
    assert all(r.status is Status.UNKNOWN and r.details["reason"] == "timeout" for r in rest)
    # After the first timeouts the host is not dialled again this cycle.
    assert len(blackhole.accepted) <= 4
    assert any("did not answer earlier" in r.message for r in rest)


def test_cycle_budget_bounds_the_work_and_the_rest_is_unknown(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path, canned: Canned
) -> None:
    def slow(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        time.sleep(0.1)
        return 200, {}, b"<LocationConstraint/>"

    canned.respond = slow
    root = many_artifacts(root_builder, world.bucket("ok"))
    env = {**base_env(world, tmp_path), **world.role_env, "AWS_ENDPOINT_URL_S3": canned.url}
    config = s3_config(world, cycleBudgetSeconds=0.6, maxConcurrency=2, buckets=[])
    results = run_s3(root, env, config)
    artifacts = by_target(results, "s3.artifact")
    assert len(artifacts) == MANY
    spent = [r for r in artifacts.values() if "cycle budget" in r.message]
    assert spent and all(r.status is Status.UNKNOWN for r in spent)
    assert all(r.remediation and "cycleBudgetSeconds" in r.remediation for r in spent)
    # Work stopped at the budget: far fewer requests than 1 + MANY were made.
    assert len(canned.requests) < MANY


def redirect_unless_signed_for(region: str, body: bytes = b"") -> Any:
    """S3's answer to a request signed for the wrong region: 301 naming the bucket's region."""

    def respond(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        auth = request["headers"].get("Authorization", "")
        if f"/{region}/s3/aws4_request" in auth:
            if "?location" in request["path"]:
                xml = f"<LocationConstraint>{region}</LocationConstraint>".encode()
                return 200, {"Content-Type": "application/xml"}, xml
            return 200, {"x-amz-bucket-region": region}, b""
        redirect = (
            b"<Error><Code>PermanentRedirect</Code><Message>The bucket you are "
            b"attempting to access must be addressed using the specified endpoint."
            b"</Message></Error>"
        )
        return 301, {"x-amz-bucket-region": region, "Content-Type": "application/xml"}, redirect

    return respond


def test_region_redirect_is_followed_and_reported_as_a_warning(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path, canned: Canned
) -> None:
    canned.respond = redirect_unless_signed_for("ap-southeast-2")
    env = {**base_env(world, tmp_path), **world.role_env, "AWS_ENDPOINT_URL_S3": canned.url}
    config = s3_config(world, buckets=[{"name": "faraway-bucket", "access": "read"}])
    results = run_s3(root_builder.write(), env, config)
    bucket = by_target(results, "s3.bucket")["faraway-bucket"]
    assert bucket.status is Status.WARNING
    assert bucket.details["bucket_region"] == "ap-southeast-2"
    assert "ap-southeast-2" in bucket.message and bucket.remediation
    assert bucket.details["operations"] == {"GetBucketLocation": "ok", "HeadBucket": "ok"}
    scopes = {("/us-east-1/" in r["headers"]["Authorization"]) for r in canned.requests}
    assert scopes == {True, False}  # first signed for the device's region, then for the bucket's


S3_ERROR = "<?xml version='1.0'?><Error><Code>{code}</Code><Message>{msg}</Message></Error>"


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [(503, "SlowDown", "throttled"), (500, "InternalError", "server_error")],
)
def test_throttling_and_server_errors_are_unknown(
    world: World,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    canned: Canned,
    status: int,
    code: str,
    reason: str,
) -> None:
    canned.answer(status, S3_ERROR.format(code=code, msg="try again").encode())
    env = {**base_env(world, tmp_path), **world.role_env, "AWS_ENDPOINT_URL_S3": canned.url}
    config = s3_config(world, buckets=[{"name": "busy-bucket", "access": "readwrite"}])
    results = run_s3(root_builder.write(), env, config)
    bucket = by_target(results, "s3.bucket")["busy-bucket"]
    assert bucket.status is Status.UNKNOWN
    assert bucket.details["reason"] == reason
    assert bucket.remediation
    assert by_target(results, "s3.credentials")["default"].status is Status.OK


def test_expired_token_from_s3_is_critical_on_credentials(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path, canned: Canned
) -> None:
    canned.answer(
        400, S3_ERROR.format(code="ExpiredToken", msg="The provided token has expired.").encode()
    )
    env = {**base_env(world, tmp_path), **world.role_env, "AWS_ENDPOINT_URL_S3": canned.url}
    config = s3_config(world, buckets=[{"name": "some-bucket", "access": "read"}])
    results = run_s3(root_builder.write(), env, config)
    creds = by_target(results, "s3.credentials")["default"]
    assert creds.status is Status.CRITICAL
    assert creds.details["code"] == "ExpiredToken"
    assert creds.remediation and "token" in creds.remediation
    bucket = by_target(results, "s3.bucket")["some-bucket"]
    assert bucket.status is Status.UNKNOWN
    assert bucket.details["reason"] == "credentials_rejected"


def test_oversized_answer_is_refused_not_read(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path, canned: Canned
) -> None:
    canned.answer(
        200, b"<LocationConstraint>" + b"x" * (2 * 1024 * 1024) + b"</LocationConstraint>"
    )
    env = {**base_env(world, tmp_path), **world.role_env, "AWS_ENDPOINT_URL_S3": canned.url}
    config = s3_config(world, buckets=[{"name": "huge-bucket", "access": "read"}])
    results = run_s3(root_builder.write(), env, config)
    bucket = by_target(results, "s3.bucket")["huge-bucket"]
    assert bucket.status is Status.UNKNOWN
    assert "larger than" in bucket.message
