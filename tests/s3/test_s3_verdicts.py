"""Every S3 verdict of the SPEC against a real moto server with IAM policies enforced."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from agent.report import CheckResult, Status
from tests.s3.conftest import (
    ROLE,
    RootBuilder,
    Run,
    World,
    base_env,
    by_target,
    deploy_world_components,
    s3_config,
)

pytestmark = pytest.mark.peer


@pytest.fixture
def role_results(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> list[CheckResult]:
    """One audit of the world device with the role's credentials in the environment."""
    deploy_world_components(root_builder, world)
    root = root_builder.write()
    return run_s3(root, {**base_env(world, tmp_path), **world.role_env}, s3_config(world))


def uri(world: World, kind: str, key: str) -> str:
    return f"s3://{world.bucket(kind)}/{key}"


def test_credentials_and_identity_are_ok(role_results: list[CheckResult], world: World) -> None:
    creds = by_target(role_results, "s3.credentials")["default"]
    assert creds.status is Status.OK, creds
    assert creds.details["provider"] == "environment"
    assert creds.details["access_key_id"].startswith("ASIA")
    identity = by_target(role_results, "s3.identity")[f"{ROLE}-{world.suffix}"]
    assert identity.status is Status.OK
    assert identity.details["role"] == f"{ROLE}-{world.suffix}"
    assert identity.details["account"] == "123456789012"


def test_readable_artifacts_of_the_deployed_version_are_ok(
    role_results: list[CheckResult], world: World
) -> None:
    artifacts = by_target(role_results, "s3.artifact")
    tunnel = "aws.greengrass.SecureTunneling/2.0.0/GreengrassV2SecureTunnelingComponent-"
    # Only the manifest the nucleus picks for this machine counts, as on the device.
    here = {"x86_64": "x86_64", "aarch64": "arm64", "armv7l": "armv7l"}[platform.machine()]
    found = artifacts[uri(world, "ok", f"{tunnel}{here}.zip")]
    assert found.status is Status.OK, found
    assert found.details["component"] == "aws.greengrass.SecureTunneling"
    assert found.details["size_bytes"] == len(b"PK\x03\x04 artifact")
    others = {"x86_64", "arm64", "armv7l"} - {here}
    assert not [t for t in artifacts for arch in others if t.endswith(f"{arch}.zip")]
    # The stale 1.9.9 recipe names the denied bucket: ignored, so no result mentions it for 1.9.9.
    assert not [r for r in role_results if r.details.get("version") == "1.9.9"]


def test_missing_get_bucket_location_is_critical_with_the_statement(
    role_results: list[CheckResult], world: World
) -> None:
    key = "aws.greengrass.labs.S3FileDownloader/1.0.0/S3FileDownloader-1.0.0.jar"
    found = by_target(role_results, "s3.artifact")[uri(world, "nolocation", key)]
    assert found.status is Status.CRITICAL
    assert found.details["missing_actions"] == ["s3:GetBucketLocation"]
    assert "s3:GetBucketLocation" in found.message
    assert "aws.greengrass.labs.S3FileDownloader" in found.message
    assert found.details["iam_statement"] == [
        {
            "Effect": "Allow",
            "Action": "s3:GetBucketLocation",
            "Resource": f"arn:aws:s3:::{world.bucket('nolocation')}",
        }
    ]
    statement = found.remediation.split(": ", 1)[1] if found.remediation else ""
    assert json.loads(statement) == found.details["iam_statement"][0]


def test_explicit_deny_on_an_artifact_bucket_names_both_actions(
    role_results: list[CheckResult], world: World
) -> None:
    key = "aws.greengrass.labs.CertificateRotator/1.1.0/certificate-rotator.zip"
    found = by_target(role_results, "s3.artifact")[uri(world, "denied", key)]
    assert found.status is Status.CRITICAL
    assert sorted(found.details["missing_actions"]) == ["s3:GetBucketLocation", "s3:GetObject"]
    resources = {s["Resource"] for s in found.details["iam_statement"]}
    assert resources == {
        f"arn:aws:s3:::{world.bucket('denied')}",
        f"arn:aws:s3:::{world.bucket('denied')}/*",
    }
    assert found.remediation and "s3:GetObject" in found.remediation


def test_missing_object_and_missing_bucket_are_critical(
    role_results: list[CheckResult], world: World
) -> None:
    artifacts = by_target(role_results, "s3.artifact")
    no_key = artifacts[uri(world, "ok", "1.0.0/home-assistant.zip")]
    assert no_key.status is Status.CRITICAL
    assert no_key.details["reason"] == "not_found"
    assert "NoSuchKey" in no_key.message
    no_bucket = artifacts[uri(world, "gone", "src.zip")]  # from the legacy-named JSON recipe
    assert no_bucket.status is Status.CRITICAL
    assert "NoSuchBucket" in no_bucket.message
    assert no_bucket.details["component"] == "com.example.PubSub"
    assert no_bucket.remediation


