"""The three credentials sources end to end: the token exchange service's container endpoint
(``default`` chain and ``tes``), and the AWS IoT credentials provider over mTLS (``x509``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agent.checks.base import Kept
from agent.report import CheckResult, Status
from tests.hostile import inputs
from tests.peers.iot_credentials import IotCredentialsProvider
from tests.peers.tes import TokenExchangeService
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


def verdicts(results: list[CheckResult]) -> dict[tuple[str, str], Status]:
    return {(r.id, r.target): r.status for r in results if r.id in ("s3.bucket", "s3.artifact")}


@pytest.fixture
def env_verdicts(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> dict[tuple[str, str], Status]:
    """The bucket/artifact verdicts with the role's credentials in the environment."""
    deploy_world_components(root_builder, world)
    results = run_s3(
        root_builder.write(), {**base_env(world, tmp_path), **world.role_env}, s3_config(world)
    )
    return verdicts(results)


@pytest.mark.parametrize("source", ["default", "tes"])
def test_token_exchange_service_gives_the_same_verdicts(
    world: World,
    tes: TokenExchangeService,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    env_verdicts: dict[tuple[str, str], Status],
    source: str,
) -> None:
    tes.serve(world.role_creds)
    env = {**base_env(world, tmp_path), **tes.env()}
    config = s3_config(world, credentials={"source": source})
    results = run_s3(root_builder.root, env, config)
    creds = by_target(results, "s3.credentials")[source]
    assert creds.status is Status.OK, creds
    assert creds.details["provider"].startswith(f"container credentials endpoint {tes.uri}")
    assert creds.details["expires_at"]
    assert by_target(results, "s3.identity")[f"{ROLE}-{world.suffix}"].status is Status.OK
    assert verdicts(results) == env_verdicts
    assert tes.requests and tes.requests[-1]["authorization"] == tes.token


