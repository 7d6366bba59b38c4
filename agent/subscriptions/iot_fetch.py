"""``subscriptions.fetchIotPolicy``: the policies AWS IoT has attached to the device certificate.

STS ``GetCallerIdentity`` names the account, then ``ListAttachedPolicies`` on the certificate ARN
(its id is the SHA-256 of the DER certificate) and ``GetPolicy`` for each, signed with awscrt
through ``agent.aws`` and honouring ``AWS_ENDPOINT_URL_IOT``. The HTTP stack is imported only
here, and only when fetching is switched on.
https://docs.aws.amazon.com/iot/latest/apireference/API_ListAttachedPolicies.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent.subscriptions.iot_policy import IotPolicy
from agent.subscriptions.iot_sources import documents_from_api

if TYPE_CHECKING:
    from agent.aws.http import HttpClient
    from agent.config.models import S3Config
    from agent.greengrass.root import GreengrassRoot

MAX_CERTIFICATE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    """The attached policies and where they live."""

    policies: list[IotPolicy]
    account: str
    region: str
    secrets: tuple[str, ...] = ()
    """Credential values to scrub from anything reported about this fetch."""


def read_certificate(path: str | None) -> bytes:
    """The device certificate (PEM or DER), read with a size cap; AwsError when unusable."""
    from agent.aws.errors import AwsError, ErrorKind

    if path is None or path.startswith("pkcs11:"):
        raise AwsError(
            ErrorKind.NOT_CONFIGURED,
            "system.certificateFilePath names no "
            "certificate file, so the certificate ARN is unknown",
        )
    try:
        with open(Path(path), "rb") as fh:
            data = fh.read(MAX_CERTIFICATE_BYTES + 1)
    except OSError as exc:
        raise AwsError(
            ErrorKind.NOT_CONFIGURED,
            f"cannot read the device certificate {path}: {exc.strerror or exc}",
        ) from None
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise AwsError(ErrorKind.NOT_CONFIGURED, f"{path} is larger than a certificate")
    return data


def fetch_policies(
    *,
    config: S3Config,
    greengrass: GreengrassRoot,
    env: Mapping[str, str],
    thing_name: str,
    now: datetime,
    http: HttpClient,
) -> Fetched:
    """Fetch and parse the attached policies; raises AwsError or PolicyError."""
    from agent.aws.endpoints import partition
    from agent.aws.iot import fetch_attached_policies
    from agent.aws.session import open_session
    from agent.aws.sts import get_caller_identity

    certificate = read_certificate(greengrass.path("certificateFilePath"))
    session = open_session(
        config=config, greengrass=greengrass, env=env, thing_name=thing_name, now=now, http=http
    )
    account = get_caller_identity(session).account
    attached = fetch_attached_policies(session, certificate, account=account)
    policies = documents_from_api({p.name: p.document for p in attached})
    arn = f"arn:{partition(session.region)}:iot:{session.region}:{account}:policy/"
    policies = [IotPolicy(p.name, p.statements, arn + p.name) for p in policies]
    return Fetched(policies, account, session.region, session.credentials.secret_values)
