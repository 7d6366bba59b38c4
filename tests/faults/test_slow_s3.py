"""S3 answering slowly, on a real loopback server whose answers trickle in. Two shapes: bodies
that never finish (every request's timeout holds, and a host that did not answer is not dialled
again per artifact), and answers that do finish but slowly (the work stops at
``s3.cycleBudgetSeconds`` and the rest is UNKNOWN saying so). Asserted on the results' reasons
and messages, not on the wall clock."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agent.report import CheckResult, Status
from tests.faults.test_tes_faults import deploy_artifacts
from tests.hostile.conftest import Device, assert_invariants, cycle, find
from tests.hostile.peers import Trickle, trickle  # noqa: F401  (fixture)
from tests.hostile.test_http_answers import IDENTITY
from tests.peers.silent import Canned, canned  # noqa: F401  (fixture)

pytestmark = pytest.mark.peer

ARTIFACTS = 20


def _env(tmp_path: Path, sts: Canned, s3: Trickle) -> dict[str, str]:
    sts.answer(200, IDENTITY, Content_Type="text/xml")
    return {
        "AWS_ACCESS_KEY_ID": "AKIASLOWS3TEST000000",
        "AWS_SECRET_ACCESS_KEY": "slow-s3-secret-000000000000000000000000",
        "AWS_ENDPOINT_URL_STS": sts.url,
        "AWS_ENDPOINT_URL_S3": s3.url,
        "AWS_REGION": "us-west-2",
        "HOME": str(tmp_path),
    }


def _s3_results(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.id in ("s3.bucket", "s3.artifact")]


def test_bodies_that_never_finish_time_out_once_per_slot(
    healthy: Device,
    canned: Canned,  # noqa: F811
    trickle: Trickle,  # noqa: F811
    tmp_path: Path,
) -> None:
    deploy_artifacts(healthy, ARTIFACTS)
    config: dict[str, Any] = {
        "s3": {
            "buckets": [{"name": "data-bucket"}],
            "requestTimeoutSeconds": 0.5,
            "cycleBudgetSeconds": 60,
            "maxConcurrency": 4,
        }
    }
    report = cycle(
        healthy.root,
        ["s3"],
        config=config,
        config_dir=tmp_path,
        env=_env(tmp_path, canned, trickle),
    )
    assert_invariants(report)
    slow = _s3_results(report.checks)
    assert len(slow) == ARTIFACTS + 1
    assert {(r.status, r.details["reason"]) for r in slow} == {(Status.UNKNOWN, "timeout")}
    # Each request waits 0.5 s at most (less when the budget runs short on a loaded machine).
    assert all(
        re.search(r"no answer within 0\.[1-5]s", r.message) or "did not answer earlier" in r.message
        for r in slow
    ), [r.message for r in slow]
    # The timeouts held: each slot gave up once, the rest were not sent to a dead host.
    assert len(trickle.requests) <= 4
    assert find(report.checks, "s3.identity")[0].status is Status.OK  # STS was fine


def test_answers_that_finish_slowly_stop_at_the_cycle_budget(
    healthy: Device,
    canned: Canned,  # noqa: F811
    trickle: Trickle,  # noqa: F811
    tmp_path: Path,
) -> None:
    # Each answer completes, in about 0.3 s: no request times out, so only the budget stops
    # the work.
    trickle.body = b"<LocationConstraint>us-west-2</LocationConstraint>"
    trickle.chunk, trickle.interval, trickle.head_delay = 10, 0.06, 0.3
    deploy_artifacts(healthy, ARTIFACTS)
    config = {"s3": {"requestTimeoutSeconds": 5, "cycleBudgetSeconds": 2, "maxConcurrency": 2}}
    report = cycle(
        healthy.root,
        ["s3"],
        config=config,
        config_dir=tmp_path,
        env=_env(tmp_path, canned, trickle),
    )
    assert_invariants(report)
    artifacts = find(report.checks, "s3.artifact")
    assert len(artifacts) == ARTIFACTS
    done = [r for r in artifacts if r.status is Status.OK]
    cut = [r for r in artifacts if r.status is not Status.OK]
    assert done, "slow answers that complete are verdicts, not timeouts"
    assert cut, "the budget did not stop the work"
    assert {(r.status, r.details["reason"]) for r in cut} == {(Status.UNKNOWN, "timeout")}
    assert all("cycle budget of 2s (s3.cycleBudgetSeconds)" in r.message for r in cut)
    assert all(r.remediation and "cycleBudgetSeconds" in r.remediation for r in cut)
    assert len(trickle.requests) < 1 + 2 * ARTIFACTS  # far from every call being made
