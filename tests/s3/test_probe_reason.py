"""``details.reason`` of an S3 probe verdict names the cause of its worst status (SPEC);
``details.reasons`` and ``details.findings`` name every problem, as in every area."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from agent.config import build_config
from agent.errors import AwsError, ErrorKind
from agent.greengrass.recipes import Artifact
from agent.report import Status
from agent.s3.probe_verdicts import probe_result
from agent.s3.probes import Probe
from agent.s3.refresh import AuditInputs, ProbedAudit

BUCKET = "gghealth-artifacts"
T0 = datetime(2026, 5, 4, 12, 0, 0, tzinfo=timezone.utc)


def _probe(*answers: tuple[str, AwsError | None]) -> Probe:
    probe = Probe(target=f"s3://{BUCKET}", bucket=BUCKET, partition="aws")
    for operation, error in answers:
        probe.add(operation, "*", error)
    return probe


def test_a_denial_beside_an_unanswered_call_is_access_denied() -> None:
    probe = _probe(
        ("HeadBucket", AwsError(ErrorKind.TIMEOUT, "HeadBucket: no answer within 5 s")),
        ("GetBucketLocation", AwsError(ErrorKind.ACCESS_DENIED, "AccessDenied", status=403)),
    )
    result, _ = probe_result("s3.bucket", probe, "eu-west-1")
    assert (result.status, result.details["reason"]) == (Status.CRITICAL, "access_denied")
    assert result.details["operations"] == {
        "HeadBucket": "timeout",
        "GetBucketLocation": "access_denied",
    }


def test_an_unanswered_call_alone_is_unknown_with_its_kind() -> None:
    probe = _probe(
        ("HeadBucket", AwsError(ErrorKind.TIMEOUT, "HeadBucket: no answer within 5 s")),
        ("GetBucketLocation", None),
    )
    result, _ = probe_result("s3.bucket", probe, "eu-west-1")
    assert (result.status, result.details["reason"]) == (Status.UNKNOWN, "timeout")


def test_every_problem_is_listed_worst_first_and_named_once_in_the_message() -> None:
    key = "com.example.App/1.0.0/app.zip"
    artifact = Artifact(f"s3://{BUCKET}/{key}", "com.example.App", "1.0.0", Path("app.yaml"))
    probe = Probe(target=artifact.uri, bucket=BUCKET, partition="aws")
    probe.add("GetBucketLocation", "*", AwsError(ErrorKind.ACCESS_DENIED, "AccessDenied"))
    probe.add("HeadObject", "*", AwsError(ErrorKind.NOT_FOUND, "NoSuchKey", code="NoSuchKey"))
    probe.facts["region"] = "us-east-1"
    result, _ = probe_result("s3.artifact", probe, "eu-west-1", artifact=artifact)
    assert result.details["reasons"] == ["access_denied", "not_found", "wrong_region"]
    assert [(f["code"], f["status"]) for f in result.details["findings"]] == [
        ("access_denied", "CRITICAL"),
        ("not_found", "CRITICAL"),
        ("wrong_region", "WARNING"),
    ]
    # Both defects break the next deployment: the message says so once, at its end.
    consequence = "the next deployment of com.example.App fails to download it"
    assert result.message.count(consequence) == 1
    assert result.message.endswith(f"; {consequence}")


def test_a_probe_object_left_behind_is_a_finding_of_its_own() -> None:
    probe = _probe(
        ("PutObject", None),
        ("DeleteObject", AwsError(ErrorKind.ACCESS_DENIED, "AccessDenied", status=403)),
    )
    probe.facts.update(probe_key="gghealth-probe/pi-42-1.txt", probe_left_behind=True)
    result, _ = probe_result("s3.bucket", probe, "eu-west-1")
    assert result.status is Status.CRITICAL
    assert result.details["reasons"] == ["access_denied", "probe_left_behind"]
    assert result.message.endswith(f"s3://{BUCKET}/gghealth-probe/pi-42-1.txt was left behind")


def test_an_audit_with_an_unanswered_call_behind_a_denial_is_probed_again() -> None:
    probe = _probe(
        ("HeadBucket", AwsError(ErrorKind.TIMEOUT, "HeadBucket: no answer within 5 s")),
        ("GetBucketLocation", AwsError(ErrorKind.ACCESS_DENIED, "AccessDenied", status=403)),
    )
    result, _ = probe_result("s3.bucket", probe, "eu-west-1")
    inputs = AuditInputs(build_config({}).s3, "pi-42", "eu-west-1", (None, None), b"", (), None)
    audit = ProbedAudit(inputs, {"s3.bucket": [result]}, T0, None)
    assert result.details["reason"] == "access_denied"
    assert not audit.reusable(inputs, T0 + timedelta(seconds=60), 900)
