"""Credentials from the AWS IoT credentials provider, with the device certificate over mTLS.

This is what the nucleus's token exchange service does on the device:
``GET https://<iotCredEndpoint>/role-aliases/<iotRoleAlias>/credentials`` with the header
``x-amzn-iot-thingname``, answered by ``{"credentials": {accessKeyId, secretAccessKey,
sessionToken, expiration}}``: https://docs.aws.amazon.com/iot/latest/developerguide/authorizing-direct-aws.html

The request is made here rather than with ``AwsCredentialsProvider.new_x509`` because that
provider hides the HTTP status (a 403 must be reported as a missing
``iot:AssumeRoleWithCertificate``) and always dials port 443. For a test or debugging endpoint set
``s3.credentials.endpoint`` (``host:port`` or ``https://host:port``) and ``s3.credentials.caPath``
(the CA that signed that endpoint's certificate; default: the nucleus ``rootCaPath``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from agent.aws.classify import classify
from agent.aws.container import ASSUME_ROLE_HINT
from agent.aws.credentials import Credentials, parse_expiration
from agent.aws.endpoints import parse_endpoint
from agent.aws.http import HttpClient, TlsSettings
from agent.config.files import loads_json
from agent.config.models import S3CredentialsConfig
from agent.errors import AwsError, ErrorKind
from agent.greengrass.root import GreengrassRoot


def from_x509(
    *,
    greengrass: GreengrassRoot,
    config: S3CredentialsConfig,
    thing_name: str,
    http: HttpClient,
    timeout: float,
) -> Credentials:
    """Exchange the device certificate for role credentials, as the nucleus does."""
    endpoint_text = config.endpoint or greengrass.credentials_endpoint
    role_alias = greengrass.role_alias
    if not endpoint_text or not role_alias:
        missing = "iotCredEndpoint" if not endpoint_text else "iotRoleAlias"
        raise AwsError(
            ErrorKind.NOT_CONFIGURED,
            f"the nucleus configuration has no {missing}, so the x509 source cannot be used",
            remediation=f"set {missing} in the aws.greengrass.Nucleus configuration "
            "(or s3.credentials.endpoint for a test endpoint)",
        )
    endpoint = parse_endpoint(endpoint_text, what="iotCredEndpoint")
    if not endpoint.tls:
        raise AwsError(ErrorKind.NOT_CONFIGURED, "the IoT credentials endpoint must use https")
    cert, key = greengrass.path("certificateFilePath"), greengrass.path("privateKeyPath")
    tls = TlsSettings(
        ca_file=config.ca_path or _existing(greengrass.path("rootCaPath")),
        cert_file=_readable(cert, "certificateFilePath"),
        key_file=_readable(key, "privateKeyPath"),
    )
    path = f"{endpoint.base_path}/role-aliases/{quote(role_alias, safe='')}/credentials"
    where = f"AWS IoT credentials provider {endpoint.host_header} (role alias {role_alias})"
    response = http.request(
        "GET",
        endpoint,
        path,
        [("x-amzn-iot-thingname", thing_name), ("Accept", "application/json")],
        None,
        timeout=timeout,
        tls=tls,
    )
    if response.status == 403:
        raise AwsError(
            ErrorKind.ACCESS_DENIED,
            f"{where} answered 403: the IoT policy of the device certificate lacks "
            f"iot:AssumeRoleWithCertificate on rolealias/{role_alias}, or the role's trust policy "
            "does not trust credentials.iot.amazonaws.com",
            status=403,
            remediation=f"{ASSUME_ROLE_HINT} (rolealias/{role_alias})",
        )
    if response.status == 401:
        raise AwsError(
            ErrorKind.ACCESS_DENIED,
            f"{where} answered 401: the device certificate is not registered, not ACTIVE, or not "
            f"attached to thing {thing_name}",
            status=401,
            remediation="activate the device certificate in AWS IoT and attach it to the thing",
        )
    if response.status == 404:
        raise AwsError(
            ErrorKind.NOT_FOUND,
            f"{where} answered 404: role alias {role_alias} does not exist in this account/region",
            status=404,
            remediation="create the role alias (aws iot create-role-alias) or fix iotRoleAlias",
        )
    if not response.ok:
        raise classify(response.status, response.headers, response.body, what=where)
    return _parse(response.body, where)


def _parse(body: bytes, where: str) -> Credentials:
    try:
        data = loads_json(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    creds = data.get("credentials") if isinstance(data, dict) else None
    if not isinstance(creds, dict):
        raise AwsError(ErrorKind.UNEXPECTED, f"{where} answered 200 without a credentials object")
    key_id, secret, token = (
        creds.get("accessKeyId"),
        creds.get("secretAccessKey"),
        creds.get("sessionToken"),
    )
    if not all(isinstance(v, str) and v for v in (key_id, secret, token)):
        raise AwsError(ErrorKind.UNEXPECTED, f"{where} answered 200 with incomplete credentials")
    assert isinstance(key_id, str) and isinstance(secret, str) and isinstance(token, str)
    return Credentials(key_id, secret, token, parse_expiration(creds.get("expiration")), where)


def _existing(path: str | None) -> Path | None:
    return Path(path) if path and Path(path).is_file() else None


def _readable(path: str | None, key: str) -> Path:
    if path is None:
        raise AwsError(ErrorKind.NOT_CONFIGURED, f"system.{key} is not set in the nucleus config")
    if path.startswith("pkcs11:"):
        raise AwsError(
            ErrorKind.NOT_CONFIGURED,
            f"system.{key} is a PKCS#11 URI; the x509 credentials source needs key files",
            remediation="use s3.credentials.source: tes (the nucleus fetches the credentials)",
        )
    from agent.config.files import MAX_IDENTITY_FILE_BYTES, InputError, vet_file

    try:
        vet_file(Path(path), MAX_IDENTITY_FILE_BYTES)
    except InputError as exc:
        unreadable = "not readable by this user" in str(exc)
        raise AwsError(
            ErrorKind.NOT_CONFIGURED,
            f"system.{key}: {exc}",
            remediation="run the agent privileged (RequiresPrivilege: true) or use source tes"
            if unreadable
            else None,
        ) from None
    return Path(path)
