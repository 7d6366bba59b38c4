"""Where the service role's credentials come from: environment, profile, the Greengrass token
exchange service (container endpoint), or the AWS IoT credentials provider with the device cert.

``s3.credentials.source``:

- ``default``: environment variables, then the shared profile files, then the container
  endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI`` + ``AWS_CONTAINER_AUTHORIZATION_TOKEN``, which
  the token exchange service gives a component that depends on it). Read from the check's
  environment rather than ``os.environ``; no EC2 instance-metadata probe (a core device gets its
  role from TES, and probing 169.254.169.254 off EC2 would only burn the timeout).
- ``tes``: the container endpoint only (see :mod:`agent.aws.container`).
- ``x509``: what the nucleus itself does (see :mod:`agent.aws.iot_credentials`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from agent.errors import AwsError, ErrorKind

SOURCES = ("default", "tes", "x509")


@dataclass(frozen=True)
class Credentials:
    """AWS credentials; the secret parts never show in ``repr`` and are scrubbed from output."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiration: datetime | None = None
    source: str = ""
    """Where they came from, for people (``environment``, ``container endpoint http://...``)."""

    @property
    def masked_key_id(self) -> str:
        """The access key id shortened to its type prefix and last four characters."""
        key = self.access_key_id
        return f"{key[:4]}…{key[-4:]}" if len(key) > 8 else "…"

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Values that must never appear in a result or a log line."""
        return tuple(v for v in (self.secret_access_key, self.session_token) if v)

    @cached_property
    def _provider(self) -> Any:
        from awscrt.auth import AwsCredentialsProvider

        return AwsCredentialsProvider.new_static(
            self.access_key_id, self.secret_access_key, self.session_token
        )

    def provider(self) -> Any:
        """An awscrt static credentials provider for signing (built once)."""
        return self._provider


def parse_expiration(value: Any) -> datetime | None:
    """An ISO 8601 expiration (``2026-11-29T19:41:38Z``) as an aware datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def ensure_fresh(creds: Credentials, now: datetime) -> Credentials:
    """Refuse credentials whose expiration has passed (a stuck provider or a wrong clock)."""
    if creds.expiration is not None and creds.expiration <= now:
        raise AwsError(
            ErrorKind.BAD_CREDENTIALS,
            f"credentials from {creds.source} expired at {creds.expiration:%Y-%m-%dT%H:%M:%SZ}",
            remediation="check the device clock (NTP) and restart the token exchange service "
            "(aws.greengrass.Nucleus) so it fetches fresh credentials",
        )
    return creds


def from_environment(env: Mapping[str, str]) -> Credentials | None:
    """``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, if set."""
    key_id, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key_id and not secret:
        return None
    if not key_id or not secret:
        missing = "AWS_SECRET_ACCESS_KEY" if key_id else "AWS_ACCESS_KEY_ID"
        raise AwsError(
            ErrorKind.NOT_CONFIGURED,
            f"the environment sets only half of a key pair: {missing} is missing",
            remediation=f"set {missing} or unset the other variable",
        )
    return Credentials(key_id, secret, env.get("AWS_SESSION_TOKEN") or None, source="environment")


def from_profile(env: Mapping[str, str], *, timeout: float) -> Credentials | None:
    """The shared config/credentials files through awscrt's profile provider, if present."""
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    creds_file = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    config_file = Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    profile = env.get("AWS_PROFILE")
    if not profile and not creds_file.is_file() and not config_file.is_file():
        return None
    from agent.config.files import MAX_IDENTITY_FILE_BYTES, InputError, vet_file

    # awscrt's profile loader reads without bound: /dev/zero never returns, a FIFO blocks, a
    # 3 GiB sparse file takes gigabytes. A path the environment names must be a sane file.
    for path, variable in (
        (creds_file, "AWS_SHARED_CREDENTIALS_FILE"),
        (config_file, "AWS_CONFIG_FILE"),
    ):
        if not os.path.lexists(path):
            continue  # a missing file is a missing link of the chain, as before
        try:
            vet_file(path, MAX_IDENTITY_FILE_BYTES)
        except InputError as exc:
            raise AwsError(
                ErrorKind.NOT_CONFIGURED,
                f"the AWS profile file {exc}",
                remediation=f"point {variable} at a shared credentials/config file, or unset it",
            ) from None
    from awscrt.auth import AwsCredentialsProvider

    from agent.aws.http import _bootstrap

    name = profile or "default"
    try:
        provider = AwsCredentialsProvider.new_profile(
            client_bootstrap=_bootstrap(),
            profile_name=name,
            config_filepath=str(config_file),
            credentials_filepath=str(creds_file),
        )
        found = provider.get_credentials().result(timeout=timeout)
    except Exception as exc:
        if not profile:
            return None  # files exist but hold no default profile: not this link of the chain
        crt = getattr(exc, "name", type(exc).__name__)
        raise AwsError(
            ErrorKind.NOT_CONFIGURED,
            f"AWS_PROFILE={name} gives no credentials ({crt})",
            remediation=f"fix profile [{name}] in {creds_file} or {config_file}, "
            "or unset AWS_PROFILE",
        ) from None
    return Credentials(
        found.access_key_id,
        found.secret_access_key,
        found.session_token or None,
        source=f"profile {name}",
    )
