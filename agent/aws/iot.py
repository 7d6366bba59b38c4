"""The AWS IoT policies attached to the device certificate (for ``subscription.iot_policy``).

``ListAttachedPolicies`` on the certificate ARN ``arn:aws:iot:<region>:<account>:cert/<id>``
(the id is the SHA-256 of the DER certificate, as AWS IoT computes it), then ``GetPolicy`` for
each: https://docs.aws.amazon.com/iot/latest/apireference/API_ListAttachedPolicies.html and
https://docs.aws.amazon.com/iot/latest/apireference/API_GetPolicy.html
The device's role rarely may call these, hence ``subscriptions.fetchIotPolicy`` is off by default.

With the policies comes what ``iot:Connection.Thing.*`` conditions need
(https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html): the thing's
type and attributes (``DescribeThing``,
https://docs.aws.amazon.com/iot/latest/apireference/API_DescribeThing.html) and whether the
certificate is attached to it (``ListThingPrincipals``,
https://docs.aws.amazon.com/iot/latest/apireference/API_ListThingPrincipals.html). Those calls
may fail on their own (a role allowed to read policies but not things): the conditions then stay
undecided and :class:`ThingDescription` says which permission was missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from agent.aws.classify import classify
from agent.aws.endpoints import partition
from agent.aws.session import AwsSession
from agent.config.files import loads_json
from agent.errors import AwsError, ErrorKind

if TYPE_CHECKING:
    from agent.aws.http import HttpClient
    from agent.config import S3Config
    from agent.greengrass.root import GreengrassRoot

MAX_PAGES = 20
"""A certificate has at most 10 policies attached (IoT quota); pages beyond this are a bug."""
MAX_CERTIFICATE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class AttachedPolicy:
    """One IoT policy attached to the certificate."""

    name: str
    document: str
    """The policy document JSON text, as GetPolicy returns it."""


@dataclass(frozen=True)
class ThingDescription:
    """What AWS IoT's registry told about the device's thing, and what it would not tell."""

    described: bool = False
    """DescribeThing answered (or said the thing does not exist); type and attributes are known."""
    type_name: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    attached: bool | None = None
    """The device certificate is among the thing's principals; None when unknown."""
    missing: tuple[str, ...] = ()
    """IoT actions the calls were refused (``iot:DescribeThing``, ``iot:ListThingPrincipals``)."""
    problems: tuple[str, ...] = ()
    """One message per call that did not give a usable answer."""


@dataclass(frozen=True)
class DevicePolicies:
    """The policies attached to the device certificate, and where they live."""

    attached: list[AttachedPolicy]
    account: str
    region: str
    policy_arn_prefix: str
    """``arn:<partition>:iot:<region>:<account>:policy/``: a policy's ARN is this plus its name."""
    secrets: tuple[str, ...] = ()
    """Credential values to scrub from anything reported about this fetch."""
    thing: ThingDescription | None = None
    """The thing's registry entry (None: not asked)."""


def read_certificate(path: str | None) -> bytes:
    """The device certificate (PEM or DER), read with a size cap; AwsError when unusable."""
    if path is None or path.startswith("pkcs11:"):
        raise AwsError(
            ErrorKind.NOT_CONFIGURED,
            "system.certificateFilePath names no "
            "certificate file, so the certificate ARN is unknown",
        )
    from agent.config.files import InputError, read_bytes_bounded

    try:
        return read_bytes_bounded(Path(path), MAX_CERTIFICATE_BYTES)
    except InputError as exc:
        raise AwsError(
            ErrorKind.NOT_CONFIGURED, f"cannot read the device certificate: {exc}"
        ) from None


def fetch_device_policies(
    *,
    config: S3Config,
    greengrass: GreengrassRoot,
    env: Mapping[str, str],
    thing_name: str,
    now: datetime,
    http: HttpClient,
) -> DevicePolicies:
    """STS ``GetCallerIdentity`` names the account, then the certificate's attached policies.

    Signed with awscrt, honouring ``AWS_ENDPOINT_URL_IOT``; raises AwsError.
    """
    from agent.aws.session import open_session
    from agent.aws.sts import get_caller_identity

    certificate = read_certificate(greengrass.path("certificateFilePath"))
    session = open_session(
        config=config, greengrass=greengrass, env=env, thing_name=thing_name, now=now, http=http
    )
    account = get_caller_identity(session).account
    attached = fetch_attached_policies(session, certificate, account=account)
    thing = describe_thing(session, thing_name, certificate)
    prefix = f"arn:{partition(session.region)}:iot:{session.region}:{account}:policy/"
    return DevicePolicies(
        attached, account, session.region, prefix, session.credentials.secret_values, thing
    )


def describe_thing(session: AwsSession, thing_name: str, certificate: bytes) -> ThingDescription:
    """The thing's type, attributes and whether ``certificate`` is attached to it.

    Never raises for a failed call: what could not be learnt stays None, and ``missing`` /
    ``problems`` say why (an AccessDenied names the IoT action the credentials lack).
    """
    missing: list[str] = []
    problems: list[str] = []
    path = f"/things/{quote(thing_name, safe='')}"
    try:
        answer = _call(session, "GET", path, f"IoT DescribeThing {thing_name}")
    except AwsError as exc:
        if exc.kind is ErrorKind.NOT_FOUND:
            # No such thing: the connection has no thing, so thing keys are absent and
            # IsAttached is false (thing-policy-variables.html).
            return ThingDescription(
                described=True,
                attached=False,
                problems=(f"the thing {thing_name} is not in the AWS IoT registry",),
            )
        _note(exc, "iot:DescribeThing", missing, problems)
        record = ThingDescription()
    else:
        record = _thing_record(answer, thing_name, problems)
    attached = _is_attached(session, thing_name, certificate, missing, problems)
    return ThingDescription(
        record.described,
        record.type_name,
        record.attributes,
        attached,
        tuple(missing),
        tuple(problems),
    )


