"""The ``s3.*`` checks: can the token exchange (service) role reach what the device needs in S3?

One audit per cycle does all the AWS work (memoised in ``ctx.memo``) within the cycle budget,
and each check reports its part, so ``s3.credentials`` can also report credentials that S3
rejected later. Verdicts (SPEC, check catalogue): AccessDenied and NoSuchBucket/NoSuchKey are
CRITICAL (for an artifact: the next deployment of that component fails with "Failed to
download artifact"), another region is WARNING, rejected credentials are CRITICAL on
``s3.credentials``, and no answer (refused, DNS, timeout, 5xx, throttling) is UNKNOWN.

The AWS calls go through :mod:`agent.aws`; the verdicts are :mod:`agent.s3`'s. The write probe
puts a small uniquely named object under ``s3.probePrefix`` and always tries to delete it
again, also when the answer to the put never came.

A running agent reuses the last audit for ``s3.refreshSeconds`` unless what it depends on
changed (see :mod:`agent.s3.refresh`); ``details.checked_at`` says when AWS was asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from agent.aws.endpoints import partition, resolve_region
from agent.aws.s3 import S3, guarded
from agent.aws.session import AwsSession, Budget, resolve_credentials
from agent.aws.sts import CallerIdentity, get_caller_identity
from agent.checks.base import CheckContext, check, result
from agent.config import BucketAccess
from agent.config.names import valid_bucket_name
from agent.errors import AwsError, ErrorKind
from agent.greengrass.platform import device_platform
from agent.greengrass.recipes import Artifact, DeployedArtifacts, find_deployed_artifacts
from agent.log import get_logger
from agent.report import CheckResult, Status
from agent.s3.probe_verdicts import probe_result
from agent.s3.probes import Probe
from agent.s3.refresh import ProbedAudit, audit_inputs
from agent.s3.verdicts import (
    blocked,
    credentials_failed,
    credentials_ok,
    identity_result,
    invalid_uri_result,
    recipe_problem_result,
    scrub_results,
    unknown_from,
)

log = get_logger(__name__)

PROBE_BODY = b"gg-health-agent write probe; safe to delete\n"
# Answers after which the put may have happened: delete anyway so nothing is left behind.
_MAYBE_WRITTEN = frozenset({ErrorKind.TIMEOUT, ErrorKind.SERVER_ERROR, ErrorKind.UNEXPECTED})

CREDENTIALS, IDENTITY, BUCKET, ARTIFACT = (
    "s3.credentials",
    "s3.identity",
    "s3.bucket",
    "s3.artifact",
)


@dataclass
class Audit:
    """The results of one cycle's S3 audit, by check id."""

    results: dict[str, list[CheckResult]] = field(
        default_factory=lambda: {CREDENTIALS: [], IDENTITY: [], BUCKET: [], ARTIFACT: []}
    )
    credentials_expire: datetime | None = None
    """When the credentials the probes used expire (they are fetched again after that)."""


@dataclass
class S3State:
    """What the S3 checks keep from one cycle to the next."""

    last_audit: ProbedAudit | None = None
    recipes: dict[Any, Any] = field(default_factory=dict)
    """Parsed deployed recipes by file stamp (:func:`find_deployed_artifacts`)."""


def _audit(ctx: CheckContext) -> Audit:
    return ctx.once(audit_or_reuse)


@check(CREDENTIALS)
def check_credentials(ctx: CheckContext) -> Iterable[CheckResult]:
    """Credentials obtainable from the configured source and accepted by AWS."""
    return _audit(ctx).results[CREDENTIALS]


@check(IDENTITY)
def check_identity(ctx: CheckContext) -> Iterable[CheckResult]:
    """STS GetCallerIdentity, compared with ``s3.expectedRole``."""
    return _audit(ctx).results[IDENTITY]


@check(BUCKET)
def check_buckets(ctx: CheckContext) -> Iterable[CheckResult]:
    """Read and/or write access to every bucket of ``s3.buckets``."""
    return _audit(ctx).results[BUCKET]


@check(ARTIFACT)
def check_artifacts(ctx: CheckContext) -> Iterable[CheckResult]:
    """Every ``s3://`` artifact of the component versions deployed now."""
    return _audit(ctx).results[ARTIFACT]


CHECKS = [check_credentials, check_identity, check_buckets, check_artifacts]


