"""No secret key, session token or TES token appears in a result, a log event or the CLI output."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.aws.credentials import Credentials
from agent.log import configure
from agent.report import CheckResult
from tests.conftest import REPO
from tests.peers.iot_credentials import IotCredentialsProvider
from tests.peers.tes import TokenExchangeService
from tests.s3.conftest import RootBuilder, Run, World, base_env, deploy_world_components, s3_config

pytestmark = pytest.mark.peer


def leaked(secrets: list[str], *texts: str) -> list[str]:
    return [s for s in secrets if any(s in t for t in texts)]


def dump(results: list[CheckResult]) -> str:
    return json.dumps([r.to_dict() for r in results])


def test_credentials_repr_hides_the_secret_parts() -> None:
    creds = Credentials("ASIAEXAMPLEEXAMPLE01", "secret-value-123456", "token-value-123456")
    assert "secret-value" not in repr(creds) and "token-value" not in repr(creds)
    assert creds.masked_key_id == "ASIA…LE01"


def test_no_secret_in_results_or_logs_across_sources_and_failures(
    world: World,
    tes: TokenExchangeService,
    iot_credentials: IotCredentialsProvider,
    root_builder: RootBuilder,
    run_s3: Run,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    deploy_world_components(root_builder, world)
    root_builder.system.update(
        certificateFilePath=str(iot_credentials.device.cert_path),
        privateKeyPath=str(iot_credentials.device.key_path),
        rootCaPath=str(iot_credentials.server_ca.cert_path),
    )
    root_builder.nucleus.update(iotCredEndpoint=iot_credentials.endpoint)
    root = root_builder.write()
    tes.serve(world.role_creds)
    iot_credentials.serve(world.role_creds)
    env = base_env(world, tmp_path)
    secrets = [
        world.role_creds["SecretAccessKey"],
        world.role_creds["SessionToken"],
        tes.token,
        world.user_creds["secret"],
    ]
    runs = [
        ({**env, **world.role_env}, {}),
        ({**env, **tes.env()}, {"source": "tes"}),
        (env, {"source": "x509"}),
        # Failures: rejected secret, wrong TES token, refused endpoint.
        ({**env, **world.role_env, "AWS_SECRET_ACCESS_KEY": world.user_creds["secret"]}, {}),
        (
            {**env, **tes.env(), "AWS_CONTAINER_AUTHORIZATION_TOKEN": tes.token[::-1]},
            {"source": "tes"},
        ),
        ({**env, **world.role_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, {}),
    ]
    secrets.append(tes.token[::-1])
    texts = []
    log_lines = io.StringIO()
    configure("DEBUG", json=True, stream=log_lines)
    try:
        for run_env, creds_cfg in runs:
            results = run_s3(root, run_env, s3_config(world, credentials=creds_cfg))
            assert results
            texts.append(dump(results))
    finally:
        configure("WARNING", json=True)
    events = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    captured = capsys.readouterr()
    texts += [log_lines.getvalue(), captured.out, captured.err, caplog.text]
    assert leaked(secrets, *texts) == []
    assert any(e.get("event") == "aws_call_failed" for e in events)  # logs were produced


def test_cli_check_only_s3_prints_one_report_without_secrets(
    world: World, tes: TokenExchangeService, root_builder: RootBuilder, tmp_path: Path
) -> None:
    deploy_world_components(root_builder, world)
    root = root_builder.write()
    tes.serve(world.role_creds)
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump(s3_config(world, credentials={"source": "tes"})))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **base_env(world, tmp_path),
        **tes.env(),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "check",
            "--only",
            "s3",
            "--greengrass-root",
            str(root),
            "--config",
            str(config),
            "--format",
            "json",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]  # CRITICAL: the denied/missing artifacts
    report = json.loads(proc.stdout)
    ids = {c["id"] for c in report["checks"]}
    assert ids == {"s3.credentials", "s3.identity", "s3.bucket", "s3.artifact"}
    statuses = {(c["id"], c["target"]): c["status"] for c in report["checks"]}
    assert statuses[("s3.credentials", "tes")] == "OK"
    assert statuses[("s3.bucket", world.bucket("eu"))] == "WARNING"
    assert report["status"] == "CRITICAL"
    secrets = [world.role_creds["SecretAccessKey"], world.role_creds["SessionToken"], tes.token]
    assert leaked(secrets, proc.stdout, proc.stderr) == []