def _note(exc: AwsError, action: str, missing: list[str], problems: list[str]) -> None:
    if exc.kind is ErrorKind.ACCESS_DENIED:
        missing.append(action)
    problems.append(str(exc))


def _thing_record(answer: dict[str, Any], thing_name: str, problems: list[str]) -> ThingDescription:
    """Type and attributes from a DescribeThing answer; undescribed when they have odd types."""
    what = f"IoT DescribeThing {thing_name}"
    type_name = answer.get("thingTypeName")
    attributes = answer.get("attributes", {})
    if type_name is not None and not isinstance(type_name, str):
        problems.append(f"{what} answered a thingTypeName that is not a string")
        return ThingDescription()
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        problems.append(f"{what} answered attributes that are not a map of strings")
        return ThingDescription()
    return ThingDescription(True, type_name or None, tuple(sorted(attributes.items())))


def _is_attached(
    session: AwsSession,
    thing_name: str,
    certificate: bytes,
    missing: list[str],
    problems: list[str],
) -> bool | None:
    """Whether the certificate is one of the thing's principals; None when unknown."""
    what = f"IoT ListThingPrincipals {thing_name}"
    suffix = f":cert/{certificate_id(certificate)}"
    token: str | None = None
    for _ in range(MAX_PAGES):
        query = {"maxResults": "250"}
        if token:
            query["nextToken"] = token
        try:
            page = _call(
                session,
                "GET",
                f"/things/{quote(thing_name, safe='')}/principals?{urlencode(query)}",
                what,
            )
        except AwsError as exc:
            _note(exc, "iot:ListThingPrincipals", missing, problems)
            return None
        principals = page.get("principals") or []
        if not isinstance(principals, list) or not all(isinstance(p, str) for p in principals):
            problems.append(f"{what} answered principals that are not a list of ARNs")
            return None
        if any(p.endswith(suffix) for p in principals):
            return True
        next_token = page.get("nextToken")
        token = next_token if isinstance(next_token, str) else None
        if not token:
            return False
    problems.append(f"{what} answered more than {MAX_PAGES} pages")
    return None


def certificate_id(certificate: bytes) -> str:
    """AWS IoT's certificate id: the SHA-256 (hex) of the DER encoding; PEM or DER input."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        if b"-----BEGIN" in certificate:
            cert = x509.load_pem_x509_certificate(certificate)
        else:
            cert = x509.load_der_x509_certificate(certificate)
    except ValueError as exc:
        raise AwsError(ErrorKind.NOT_CONFIGURED, f"not an X.509 certificate: {exc}") from None
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def certificate_arn(certificate: bytes, *, region: str, account: str) -> str:
    """``arn:<partition>:iot:<region>:<account>:cert/<certificate id>``."""
    return f"arn:{partition(region)}:iot:{region}:{account}:cert/{certificate_id(certificate)}"


def fetch_attached_policies(
    session: AwsSession, certificate: bytes, *, account: str | None = None
) -> list[AttachedPolicy]:
    """(name, document) of every IoT policy attached to ``certificate`` (PEM or DER).

    ``account`` defaults to the caller's account from STS GetCallerIdentity. Raises AwsError:
    ``access_denied`` when the role may not call iot:ListAttachedPolicies / iot:GetPolicy.
    """
    if account is None:
        from agent.aws.sts import get_caller_identity

        account = get_caller_identity(session).account
    target = certificate_arn(certificate, region=session.region, account=account)
    names: list[str] = []
    marker: str | None = None
    for _ in range(MAX_PAGES):
        query = {"recursive": "false", "pageSize": "250"}
        if marker:
            query["marker"] = marker
        page = _call(
            session,
            "POST",
            f"/attached-policies/{quote(target, safe='')}?{urlencode(query)}",
            "IoT ListAttachedPolicies",
        )
        for item in page.get("policies") or []:
            if isinstance(item, dict) and isinstance(item.get("policyName"), str):
                names.append(item["policyName"])
        marker = page.get("nextMarker") if isinstance(page.get("nextMarker"), str) else None
        if not marker:
            break
    policies = []
    for name in names:
        doc = _call(session, "GET", f"/policies/{quote(name, safe='')}", f"IoT GetPolicy {name}")
        text = doc.get("policyDocument")
        if not isinstance(text, str):
            raise AwsError(
                ErrorKind.UNEXPECTED, f"IoT GetPolicy {name} answered without a document"
            )
        policies.append(AttachedPolicy(name, text))
    return policies


def _call(session: AwsSession, method: str, path: str, what: str) -> dict[str, Any]:
    endpoint = session.endpoint("iot")
    response = session.send(
        service="iot",
        method=method,
        endpoint=endpoint,
        path=f"{endpoint.base_path}{path}",
        what=what,
        headers=[("Accept", "application/json")],
        body=b"" if method == "POST" else None,
    )
    if not response.ok:
        raise classify(response.status, response.headers, response.body, what=what)
    try:
        data = loads_json(response.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise AwsError(ErrorKind.UNEXPECTED, f"{what} answered with a body that is not JSON")
    return data
