"""The container credentials endpoint: what the Greengrass token exchange service (TES) serves.

A component that depends on ``aws.greengrass.TokenExchangeService`` gets
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (``http://localhost:<port>/2016-11-01/credentialprovider/``)
and ``AWS_CONTAINER_AUTHORIZATION_TOKEN``; a GET with the token in ``Authorization`` answers
``{AccessKeyId, SecretAccessKey, Token, Expiration}``. Rules as the AWS SDKs apply them:
https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html
The TES relays the AWS IoT credentials provider; its 403 means the device's IoT policy lacks
``iot:AssumeRoleWithCertificate`` (or this component's token was refused):
https://docs.aws.amazon.com/greengrass/v2/developerguide/device-service-role.html
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from agent.aws.classify import classify
from agent.aws.credentials import Credentials, parse_expiration
from agent.aws.endpoints import Endpoint, parse_endpoint
from agent.aws.http import HttpClient
from agent.config.files import InputError, loads_json, read_text_bounded
from agent.errors import AwsError, ErrorKind

ECS_HOST = "169.254.170.2"
# Hosts the SDKs accept over plain http besides loopback (ECS and EKS pod identity agents).
_LINK_LOCAL_HOSTS = frozenset({"169.254.170.2", "169.254.170.23", "fd00:ec2::23"})
ASSUME_ROLE_HINT = (
    "allow iot:AssumeRoleWithCertificate on the token exchange role alias in the AWS IoT policy "
    "attached to the device certificate"
)


def container_uri(env: Mapping[str, str]) -> str | None:
    """The credentials URI the environment names, if any."""
    full = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if full:
        return full
    relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    return f"http://{ECS_HOST}{relative}" if relative else None


def _token(env: Mapping[str, str]) -> str | None:
    token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if token_file:
        try:
            return read_text_bounded(Path(token_file), 16 * 1024).strip()
        except InputError as exc:
            raise AwsError(ErrorKind.NOT_CONFIGURED, f"cannot read the token file: {exc}") from None
    return env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN") or None


def _check_host(endpoint: Endpoint) -> None:
    # Plain http would carry the token in clear text: the SDKs only allow it to loopback.
    if endpoint.tls or endpoint.host in _LINK_LOCAL_HOSTS or endpoint.host == "localhost":
        return
    try:
        if ipaddress.ip_address(endpoint.host).is_loopback:
            return
    except ValueError:
        pass
    raise AwsError(
        ErrorKind.NOT_CONFIGURED,
        f"refusing to send the container authorization token over plain http to {endpoint.host}",
        remediation="AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or point at a loopback host",
    )


def from_container(
    env: Mapping[str, str], http: HttpClient, *, timeout: float, role_alias: str | None
) -> Credentials | None:
    """Credentials from the container endpoint, or None when the environment names none."""
    uri = container_uri(env)
    if uri is None:
        return None
    endpoint = parse_endpoint(uri, what="AWS_CONTAINER_CREDENTIALS_FULL_URI", default_scheme="http")
    _check_host(endpoint)
    headers = [("Accept", "application/json")]
    token = _token(env)
    if token:
        headers.append(("Authorization", token))
    parts = urlsplit(uri.strip())
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    endpoint = replace(endpoint, base_path="")
    where = f"container credentials endpoint {endpoint.url(path)}"
    # The container endpoint is the nucleus's token exchange service on this device: its Date is
    # the device's own clock, useless to system.clock.
    response = http.request("GET", endpoint, path, headers, None, timeout=timeout, aws_time=False)
    if response.status in (401, 403):
        raise _denied(response.status, response.body, where, role_alias, token is not None)
    if not response.ok:
        raise classify(response.status, response.headers, b"", what=where)
    return parse_container_body(response.body, where)


def _denied(
    status: int, body: bytes, where: str, role_alias: str | None, had_token: bool
) -> AwsError:
    alias = f"rolealias/{role_alias}" if role_alias else "the role alias (nucleus iotRoleAlias)"
    lacks = (
        f"the IoT policy of the device certificate lacks iot:AssumeRoleWithCertificate on {alias}"
    )
    remediation = f"{ASSUME_ROLE_HINT} ({alias})"
    if b"responded with status code" in body or b"Access Denied" in body:
        # The nucleus relays the IoT credentials provider's refusal with this body.
        message = f"{where} relayed a {status} from the AWS IoT credentials provider: {lacks}"
    elif had_token:
        message = f"{where} answered {status}: {lacks}, or it refused this component's token"
        remediation += (
            "; if the policy allows it, make the agent's recipe depend on "
            "aws.greengrass.TokenExchangeService so the nucleus gives it a valid token"
        )
    else:
        message = f"{where} answered {status} and no AWS_CONTAINER_AUTHORIZATION_TOKEN was set"
        remediation = "make the agent's recipe depend on aws.greengrass.TokenExchangeService"
    return AwsError(ErrorKind.ACCESS_DENIED, message, status=status, remediation=remediation)


def parse_container_body(body: bytes, where: str) -> Credentials:
    """``{AccessKeyId, SecretAccessKey, Token, Expiration}`` as Credentials."""
    try:
        data = loads_json(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise AwsError(
            ErrorKind.UNEXPECTED, f"{where} answered 200 without a JSON credentials object"
        )
    key_id, secret = data.get("AccessKeyId"), data.get("SecretAccessKey")
    if not isinstance(key_id, str) or not isinstance(secret, str) or not key_id or not secret:
        raise AwsError(
            ErrorKind.UNEXPECTED, f"{where} answered 200 without AccessKeyId/SecretAccessKey"
        )
    token = data.get("Token")
    return Credentials(
        key_id,
        secret,
        token if isinstance(token, str) and token else None,
        parse_expiration(data.get("Expiration")),
        source=where,
    )
