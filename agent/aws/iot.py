"""The AWS IoT policies attached to the device certificate (for ``subscription.iot_policy``).

``ListAttachedPolicies`` on the certificate ARN ``arn:aws:iot:<region>:<account>:cert/<id>``
(the id is the SHA-256 of the DER certificate, as AWS IoT computes it), then ``GetPolicy`` for
each: https://docs.aws.amazon.com/iot/latest/apireference/API_ListAttachedPolicies.html and
https://docs.aws.amazon.com/iot/latest/apireference/API_GetPolicy.html
The device's role rarely may call these, hence ``subscriptions.fetchIotPolicy`` is off by default.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from agent.aws.endpoints import partition
from agent.aws.errors import AwsError, ErrorKind, classify
from agent.aws.session import AwsSession
from agent.config.files import loads_json

MAX_PAGES = 20
"""A certificate has at most 10 policies attached (IoT quota); pages beyond this are a bug."""


@dataclass(frozen=True)
class AttachedPolicy:
    """One IoT policy attached to the certificate."""

    name: str
    document: str
    """The policy document JSON text, as GetPolicy returns it."""


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
