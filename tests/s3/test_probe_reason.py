"""``details.reason`` of an S3 probe verdict names the cause of its worst status (SPEC)."""

from __future__ import annotations

from agent.errors import AwsError, ErrorKind
from agent.report import Status
from agent.s3.probe_verdicts import probe_result
from agent.s3.probes import Probe

BUCKET = "gghealth-artifacts"


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
