"""The S3 probes of one bucket or one artifact: which calls were made and how each ended.

A probe only gathers facts (an :class:`Outcome` per call); turning them into verdicts is the
check's job. The write probe puts a small uniquely named object under ``s3.probePrefix`` and
always tries to delete it again, also when the answer to the put never came.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from agent.aws.iam import ACTIONS, resource_for
from agent.aws.s3 import S3, guarded
from agent.config import BucketAccess
from agent.errors import AwsError, ErrorKind

PROBE_BODY = b"gg-health-agent write probe; safe to delete\n"
# Answers after which the put may have happened: delete anyway so nothing is left behind.
_MAYBE_WRITTEN = frozenset({ErrorKind.TIMEOUT, ErrorKind.SERVER_ERROR, ErrorKind.UNEXPECTED})


@dataclass(frozen=True)
class Outcome:
    """One S3 call of a probe."""

    operation: str
    action: str
    """The IAM action the call needs."""
    resource: str
    """The ARN a policy must grant the action on."""
    error: AwsError | None = None


@dataclass
class Probe:
    """Everything learnt about one bucket or artifact."""

    target: str
    bucket: str
    outcomes: list[Outcome] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, s3: S3, operation: str, pattern: str, error: AwsError | None) -> None:
        """Record the outcome of ``operation`` on this probe's bucket."""
        action = ACTIONS[operation]
        resource = resource_for(action, self.bucket, s3.session.region, pattern)
        self.outcomes.append(Outcome(operation, action, resource, error))

    @property
    def errors(self) -> list[Outcome]:
        """The calls that failed."""
        return [o for o in self.outcomes if o.error is not None]


def locate(s3: S3, bucket: str) -> AwsError | None:
    """GetBucketLocation; the region lands in ``s3.regions``; the error, if any, is returned."""
    return guarded(lambda: s3.get_bucket_location(bucket))


def probe_bucket(
    s3: S3,
    bucket: str,
    access: BucketAccess,
    location_error: AwsError | None,
    *,
    prefix: str,
    thing_name: str,
) -> Probe:
    """Read (HeadBucket + GetBucketLocation) and/or write (PutObject + DeleteObject) probes."""
    probe = Probe(target=bucket, bucket=bucket)
    missing = location_error is not None and location_error.kind is ErrorKind.NOT_FOUND
    if access in (BucketAccess.READ, BucketAccess.READWRITE):
        probe.add(s3, "GetBucketLocation", "", location_error)
        if not missing:
            probe.add(s3, "HeadBucket", "", guarded(lambda: s3.head_bucket(bucket)))
    elif missing:
        probe.add(s3, "GetBucketLocation", "", location_error)
    if access in (BucketAccess.WRITE, BucketAccess.READWRITE) and not missing:
        safe_thing = "".join(c if c.isalnum() or c in "-_." else "_" for c in thing_name)
        key = f"{prefix}{safe_thing}-{uuid.uuid4().hex}.txt"
        probe.facts["probe_key"] = key
        put_error = guarded(lambda: s3.put_object(bucket, key, PROBE_BODY))
        probe.add(s3, "PutObject", f"{prefix}*", put_error)
        if put_error is None or put_error.kind in _MAYBE_WRITTEN:
            delete_error = guarded(lambda: s3.delete_object(bucket, key))
            if put_error is None or delete_error is None:
                probe.add(s3, "DeleteObject", f"{prefix}*", delete_error)
            probe.facts["probe_left_behind"] = delete_error is not None and put_error is None
    region = s3.regions.get(bucket)
    if region:
        probe.facts["region"] = region
    return probe


def probe_artifact(
    s3: S3, uri: str, bucket: str, key: str, location_error: AwsError | None
) -> Probe:
    """GetBucketLocation (shared per bucket) + HeadObject, the calls the nucleus makes."""
    probe = Probe(target=uri, bucket=bucket)
    probe.add(s3, "GetBucketLocation", "*", location_error)
    if location_error is not None and location_error.kind is ErrorKind.NOT_FOUND:
        return probe
    size: list[int] = []
    error = guarded(lambda: size.append(s3.head_object(bucket, key)))
    probe.add(s3, "HeadObject", "*", error)
    if size:
        probe.facts["size_bytes"] = size[0]
    region = s3.regions.get(bucket)
    if region:
        probe.facts["region"] = region
    return probe
