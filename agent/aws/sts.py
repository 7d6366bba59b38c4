"""STS GetCallerIdentity: who the credentials belong to (needs no IAM permission).

https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.aws.classify import classify, xml_text
from agent.aws.session import AwsSession
from agent.errors import AwsError, ErrorKind

_BODY = b"Action=GetCallerIdentity&Version=2011-06-15"


@dataclass(frozen=True)
class CallerIdentity:
    """The principal behind a set of credentials."""

    account: str
    arn: str
    user_id: str

    @property
    def role_name(self) -> str | None:
        """The role of an assumed-role ARN (``arn:aws:sts::1:assumed-role/ROLE/session``)."""
        resource = self.arn.split(":", 5)[-1]
        kind, _, rest = resource.partition("/")
        if kind != "assumed-role":
            return None
        return rest.split("/", 1)[0] or None


def get_caller_identity(session: AwsSession) -> CallerIdentity:
    """Call GetCallerIdentity; AwsError (``bad_credentials`` when STS rejects the keys)."""
    endpoint = session.endpoint("sts")
    what = "STS GetCallerIdentity"
    response = session.send(
        service="sts",
        method="POST",
        endpoint=endpoint,
        path=f"{endpoint.base_path}/",
        what=what,
        headers=[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
        body=_BODY,
    )
    if not response.ok:
        raise classify(response.status, response.headers, response.body, what=what)
    arn = xml_text(response.body, "Arn")
    account = xml_text(response.body, "Account")
    if not arn or not account:
        raise AwsError(ErrorKind.UNEXPECTED, f"{what} answered without an Arn/Account")
    return CallerIdentity(account=account, arn=arn, user_id=xml_text(response.body, "UserId") or "")