def audit_or_reuse(ctx: CheckContext) -> Audit:
    """This cycle's audit: the last one while it still stands, else a new probe of AWS."""
    cfg = ctx.config.s3
    state = ctx.kept.get(S3State)
    deployed = (
        find_deployed_artifacts(
            ctx.greengrass,
            state.recipes,
            ignore=[ctx.config.component_name],
            device=device_platform(ctx.greengrass.nucleus, lite=ctx.greengrass.lite),
        )
        if cfg.check_artifacts
        else None
    )
    now = ctx.clock()
    inputs = audit_inputs(
        config=cfg,
        greengrass=ctx.greengrass,
        env=ctx.env,
        thing_name=ctx.thing_name,
        region=resolve_region(ctx.greengrass.region, ctx.env)[0],
        deployed=deployed,
    )
    last = state.last_audit
    if last is not None and last.reusable(inputs, now, cfg.refresh_seconds):
        return Audit(dict(last.results), last.credentials_expire)
    audit = run_audit(ctx, deployed, now)
    state.last_audit = ProbedAudit(inputs, audit.results, now, audit.credentials_expire)
    return audit


def run_audit(ctx: CheckContext, deployed: DeployedArtifacts | None, now: datetime) -> Audit:
    """All S3/STS work of one cycle, bounded by ``s3.cycleBudgetSeconds``."""
    cfg = ctx.config.s3
    audit = Audit()
    out = audit.results
    artifacts: list[Artifact] = []
    if deployed is not None:
        out[ARTIFACT].extend(recipe_problem_result(p) for p in deployed.problems)
        artifacts = deployed.with_scheme("s3")
        if not artifacts and not deployed.problems:
            out[ARTIFACT].append(
                result(
                    ARTIFACT,
                    Status.OK,
                    "deployed recipes",
                    f"no deployed component has s3:// artifacts "
                    f"({len(deployed.components)} recipes read)",
                    recipes_read=len(deployed.components),
                )
            )
    budget = Budget(cfg.cycle_budget_seconds, cfg.request_timeout_seconds)
    # One client per running agent: idle keep-alive connections carry over between cycles.
    http = ctx.http_client()
    region, region_origin = resolve_region(ctx.greengrass.region, ctx.env)
    secrets: tuple[str, ...] = ()
    try:
        creds = resolve_credentials(
            config=cfg,
            greengrass=ctx.greengrass,
            env=ctx.env,
            thing_name=ctx.thing_name,
            http=http,
            budget=budget,
            now=now,
        )
    except AwsError as exc:
        out[CREDENTIALS].append(credentials_failed(cfg.credentials.source.value, exc))
        _block_all(ctx, out, artifacts, "no usable credentials (see s3.credentials)")
        return _finish(audit, ctx, secrets, now)
    secrets = creds.secret_values
    audit.credentials_expire = creds.expiration
    session = AwsSession(http=http, credentials=creds, region=region, env=ctx.env, budget=budget)
    identity: CallerIdentity | None = None
    try:
        identity = get_caller_identity(session)
    except AwsError as exc:
        if exc.kind is ErrorKind.BAD_CREDENTIALS:
            out[CREDENTIALS].append(credentials_failed(cfg.credentials.source.value, exc, creds))
            _block_all(ctx, out, artifacts, "the credentials were rejected (see s3.credentials)")
            return _finish(audit, ctx, secrets, now)
        out[IDENTITY].append(unknown_from(IDENTITY, cfg.expected_role or "service role", exc))
    else:
        out[IDENTITY].append(identity_result(identity, cfg.expected_role))
    try:
        s3 = S3(session)
    except AwsError as exc:
        # An S3 endpoint override that cannot be used (AWS_ENDPOINT_URL_S3=file://...): a
        # configuration verdict, not an internal error.
        out[CREDENTIALS].append(credentials_failed(cfg.credentials.source.value, exc, creds))
        _block_all(ctx, out, artifacts, f"the S3 endpoint cannot be used: {exc}", identity=False)
        return _finish(audit, ctx, secrets, now)
    rejected = _probe_all(ctx, s3, artifacts, out)
    if rejected is not None:
        out[CREDENTIALS].append(credentials_failed(cfg.credentials.source.value, rejected, creds))
    else:
        out[CREDENTIALS].append(
            credentials_ok(cfg.credentials.source.value, creds, region, region_origin, identity)
        )
    return _finish(audit, ctx, secrets, now)


