"""The verdict of one bucket or artifact probe: status, message, details and the IAM fix.

Several calls may fail at once (a denied GetBucketLocation and a missing object): each problem
is a finding and :func:`agent.report.fold` makes them one result, so the worst status wins,
``details.reason`` names its cause and the message and remediation name every finding.
"""

from __future__ import annotations

from typing import Any

from agent.config.models import BucketAccess
from agent.errors import AwsError, ErrorKind
from agent.greengrass.recipes import Artifact
from agent.report import CheckResult, Finding, Status, Verdict
from agent.s3.iam import statements, statements_json
from agent.s3.probes import Outcome, Probe
from agent.s3.verdicts import (
    FIX_CREDENTIALS_FIRST,
    ROLE,
    error_finding,
    one_problem,
    status_of,
)


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
        # Nothing else this probe learnt can be trusted: the one finding is the credentials.
        message = f"not verified: S3 rejected the credentials ({rejected.code})"
        finding = Finding(Status.UNKNOWN, "credentials_rejected", message, FIX_CREDENTIALS_FIRST)
        return one_problem(check_id, probe.target, finding, details), rejected
    # A proven defect of an artifact is what the next deployment will run into.
    breaks = (
        f"the next deployment of {artifact.component} fails to download it" if artifact else None
    )
    # fold keeps this order among equal statuses: it is the message's, and among CRITICALs a
    # denial is the reason before a missing bucket or object.
    findings = [
        *_denied(errors, details, breaks),
        *_missing(errors, probe, breaks),
        *_unanswered(errors),
        *_elsewhere(errors, probe, device_region, details, artifact),
    ]
    if probe.facts.get("probe_left_behind"):
        # What a failed DeleteObject left in the bucket: litter, not broken access (the
        # failure is a finding of its own), so WARNING.
        findings.append(
            Finding(
                Status.WARNING,
                "probe_left_behind",
                f"probe object s3://{probe.bucket}/{probe.facts['probe_key']} was left behind",
            )
        )
    verdict = Verdict(probe.target, _ok_message(probe, access), tuple(findings), details)
    return verdict.to_result(check_id), None


def _denied(errors: list[Outcome], details: dict[str, Any], breaks: str | None) -> list[Finding]:
    """Every denied call as one finding whose fix is the IAM statement granting them all."""
    denied = [o for o in errors if o.error and o.error.kind is ErrorKind.ACCESS_DENIED]
    if not denied:
        return []
    grants = [(o.action, o.resource) for o in denied]
    details["missing_actions"] = [o.action for o in denied]
    details["iam_statement"] = statements(grants)
    message = "access denied: missing " + ", ".join(f"{o.action} ({o.operation})" for o in denied)
    if any(o.operation == "HeadObject" for o in denied):
        message += "; S3 also answers 403 for a missing object when s3:ListBucket is not granted"
    fix = f"add to the IAM policy of {ROLE}: {statements_json(grants)}"
    return [Finding(Status.CRITICAL, "access_denied", message, fix, breaks)]


def _missing(errors: list[Outcome], probe: Probe, breaks: str | None) -> list[Finding]:
    """A missing bucket or object (a bucket gone explains any missing object in it)."""
    missing = [o for o in errors if o.error and o.error.kind is ErrorKind.NOT_FOUND]
    if not missing:
        return []
    bucket_gone = any(
        o.operation != "HeadObject" or (o.error and o.error.code == "NoSuchBucket") for o in missing
    )
    if bucket_gone:
        message = f"bucket {probe.bucket} does not exist (NoSuchBucket)"
        fix = f"create bucket {probe.bucket} or correct the name"
    else:
        message = "the object does not exist (NoSuchKey)"
        fix = f"upload {probe.target} or publish a component version whose artifacts exist"
    return [Finding(Status.CRITICAL, "not_found", message, fix, breaks)]


def _unanswered(errors: list[Outcome]) -> list[Finding]:
    """The first call that proved nothing (no answer, an unexpected one): one is enough to say."""
    first = next(
        (o.error for o in errors if o.error and status_of(o.error) is Status.UNKNOWN), None
    )
    return [] if first is None else [error_finding(first)]


def _elsewhere(
    errors: list[Outcome],
    probe: Probe,
    device_region: str,
    details: dict[str, Any],
    artifact: Artifact | None,
) -> list[Finding]:
    """A bucket in another region than the device's (from GetBucketLocation or a redirect)."""
    region = probe.facts.get("region") or next(
        (o.error.region for o in errors if o.error and o.error.kind is ErrorKind.WRONG_REGION), None
    )
    if not region or region == device_region:
        return []
    details["bucket_region"] = region
    fix = (
        f"keep the artifacts in a bucket in {device_region} (Greengrass expects a component's "
        "artifacts in its own Region)"
        if artifact
        else f"use a bucket in {device_region}, or accept cross-region requests to {region}"
    )
    message = f"bucket is in {region}, not the device's region {device_region}"
    return [Finding(Status.WARNING, "wrong_region", message, fix)]


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
