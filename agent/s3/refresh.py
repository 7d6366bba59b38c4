"""When a running agent may reuse its last S3 audit instead of probing AWS again.

Access to S3 changes rarely (someone edits the token exchange role or a bucket policy), while
every probe is billed: a cycle of the standard device signs ~20 requests, one PutObject +
DeleteObject per writable bucket among them, and a fleet of thousands of devices multiplies
that. So the verdicts of a probe are reused for ``s3.refreshSeconds`` (default 15 minutes), and
probed again at once when anything they depend on that the device can see changes: the deployed
artifacts (or the recipe problems), the ``s3`` configuration, the credentials (environment,
profile files, the device certificate and key the x509 source presents, the TES token), the
region or the thing name. Credentials that expire force a new probe as well, and so does an
audit that got no answer from AWS (unreachable, timeout, throttled, 5xx): "could not verify"
must not stick for a quarter of an hour once the network is back.

Each result carries ``details.checked_at``, the time of the probe behind it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.config.models import S3Config
from agent.errors import ErrorKind
from agent.greengrass.recipes import DeployedArtifacts
from agent.greengrass.root import GreengrassRoot
from agent.report import CheckResult

# Answers that prove nothing about access: an audit holding one is probed again next cycle.
_NO_ANSWER = frozenset(
    k.value
    for k in (ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT, ErrorKind.THROTTLED, ErrorKind.SERVER_ERROR)
)
# Files the credential sources read (SPEC, s3.credentials): a change means other credentials.
_IDENTITY_FILES = ("certificateFilePath", "privateKeyPath", "rootCaPath")

FileStamp = tuple[int, int, int, int, int] | None


@dataclass(frozen=True)
class AuditInputs:
    """Everything an S3 verdict depends on that the device can read without a network call."""

    config: S3Config
    thing_name: str
    region: str
    nucleus: tuple[str | None, str | None]
    """The nucleus ``iotRoleAlias`` and ``iotCredEndpoint`` (the x509 and TES sources)."""
    environment: bytes
    """SHA-256 of the ``AWS_*`` variables and ``HOME``: credentials, profile, endpoints."""
    files: tuple[tuple[str, FileStamp], ...]
    """Stamps of the identity files and credential files the sources read."""
    deployed: DeployedArtifacts | None
    """The deployed artifacts and recipe problems (None with ``s3.checkArtifacts: false``)."""


@dataclass(frozen=True)
class ProbedAudit:
    """The results of one probe of AWS and what they were derived from."""

    inputs: AuditInputs
    results: Mapping[str, list[CheckResult]]
    checked_at: datetime
    credentials_expire: datetime | None

    def reusable(self, inputs: AuditInputs, now: datetime, refresh_seconds: float) -> bool:
        """True when these results still stand for ``inputs`` at ``now``."""
        age = (now - self.checked_at).total_seconds()
        if not 0 <= age < refresh_seconds:  # a clock stepped backwards also re-probes
            return False
        if self.credentials_expire is not None and now >= self.credentials_expire:
            return False
        return inputs == self.inputs and not self.got_no_answer

    @property
    def got_no_answer(self) -> bool:
        """Whether some call went unanswered, also behind a worse finding of the same result
        (a timed-out HeadObject beside a denied GetBucketLocation is still unverified)."""
        return any(
            not _NO_ANSWER.isdisjoint(r.details.get("reasons", ()))
            for rs in self.results.values()
            for r in rs
        )


def _stamp(path: str | os.PathLike[str] | None) -> FileStamp:
    if path is None or str(path).startswith("pkcs11:"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _credential_files(config: S3Config, gg: GreengrassRoot, env: Mapping[str, str]) -> list[str]:
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    found = [
        env.get("AWS_SHARED_CREDENTIALS_FILE") or str(home / ".aws" / "credentials"),
        env.get("AWS_CONFIG_FILE") or str(home / ".aws" / "config"),
    ]
    token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if token_file:
        found.append(token_file)
    found += [p for key in _IDENTITY_FILES if (p := gg.path(key)) is not None]
    if config.credentials.ca_path is not None:
        found.append(str(config.credentials.ca_path))
    return found


def _environment_digest(env: Mapping[str, str]) -> bytes:
    # Hashed rather than kept: the cache must not hold a second copy of a secret key.
    digest = hashlib.sha256()
    for key in sorted(k for k in env if k.startswith("AWS_") or k == "HOME"):
        digest.update(f"{key}={env[key]}\0".encode("utf-8", "surrogateescape"))
    return digest.digest()


def audit_inputs(
    *,
    config: S3Config,
    greengrass: GreengrassRoot,
    env: Mapping[str, str],
    thing_name: str,
    region: str,
    deployed: DeployedArtifacts | None,
) -> AuditInputs:
    """The inputs of an S3 audit as they are now: a few ``stat`` calls and one hash."""
    return AuditInputs(
        config=config,
        thing_name=thing_name,
        region=region,
        nucleus=(greengrass.role_alias, greengrass.credentials_endpoint),
        environment=_environment_digest(env),
        files=tuple((p, _stamp(p)) for p in _credential_files(config, greengrass, env)),
        deployed=deployed,
    )