def test_environment_keys_come_before_the_container_endpoint(
    world: World, tes: TokenExchangeService, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    env = {**base_env(world, tmp_path), **tes.env(), **world.role_env}
    results = run_s3(root_builder.write(), env, s3_config(world))
    assert by_target(results, "s3.credentials")["default"].details["provider"] == "environment"
    assert tes.requests == []


def _run_with_tes(
    world: World,
    tes: TokenExchangeService,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    **s3: Any,
) -> list[CheckResult]:
    """The s3 area with ``s3.credentials.source: tes`` against the TES stand-in."""
    env = {**base_env(world, tmp_path), **tes.env()}
    return run_s3(root_builder.write(), env, s3_config(world, credentials={"source": "tes"}, **s3))


def test_tes_403_says_the_iot_policy_lacks_assume_role_with_certificate(
    world: World, tes: TokenExchangeService, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    tes.mode = "forbidden"
    deploy_world_components(root_builder, world)
    results = _run_with_tes(world, tes, root_builder, run_s3, tmp_path)
    creds = by_target(results, "s3.credentials")["tes"]
    assert creds.status is Status.CRITICAL
    assert "iot:AssumeRoleWithCertificate" in creds.message
    assert "rolealias/GreengrassCoreTokenExchangeRoleAlias" in creds.message
    assert creds.remediation and "iot:AssumeRoleWithCertificate" in creds.remediation
    others = [r for r in results if r.id != "s3.credentials"]
    assert {r.id for r in others} == {"s3.identity", "s3.bucket", "s3.artifact"}
    assert len(others) == 3 and all(r.status is Status.UNKNOWN for r in others)


def test_wrong_token_is_refused_by_the_tes(
    world: World, tes: TokenExchangeService, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    env = {**base_env(world, tmp_path), **tes.env(), "AWS_CONTAINER_AUTHORIZATION_TOKEN": "stale"}
    results = run_s3(root_builder.write(), env, s3_config(world, credentials={"source": "tes"}))
    creds = by_target(results, "s3.credentials")["tes"]
    assert creds.status is Status.CRITICAL
    assert creds.details["http_status"] == 403
    assert "token" in creds.message


@pytest.mark.parametrize(("mode", "reason"), [("error", "server_error"), ("hang", "timeout")])
def test_tes_that_fails_or_hangs_is_unknown(
    world: World,
    tes: TokenExchangeService,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    mode: str,
    reason: str,
) -> None:
    tes.mode = mode
    results = _run_with_tes(world, tes, root_builder, run_s3, tmp_path, requestTimeoutSeconds=0.5)
    creds = by_target(results, "s3.credentials")["tes"]
    assert creds.status is Status.UNKNOWN
    assert creds.details["reason"] == reason
    assert creds.remediation


def test_expired_credentials_from_the_tes_are_critical(
    world: World, tes: TokenExchangeService, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    tes.serve(world.role_creds)
    tes.expiration = datetime.now(timezone.utc) - timedelta(minutes=5)
    results = _run_with_tes(world, tes, root_builder, run_s3, tmp_path)
    creds = by_target(results, "s3.credentials")["tes"]
    assert creds.status is Status.CRITICAL
    assert "expired" in creds.message
    assert creds.remediation and "clock" in creds.remediation


def test_tes_source_without_the_container_variables_says_what_to_add(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    results = run_s3(
        root_builder.write(),
        base_env(world, tmp_path),
        s3_config(world, credentials={"source": "tes"}),
    )
    creds = by_target(results, "s3.credentials")["tes"]
    assert creds.status is Status.UNKNOWN
    assert creds.remediation and "aws.greengrass.TokenExchangeService" in creds.remediation


def test_no_credentials_anywhere_is_unknown(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    results = run_s3(root_builder.write(), base_env(world, tmp_path), s3_config(world))
    creds = by_target(results, "s3.credentials")["default"]
    assert creds.status is Status.UNKNOWN
    assert creds.details["reason"] == "not_configured"


def test_plain_http_to_a_remote_container_endpoint_is_refused(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    env = {
        **base_env(world, tmp_path),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://192.0.2.10/creds",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t" * 32,
    }
    results = run_s3(root_builder.write(), env, s3_config(world))
    creds = by_target(results, "s3.credentials")["default"]
    assert creds.status is Status.UNKNOWN
    assert "plain http" in creds.message


def test_profile_file_is_a_link_of_the_default_chain(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        "[device]\n"
        f"aws_access_key_id = {world.role_creds['AccessKeyId']}\n"
        f"aws_secret_access_key = {world.role_creds['SecretAccessKey']}\n"
        f"aws_session_token = {world.role_creds['SessionToken']}\n"
    )
    env = {**base_env(world, tmp_path), "AWS_PROFILE": "device"}
    results = run_s3(root_builder.write(), env, s3_config(world))
    creds = by_target(results, "s3.credentials")["default"]
    assert creds.status is Status.OK, creds
    assert creds.details["provider"] == "profile device"
    assert by_target(results, "s3.bucket")[world.bucket("ok")].status is Status.OK


def x509_root(builder: RootBuilder, iot: IotCredentialsProvider, **nucleus: str) -> Path:
    builder.system.update(
        certificateFilePath=str(iot.device.cert_path),
        privateKeyPath=str(iot.device.key_path),
        rootCaPath=str(iot.server_ca.cert_path),
    )
    builder.nucleus.update(
        {"iotCredEndpoint": iot.endpoint, "iotRoleAlias": iot.role_alias, **nucleus}
    )
    return builder.write()


def test_x509_source_gives_the_same_verdicts(
    world: World,
    iot_credentials: IotCredentialsProvider,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    env_verdicts: dict[tuple[str, str], Status],
) -> None:
    iot_credentials.serve(world.role_creds)
    root = x509_root(root_builder, iot_credentials)
    results = run_s3(
        root, base_env(world, tmp_path), s3_config(world, credentials={"source": "x509"})
    )
    creds = by_target(results, "s3.credentials")["x509"]
    assert creds.status is Status.OK, creds
    assert "AWS IoT credentials provider" in creds.details["provider"]
    assert verdicts(results) == env_verdicts
    seen = iot_credentials.requests[-1]
    assert seen == {
        "path": f"/role-aliases/{iot_credentials.role_alias}/credentials",
        "thing": "pi-42",
        "client_cert": True,
    }


def test_x509_endpoint_and_ca_override_for_a_test_endpoint(
    world: World,
    iot_credentials: IotCredentialsProvider,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    shared_fixtures: Path,
) -> None:
    # The device trusts Amazon Root CA 1 and names a real AWS endpoint; the override points the
    # audit at the stand-in, as a developer would with a test endpoint.
    iot_credentials.serve(world.role_creds)
    root = x509_root(
        root_builder,
        iot_credentials,
        iotCredEndpoint="c1a2b3.credentials.iot.us-east-1.amazonaws.com",
    )
    builder_ca = shared_fixtures / "certs" / "AmazonRootCA1.pem"
    root_builder.system["rootCaPath"] = str(builder_ca)
    root_builder.write()
    config = s3_config(
        world,
        credentials={
            "source": "x509",
            "endpoint": f"https://{iot_credentials.endpoint}",
            "caPath": str(iot_credentials.server_ca.cert_path),
        },
    )
    results = run_s3(root, base_env(world, tmp_path), config)
    assert by_target(results, "s3.credentials")["x509"].status is Status.OK


def test_x509_with_an_untrusted_endpoint_certificate_is_unknown(
    world: World,
    iot_credentials: IotCredentialsProvider,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    shared_fixtures: Path,
) -> None:
    # The endpoint's certificate is not signed by Amazon Root CA 1: the handshake fails (s2n
    # reports it only after its blinding delay, so within the timeout it is a timeout).
    root = x509_root(root_builder, iot_credentials)
    root_builder.system["rootCaPath"] = str(shared_fixtures / "certs" / "AmazonRootCA1.pem")
    root_builder.write()
    config = s3_config(world, credentials={"source": "x509"}, requestTimeoutSeconds=1)
    results = run_s3(root, base_env(world, tmp_path), config)
    creds = by_target(results, "s3.credentials")["x509"]
    assert creds.status is Status.UNKNOWN
    assert creds.details["reason"] in ("timeout", "unreachable")
    assert "TLS" in creds.message
    assert iot_credentials.requests == []  # nothing was sent over an unverified connection


@pytest.mark.parametrize(
    ("mode", "needle"),
    [("forbidden", "iot:AssumeRoleWithCertificate"), ("missing_alias", "does not exist")],
)
def test_x509_refusals_are_critical(
    world: World,
    iot_credentials: IotCredentialsProvider,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    mode: str,
    needle: str,
) -> None:
    iot_credentials.mode = mode
    root = x509_root(root_builder, iot_credentials)
    results = run_s3(
        root, base_env(world, tmp_path), s3_config(world, credentials={"source": "x509"})
    )
    creds = by_target(results, "s3.credentials")["x509"]
    assert creds.status is Status.CRITICAL
    assert needle in creds.message
    assert creds.remediation


def test_x509_with_an_unreadable_key_says_to_run_privileged(
    world: World,
    iot_credentials: IotCredentialsProvider,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
) -> None:
    root = x509_root(root_builder, iot_credentials)
    root_builder.system["privateKeyPath"] = str(tmp_path / "no-such.key")
    root_builder.write()
    results = run_s3(
        root, base_env(world, tmp_path), s3_config(world, credentials={"source": "x509"})
    )
    creds = by_target(results, "s3.credentials")["x509"]
    assert creds.status is Status.UNKNOWN
    assert "privateKeyPath" in creds.message


def test_x509_with_a_pkcs11_key_points_to_the_tes_source(
    world: World,
    iot_credentials: IotCredentialsProvider,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
) -> None:
    root = x509_root(root_builder, iot_credentials)
    root_builder.system["privateKeyPath"] = "pkcs11:object=greengrass;type=private"
    root_builder.write()
    results = run_s3(
        root, base_env(world, tmp_path), s3_config(world, credentials={"source": "x509"})
    )
    creds = by_target(results, "s3.credentials")["x509"]
    assert creds.status is Status.UNKNOWN
    assert creds.remediation and "tes" in creds.remediation


def test_x509_picks_up_a_rotated_certificate_at_the_same_path(
    world: World,
    iot_credentials: IotCredentialsProvider,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
) -> None:
    from tests.peers.tls import ca, leaf

    iot_credentials.serve(world.role_creds)
    root = x509_root(root_builder, iot_credentials)
    config = s3_config(world, credentials={"source": "x509"}, requestTimeoutSeconds=2)
    kept = Kept()  # carried across cycles, as in a running agent
    first = run_s3(root, base_env(world, tmp_path), config, kept)
    assert by_target(first, "s3.credentials")["x509"].status is Status.OK
    # Rotate to a certificate from a CA the endpoint does not trust, at the same paths.
    stranger = leaf(tmp_path / "other", ca(tmp_path / "other", "Unknown CA"), "pi-42", server=False)
    iot_credentials.device.cert_path.write_bytes(stranger.cert_path.read_bytes())
    iot_credentials.device.key_path.write_bytes(stranger.key_path.read_bytes())
    before = len(iot_credentials.requests)
    second = run_s3(root, base_env(world, tmp_path), config, kept)
    assert by_target(second, "s3.credentials")["x509"].status is not Status.OK
    assert len(iot_credentials.requests) == before  # the endpoint refused the new certificate


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "sparse"])
@pytest.mark.parametrize("variable", ["AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"])
def test_profile_files_that_never_end_are_refused_at_once(
    world: World,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    special: str,
    variable: str,
) -> None:
    """awscrt reads a profile file without bound: /dev/zero never returned, a FIFO blocked, a
    3 GiB sparse file took 3 GB (issue 19 item 3). Now each is a clear NOT_CONFIGURED."""
    path = Path(special)
    if special == "fifo":
        path = inputs.fifo(tmp_path / "aws-credentials")
    elif special == "sparse":
        path = inputs.sparse_file(tmp_path / "aws-credentials", 3 * inputs.GIB)
    env = {**base_env(world, tmp_path), "AWS_PROFILE": "device", variable: str(path)}
    results = run_s3(root_builder.write(), env, s3_config(world))
    creds = by_target(results, "s3.credentials")["default"]
    assert creds.status is Status.UNKNOWN
    assert "not a regular file" in creds.message or "larger than" in creds.message
    assert variable in (creds.remediation or "")


def test_a_file_url_as_the_s3_endpoint_is_a_configuration_verdict(
    world: World, root_builder: RootBuilder, run_s3: Run, tmp_path: Path
) -> None:
    """AWS_ENDPOINT_URL_S3=file://... was an internal_error of every s3 check (issue 19)."""
    env = {
        **base_env(world, tmp_path),
        **world.role_env,
        "AWS_ENDPOINT_URL_S3": "file:///etc/passwd",
    }
    results = run_s3(root_builder.write(), env, s3_config(world))
    assert all(r.details.get("reason") != "internal_error" for r in results), results
    creds = by_target(results, "s3.credentials")["default"]
    assert creds.status is Status.UNKNOWN and creds.details["reason"] == "not_configured"
    assert "AWS_ENDPOINT_URL_S3 'file:///etc/passwd'" in creds.message
    [buckets] = [r for r in results if r.id == "s3.bucket"]
    assert buckets.status is Status.UNKNOWN and "S3 endpoint cannot be used" in buckets.message