def test_docker_artifacts_are_not_s3_work(role_results: list[CheckResult]) -> None:
    assert not [r for r in role_results if r.target.startswith("docker:")]


def test_bucket_verdicts(role_results: list[CheckResult], world: World) -> None:
    buckets = by_target(role_results, "s3.bucket")
    assert set(buckets) == {
        world.bucket(kind)
        for kind in ("ok", "write", "nodelete", "readonly", "eu", "gone", "denied")
    }

    ok = buckets[world.bucket("ok")]
    assert ok.status is Status.OK
    assert ok.details["operations"] == {"GetBucketLocation": "ok", "HeadBucket": "ok"}

    rw = buckets[world.bucket("write")]
    assert rw.status is Status.OK, rw
    assert rw.details["operations"]["PutObject"] == "ok"
    assert rw.details["operations"]["DeleteObject"] == "ok"
    assert rw.details["probe_key"].startswith("gghealth-probe/pi-42-")

    readonly = buckets[world.bucket("readonly")]
    assert readonly.status is Status.CRITICAL
    assert readonly.details["missing_actions"] == ["s3:PutObject"]
    assert readonly.details["iam_statement"][0]["Resource"] == (
        f"arn:aws:s3:::{world.bucket('readonly')}/gghealth-probe/*"
    )

    nodelete = buckets[world.bucket("nodelete")]
    assert nodelete.status is Status.CRITICAL
    assert nodelete.details["missing_actions"] == ["s3:DeleteObject"]
    assert "left behind" in nodelete.message

    eu = buckets[world.bucket("eu")]
    assert eu.status is Status.WARNING
    assert eu.details["bucket_region"] == "eu-west-1"
    assert "eu-west-1" in eu.message and eu.remediation

    gone = buckets[world.bucket("gone")]
    assert gone.status is Status.CRITICAL and "NoSuchBucket" in gone.message

    denied = buckets[world.bucket("denied")]
    assert denied.status is Status.CRITICAL
    assert sorted(denied.details["missing_actions"]) == ["s3:GetBucketLocation", "s3:ListBucket"]


def test_write_probes_leave_nothing_behind_where_delete_is_allowed(
    role_results: list[CheckResult], world: World
) -> None:
    listed = world.moto.client("s3").list_objects_v2(Bucket=world.bucket("write"))
    assert listed.get("KeyCount", 0) == 0


def test_every_non_ok_result_has_a_remediation(role_results: list[CheckResult]) -> None:
    assert role_results
    for r in role_results:
        assert r.id.startswith("s3.")
        if r.status is not Status.OK:
            assert r.remediation, r


def test_identity_that_is_not_the_expected_role_is_a_warning(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    # An IAM user's keys (a laptop) with the same policy: S3 verdicts hold, identity does not.
    env = {
        **base_env(world, tmp_path),
        "AWS_ACCESS_KEY_ID": world.user_creds["key_id"],
        "AWS_SECRET_ACCESS_KEY": world.user_creds["secret"],
    }
    results = run_s3(root_builder.write(), env, s3_config(world))
    identity = by_target(results, "s3.identity")[f"{ROLE}-{world.suffix}"]
    assert identity.status is Status.WARNING
    assert f"user/device-user-{world.suffix}" in identity.message
    assert identity.remediation
    assert by_target(results, "s3.bucket")[world.bucket("ok")].status is Status.OK
    # No deployed component has artifacts: one OK result says so.
    assert by_target(results, "s3.artifact")["deployed recipes"].status is Status.OK


@pytest.mark.parametrize(
    ("secret", "code"),
    [("not-the-secret", "SignatureDoesNotMatch"), (None, "InvalidClientTokenId")],
)
def test_rejected_credentials_are_critical_once_and_the_rest_unknown_once(
    world: World,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    secret: str | None,
    code: str,
) -> None:
    deploy_world_components(root_builder, world)
    if secret is None:  # an access key AWS never issued
        env = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "x" * 40}
    else:
        env = {**world.role_env, "AWS_SECRET_ACCESS_KEY": secret}
    results = run_s3(root_builder.write(), {**base_env(world, tmp_path), **env}, s3_config(world))
    creds = by_target(results, "s3.credentials")["default"]
    assert creds.status is Status.CRITICAL
    assert creds.details["code"] == code
    assert creds.remediation
    for check_id in ("s3.identity", "s3.bucket", "s3.artifact"):
        of_check = [r for r in results if r.id == check_id]
        assert len(of_check) == 1, of_check  # one UNKNOWN each, not a flood
        assert of_check[0].status is Status.UNKNOWN
    assert by_target(results, "s3.bucket")["s3.buckets"].details["count"] == 7
