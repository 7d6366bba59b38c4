"""The verdict of one bucket or artifact probe: status, message, details and the IAM fix.

Several calls may fail at once (a denied GetBucketLocation and a missing object); the worst
status wins and the message and remediation name every finding.
"""

from __future__ import annotations

from typing import Any

from agent.config.models import BucketAccess
from agent.errors import AwsError, ErrorKind
from agent.greengrass.recipes import Artifact
from agent.report import CheckResult, Status, worst
from agent.s3.iam import statements, statements_json
from agent.s3.probes import Outcome, Probe
from agent.s3.verdicts import ROLE, remediation_of, status_of


def probe_result(
    check_id: str,
    probe: Probe,
    device_region: str,
    *,
    access: BucketAccess | None = None,
    artifact: Artifact | None = None,
) -> tuple[CheckResult, AwsError | None]:
    """The verdict of one bucket or artifact probe, and the credentials error S3 gave, if any."""
    operations = {o.operation: (o.error.kind.value if o.error else "ok") for o in probe.outcomes}
    details: dict[str, Any] = {"bucket": probe.bucket, "operations": operations, **probe.facts}
    if artifact is not None:
        details.update(
            component=artifact.component, version=artifact.version, key=artifact.s3_location()[1]
        )
    if access is not None:
        details["access"] = access.value
    errors = [o for o in probe.errors if o.error is not None]
    rejected = next(
        (o.error for o in errors if o.error and o.error.kind is ErrorKind.BAD_CREDENTIALS), None
    )
    if rejected is not None:
        details["reason"] = "credentials_rejected"
        return CheckResult(
            check_id,
            Status.UNKNOWN,
            probe.target,
            f"not verified: S3 rejected the credentials ({rejected.code})",
            details,
            "fix s3.credentials first",
        ), rejected
    statuses: list[Status] = []
    parts: list[str] = []
    fixes: list[str] = []
    denied = [o for o in errors if o.error and o.error.kind is ErrorKind.ACCESS_DENIED]
    if denied:
        grants = [(o.action, o.resource) for o in denied]
        statuses.append(Status.CRITICAL)
        parts.append(
            "access denied: missing " + ", ".join(f"{o.action} ({o.operation})" for o in denied)
        )
        if any(o.operation == "HeadObject" for o in denied):
            parts.append(
                "S3 also answers 403 for a missing object when s3:ListBucket is not granted"
            )
        details["missing_actions"] = [o.action for o in denied]
        details["iam_statement"] = statements(grants)
        fixes.append(f"add to the IAM policy of {ROLE}: {statements_json(grants)}")
    missing = [o for o in errors if o.error and o.error.kind is ErrorKind.NOT_FOUND]
    if missing:
        statuses.append(Status.CRITICAL)
        bucket_gone = any(
            o.operation != "HeadObject" or (o.error and o.error.code == "NoSuchBucket")
            for o in missing
        )
        if bucket_gone:
            parts.append(f"bucket {probe.bucket} does not exist (NoSuchBucket)")
            fixes.append(f"create bucket {probe.bucket} or correct the name")
        else:
            parts.append("the object does not exist (NoSuchKey)")
            fixes.append(
                f"upload {probe.target} or publish a component version whose artifacts exist"
            )
    others = [o for o in errors if o.error and status_of(o.error) is Status.UNKNOWN]
    if others and others[0].error is not None:
        statuses.append(Status.UNKNOWN)
        parts.append(others[0].error.message)
        fixes.append(remediation_of(others[0].error))
    region = probe.facts.get("region") or next(
        (o.error.region for o in errors if o.error and o.error.kind is ErrorKind.WRONG_REGION), None
    )
    if region and region != device_region:
        statuses.append(Status.WARNING)
        details["bucket_region"] = region
        parts.append(f"bucket is in {region}, not the device's region {device_region}")
        fixes.append(
            f"keep the artifacts in a bucket in {device_region} (Greengrass expects a component's "
            "artifacts in its own Region)"
            if artifact
            else f"use a bucket in {device_region}, or accept cross-region requests to {region}"
        )
    if probe.facts.get("probe_left_behind"):
        parts.append(f"probe object s3://{probe.bucket}/{probe.facts['probe_key']} was left behind")
    status = worst(statuses) if statuses else Status.OK
    if status is Status.OK:
        return CheckResult(
            check_id, status, probe.target, _ok_message(probe, access), details
        ), None
    if artifact is not None and status is Status.CRITICAL:
        parts.append(f"the next deployment of {artifact.component} fails to download it")
    details["reason"] = _reason(denied, missing, others)
    return CheckResult(
        check_id, status, probe.target, "; ".join(parts), details, "; ".join(fixes) or None
    ), None


def _reason(denied: list[Outcome], missing: list[Outcome], others: list[Outcome]) -> str:
    """The cause of the worst status (SPEC: ``details.reason`` is the worst finding): a proven
    defect (CRITICAL) before an unanswered call (UNKNOWN) before another region (WARNING)."""
    if denied:
        return "access_denied"
    if missing:
        return "not_found"
    unanswered = next((o.error for o in others if o.error is not None), None)
    return unanswered.kind.value if unanswered is not None else "wrong_region"


def _ok_message(probe: Probe, access: BucketAccess | None) -> str:
    region = f"; region {probe.facts['region']}" if probe.facts.get("region") else ""
    if access is None:
        size = probe.facts.get("size_bytes")
        return f"readable by the service role ({size} bytes){region}"
    checks = []
    if access in (BucketAccess.READ, BucketAccess.READWRITE):
        checks.append("read (HeadBucket, GetBucketLocation)")
    if access in (BucketAccess.WRITE, BucketAccess.READWRITE):
        checks.append("write (PutObject + DeleteObject of a probe object)")
    return " and ".join(checks) + f" access verified{region}"
