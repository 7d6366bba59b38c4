"""Verdicts of the S3 audit: AwsErrors and probes turned into check results with remediations.

Status per error kind (SPEC, check catalogue): a proven defect (access denied, not found,
rejected credentials) is CRITICAL; another region is WARNING; no answer is UNKNOWN. Every result
is folded from the model's findings (:func:`agent.report.fold`), so a non-OK one carries
``details.reason``, ``reasons`` and ``findings`` as in every other area.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from agent.errors import AwsError, ErrorKind
from agent.greengrass.recipes import Artifact, RecipeProblem
from agent.report import CheckResult, Finding, Status, fold
from agent.secrets import scrub


class CredentialFacts(Protocol):
    """What a verdict says about credentials (:class:`agent.aws.credentials.Credentials`)."""

    @property
    def source(self) -> str: ...
    @property
    def masked_key_id(self) -> str: ...
    @property
    def expiration(self) -> datetime | None: ...


class CallerIdentity(Protocol):
    """The principal behind the credentials (:class:`agent.aws.sts.CallerIdentity`)."""

    @property
    def account(self) -> str: ...
    @property
    def arn(self) -> str: ...
    @property
    def role_name(self) -> str | None: ...


STATUS = {
    ErrorKind.ACCESS_DENIED: Status.CRITICAL,
    ErrorKind.NOT_FOUND: Status.CRITICAL,
    ErrorKind.BAD_CREDENTIALS: Status.CRITICAL,
    ErrorKind.WRONG_REGION: Status.WARNING,
}
ROLE = "the token exchange role (the IAM role behind the nucleus iotRoleAlias)"
FIX_CREDENTIALS_FIRST = "fix s3.credentials first"
REMEDIATION = {
    ErrorKind.UNREACHABLE: "check the device's network path (DNS, firewall, proxy) to the AWS "
    "endpoint named in the message, and any AWS_ENDPOINT_URL* override",
    ErrorKind.TIMEOUT: "the endpoint did not answer in time: check connectivity, or raise "
    "s3.requestTimeoutSeconds / s3.cycleBudgetSeconds",
    ErrorKind.THROTTLED: "AWS throttled the requests: check less often (intervalSeconds) or "
    "fewer artifacts; it clears by itself",
    ErrorKind.SERVER_ERROR: "AWS answered with a server error: it usually clears by itself; "
    "if it persists, check the AWS Health Dashboard",
    ErrorKind.UNEXPECTED: "see the message; check the AWS_ENDPOINT_URL* settings",
    ErrorKind.NOT_CONFIGURED: "configure s3.credentials (see the README, S3 access)",
    ErrorKind.WRONG_REGION: "use a bucket in the device's region",
    ErrorKind.NOT_FOUND: "create the missing resource or correct its name",
    ErrorKind.ACCESS_DENIED: f"grant the missing permission to {ROLE}",
}
_CREDENTIAL_FIXES = {
    "RequestTimeTooSkewed": "the device clock is wrong: synchronise it (NTP/chrony); SigV4 "
    "allows 15 minutes of skew",
    "RequestExpired": "the device clock is wrong: synchronise it (NTP/chrony)",
    "InvalidAccessKeyId": "AWS does not know this access key: it was deleted or belongs to "
    "another partition; fetch fresh credentials",
    "InvalidClientTokenId": "AWS does not know this access key or session token: fetch fresh "
    "credentials (restart the token exchange service)",
    "SignatureDoesNotMatch": "the secret key does not belong to the access key id: fix the "
    "credentials source",
    "ExpiredToken": "the session token has expired: restart the token exchange service "
    "(aws.greengrass.Nucleus) and check the device clock",
}


def status_of(error: AwsError) -> Status:
    """The status an error proves (or fails to prove)."""
    return STATUS.get(error.kind, Status.UNKNOWN)


def remediation_of(error: AwsError) -> str:
    """The most specific advice for an error."""
    if error.remediation:
        return error.remediation
    if error.kind is ErrorKind.BAD_CREDENTIALS and error.code in _CREDENTIAL_FIXES:
        return _CREDENTIAL_FIXES[error.code]
    if error.kind is ErrorKind.BAD_CREDENTIALS:
        return "fetch fresh credentials from the configured source and check the device clock"
    return REMEDIATION[error.kind]


def one_problem(
    check_id: str, target: str, finding: Finding, details: Mapping[str, Any]
) -> CheckResult:
    """The result of a target with exactly one (non-OK) finding: no OK message to give."""
    return fold(check_id, target, [finding], "", details)


def error_finding(error: AwsError) -> Finding:
    """An error as a finding: its kind is the reason, with its status and remediation."""
    return Finding(status_of(error), error.kind.value, error.message, remediation_of(error))


def _error_details(error: AwsError) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if error.code:
        details["code"] = error.code
    if error.status is not None:
        details["http_status"] = error.status
    if error.region:
        details["bucket_region"] = error.region
    return details


def unknown_from(check_id: str, target: str, error: AwsError) -> CheckResult:
    """A result for an error with its own status (UNKNOWN unless it proves a defect)."""
    return one_problem(check_id, target, error_finding(error), _error_details(error))


def credentials_failed(
    source: str, error: AwsError, creds: CredentialFacts | None = None
) -> CheckResult:
    """``s3.credentials`` when none could be had or AWS rejected them."""
    details = _error_details(error)
    details["source"] = source
    if creds is not None:
        details["provider"] = creds.source
        details["access_key_id"] = creds.masked_key_id
    return one_problem("s3.credentials", source, error_finding(error), details)


def credentials_ok(
    source: str,
    creds: CredentialFacts,
    region: str,
    region_origin: str,
    identity: CallerIdentity | None,
) -> CheckResult:
    """``s3.credentials`` when credentials were obtained and nothing rejected them."""
    expiry = f"{creds.expiration:%Y-%m-%dT%H:%M:%SZ}" if creds.expiration else None
    verified = "accepted by STS" if identity else "not yet verified (STS did not answer)"
    message = f"credentials from {creds.source} ({creds.masked_key_id}), {verified}"
    if expiry:
        message += f", expire {expiry}"
    details = {
        "provider": creds.source,
        "access_key_id": creds.masked_key_id,
        "expires_at": expiry,
        "region": region,
        "region_source": region_origin,
    }
    return CheckResult("s3.credentials", Status.OK, source, message, details)


def role_matches(identity: CallerIdentity, expected: str) -> bool:
    """Whether ``identity`` is ``expected`` (a role name, a role ARN or an assumed-role ARN)."""
    wanted = expected.strip()
    if not wanted.startswith("arn:"):
        return (identity.role_name or "").casefold() == wanted.casefold()
    parts = wanted.split(":", 5)
    if len(parts) < 6 or (parts[4] and parts[4] != identity.account):
        return False
    kind, _, rest = parts[5].partition("/")
    name = rest.rsplit("/", 1)[-1] if kind == "role" else rest.split("/", 1)[0]
    return bool(name) and (identity.role_name or "").casefold() == name.casefold()


def identity_result(identity: CallerIdentity, expected: str | None) -> CheckResult:
    """``s3.identity``: who the credentials are; WARNING when not ``s3.expectedRole``."""
    target = expected or "service role"
    details = {"arn": identity.arn, "account": identity.account, "role": identity.role_name}
    findings: list[Finding] = []
    if expected and not role_matches(identity, expected):
        details["expected_role"] = expected
        findings.append(
            Finding(
                Status.WARNING,
                "unexpected_role",
                f"the credentials belong to {identity.arn}, not the expected role {expected}",
                f"point the nucleus iotRoleAlias at a role alias for {expected}, or correct "
                "s3.expectedRole",
            )
        )
    return fold("s3.identity", target, findings, f"credentials belong to {identity.arn}", details)


def blocked(check_id: str, target: str, why: str, targets: list[str]) -> CheckResult:
    """One UNKNOWN standing for every target a check could not examine."""
    count = f" ({len(targets)} targets)" if targets else ""
    details = {"count": len(targets), "targets_sample": targets[:5]}
    message = f"not verified{count}: {why}"
    return one_problem(
        check_id,
        target,
        Finding(Status.UNKNOWN, "no_credentials", message, FIX_CREDENTIALS_FIRST),
        details,
    )


def recipe_problem_result(problem: RecipeProblem) -> CheckResult:
    """``s3.artifact`` UNKNOWN for a deployed component whose recipe could not be read."""
    finding = Finding(
        Status.UNKNOWN,
        problem.reason,
        f"artifacts not verified: {problem.message}",
        "check packages/recipes/ of the Greengrass root (the nucleus writes the recipe of every "
        "deployed component there); redeploy the component if its recipe is damaged",
    )
    details = {
        "component": problem.component,
        "version": problem.version,
        "recipe": str(problem.path) if problem.path else None,
    }
    return one_problem("s3.artifact", f"{problem.component}@{problem.version}", finding, details)


def invalid_uri_result(artifact: Artifact, bucket: str, key: str) -> CheckResult:
    """``s3.artifact`` CRITICAL for an artifact URI that names no S3 object."""
    finding = Finding(
        Status.CRITICAL,
        "invalid_uri",
        f"not a valid S3 object URI (bucket {bucket!r}, key {key!r})",
        "fix the artifact URI in the component recipe and publish a new version",
        f"{artifact.component}@{artifact.version} cannot be deployed again",
    )
    details = {"component": artifact.component, "version": artifact.version}
    return one_problem("s3.artifact", artifact.uri, finding, details)


def scrub_results(
    results: list[CheckResult], secrets: tuple[str, ...], env: Mapping[str, str]
) -> list[CheckResult]:
    """The results with every known secret value redacted from text and details."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value, secrets, env)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return [
        CheckResult(
            r.id,
            r.status,
            clean(r.target),
            clean(r.message),
            clean(dict(r.details)),
            clean(r.remediation) if r.remediation else None,
        )
        for r in results
    ]