def _probe_all(
    ctx: CheckContext,
    s3: S3,
    artifacts: list[Artifact],
    out: dict[str, list[CheckResult]],
) -> AwsError | None:
    """Run bucket and artifact probes concurrently; the credentials error S3 gave, if any."""
    cfg = ctx.config.s3
    valid: list[tuple[Artifact, str, str]] = []
    for artifact in artifacts:
        bucket, key = artifact.s3_location()
        if not valid_bucket_name(bucket) or not key:
            out[ARTIFACT].append(invalid_uri_result(artifact, bucket, key))
        else:
            valid.append((artifact, bucket, key))
    buckets = sorted({b.name for b in cfg.buckets} | {bucket for _, bucket, _ in valid})
    if not buckets:
        return None
    with ThreadPoolExecutor(max_workers=cfg.max_concurrency, thread_name_prefix="s3-audit") as pool:
        locations = dict(zip(buckets, pool.map(lambda b: locate(s3, b), buckets), strict=True))
        bucket_jobs = [
            pool.submit(
                probe_bucket,
                s3,
                b.name,
                b.access,
                locations[b.name],
                prefix=cfg.probe_prefix,
                thing_name=ctx.thing_name,
            )
            for b in cfg.buckets
        ]
        artifact_jobs = [
            (
                artifact,
                pool.submit(probe_artifact, s3, artifact.uri, bucket, key, locations[bucket]),
            )
            for artifact, bucket, key in valid
        ]
        rejected: AwsError | None = None
        for bucket_cfg, job in zip(cfg.buckets, bucket_jobs, strict=True):
            verdict, bad = probe_result(
                BUCKET, job.result(), s3.session.region, access=bucket_cfg.access
            )
            out[BUCKET].append(verdict)
            rejected = rejected or bad
        for artifact, job in artifact_jobs:
            verdict, bad = probe_result(
                ARTIFACT, job.result(), s3.session.region, artifact=artifact
            )
            out[ARTIFACT].append(verdict)
            rejected = rejected or bad
    return rejected


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
    probe = Probe(bucket, bucket, partition(s3.session.region))
    missing = location_error is not None and location_error.kind is ErrorKind.NOT_FOUND
    if access in (BucketAccess.READ, BucketAccess.READWRITE):
        probe.add("GetBucketLocation", "", location_error)
        if not missing:
            probe.add("HeadBucket", "", guarded(lambda: s3.head_bucket(bucket)))
    elif missing:
        probe.add("GetBucketLocation", "", location_error)
    if access in (BucketAccess.WRITE, BucketAccess.READWRITE) and not missing:
        safe_thing = "".join(c if c.isalnum() or c in "-_." else "_" for c in thing_name)
        key = f"{prefix}{safe_thing}-{uuid.uuid4().hex}.txt"
        probe.facts["probe_key"] = key
        put_error = guarded(lambda: s3.put_object(bucket, key, PROBE_BODY))
        probe.add("PutObject", f"{prefix}*", put_error)
        if put_error is None or put_error.kind in _MAYBE_WRITTEN:
            delete_error = guarded(lambda: s3.delete_object(bucket, key))
            if put_error is None or delete_error is None:
                probe.add("DeleteObject", f"{prefix}*", delete_error)
            probe.facts["probe_left_behind"] = delete_error is not None and put_error is None
    region = s3.regions.get(bucket)
    if region:
        probe.facts["region"] = region
    return probe


def probe_artifact(
    s3: S3, uri: str, bucket: str, key: str, location_error: AwsError | None
) -> Probe:
    """GetBucketLocation (shared per bucket) + HeadObject, the calls the nucleus makes."""
    probe = Probe(uri, bucket, partition(s3.session.region))
    probe.add("GetBucketLocation", "*", location_error)
    if location_error is not None and location_error.kind is ErrorKind.NOT_FOUND:
        return probe
    size: list[int] = []
    error = guarded(lambda: size.append(s3.head_object(bucket, key)))
    probe.add("HeadObject", "*", error)
    if size:
        probe.facts["size_bytes"] = size[0]
    region = s3.regions.get(bucket)
    if region:
        probe.facts["region"] = region
    return probe


def _block_all(
    ctx: CheckContext,
    out: dict[str, list[CheckResult]],
    artifacts: list[Artifact],
    why: str,
    *,
    identity: bool = True,
) -> None:
    """One UNKNOWN per dependent check instead of one per target."""
    cfg = ctx.config.s3
    if identity:
        out[IDENTITY].append(blocked(IDENTITY, cfg.expected_role or "service role", why, []))
    if cfg.buckets:
        out[BUCKET].append(blocked(BUCKET, "s3.buckets", why, [b.name for b in cfg.buckets]))
    if artifacts:
        out[ARTIFACT].append(
            blocked(ARTIFACT, "deployed artifacts", why, [a.uri for a in artifacts])
        )


def _finish(
    audit: Audit, ctx: CheckContext, secrets: tuple[str, ...], checked_at: datetime
) -> Audit:
    stamp = {"checked_at": checked_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    for check_id, results in audit.results.items():
        audit.results[check_id] = [
            replace(r, details={**r.details, **stamp})
            for r in scrub_results(results, secrets, ctx.env)
        ]
    summary: dict[str, Any] = {k: len(v) for k, v in audit.results.items()}
    log.debug("s3_audit_done", **summary)
    return audit
