"""The token exchange service failing: answering 500 or accepting the request and never
answering. The whole s3 area (the CLI as the nucleus would run it, the TES stand-in) ends
UNKNOWN — nothing is called a defect it did not prove — and a hanging TES costs at most what
is left of ``s3.cycleBudgetSeconds``, as the results' messages show."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from agent.greengrass.recipes import recipe_file_name
from tests.hostile.conftest import Device, cli_env, run_cli
from tests.peers.silent import closed_port  # noqa: F401  (fixture)
from tests.peers.tes import TokenExchangeService, tes  # noqa: F401  (fixture)

pytestmark = pytest.mark.peer

COMPONENT = "com.example.Artifacts"


def deploy_artifacts(dev: Device, count: int = 5) -> None:
    """A deployed component whose recipe has ``count`` s3:// artifacts for Linux."""
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": COMPONENT,
        "ComponentVersion": "2.0.0",
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Artifacts": [{"URI": f"s3://artifact-bucket/a/{i}.zip"} for i in range(count)],
            }
        ],
    }
    recipes = dev.root / "packages" / "recipes"
    recipes.mkdir(parents=True, exist_ok=True)
    (recipes / recipe_file_name(COMPONENT, "2.0.0")).write_text(yaml.safe_dump(recipe))
    dev.edit(lambda d: d["services"].update({COMPONENT: {"version": "2.0.0", "configuration": {}}}))


@pytest.mark.parametrize(
    ("mode", "reason", "said"),
    # A hung TES is given what is left of the 1.5 s budget, at most: on a loaded machine less.
    [("error", "server_error", "500"), ("hang", "timeout", r"no answer within (1\.[0-5]|0\.\d)s")],
)
def test_failing_token_exchange_service_leaves_the_s3_area_unknown_within_the_budget(
    mode: str,
    reason: str,
    said: str,
    healthy: Device,
    tes: TokenExchangeService,  # noqa: F811
    closed_port: int,  # noqa: F811
    tmp_path: Path,
) -> None:
    tes.mode = mode
    deploy_artifacts(healthy)
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "s3": {
                    "credentials": {"source": "tes"},
                    "buckets": [{"name": "data-bucket", "access": "readwrite"}],
                    # The request timeout alone would let a hung TES cost 10 s; the cycle
                    # budget of 1.5 s is what bounds it.
                    "requestTimeoutSeconds": 10,
                    "cycleBudgetSeconds": 1.5,
                }
            }
        )
    )
    env = cli_env(
        tmp_path,
        {**tes.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}"},
    )
    proc = run_cli(
        ["check", "--only", "s3", "--format", "json", "--greengrass-root", str(healthy.root),
         "--config", str(config)],
        env,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]  # UNKNOWN: nothing could be verified
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    by_id: dict[str, list[dict[str, object]]] = {}
    for c in report["checks"]:
        by_id.setdefault(str(c["id"]), []).append(c)
    (creds,) = by_id["s3.credentials"]
    assert creds["status"] == "UNKNOWN"
    assert creds["details"]["reason"] == reason  # type: ignore[index]
    assert re.search(said, str(creds["message"])), creds["message"]
    assert creds["remediation"]
    assert len(tes.requests) == 1  # asked once, not retried into the budget
    blocked = by_id["s3.bucket"] + by_id["s3.artifact"]
    assert blocked
    assert {c["status"] for c in blocked} == {"UNKNOWN"}
    assert {c["details"]["reason"] for c in blocked} == {"no_credentials"}  # type: ignore[index]
    assert all(c["remediation"] for c in blocked)
    assert report["summary"]["CRITICAL"] == 0 and report["summary"]["OK"] == 0
