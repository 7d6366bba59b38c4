"""``subscriptions.fetchIotPolicy`` against real peers on loopback.

moto's AWS IoT holds the device certificate and the policies attached to it; the agent finds them
from the certificate alone (its ARN id is the SHA-256 of the DER encoding), reaching IoT through
``AWS_ENDPOINT_URL_IOT`` and STS through ``AWS_ENDPOINT_URL_STS``. A canned HTTP peer stands in
for the answers moto cannot give (AccessDenied on iot:GetPolicy) and shows the SigV4 signing.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from agent.checks.base import Kept
from agent.checks.subscriptions import FETCH_TTL_SECONDS, SubscriptionState, iot_policy
from agent.report import CheckResult, Status
from tests.peers.moto import ACCOUNT, REGION, MotoServer
from tests.peers.silent import Canned, canned  # noqa: F401  (fixture)
from tests.pki import NOW, cert_pem, make_ca, make_device_cert
from tests.subscriptions.conftest import (
    AGENT,
    POLICIES,
    THING,
    agent_grant,
    make_context,
    substitute,
    write_root,
)

pytestmark = pytest.mark.peer


def _core_policy(role_alias: str) -> str:
    text = substitute(
        (POLICIES / "greengrass-v2-core-device-minimal-iot-policy.json").read_text(),
        account_id=ACCOUNT,
        core_device_thing_name=THING,
        token_exchange_role_alias_name=role_alias,
    ).replace(":region:", f":{REGION}:")
    document = json.loads(text)
    document["Statement"].append(
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/dt/gghealth/{THING}/*",
        }
    )
    return json.dumps(document)


class Device:
    """A Greengrass root whose certificate moto knows, and the credentials the agent uses."""

    def __init__(self, moto: MotoServer, root: Path, policies: dict[str, str]) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.role_alias = f"TokenExchangeRoleAlias-{suffix}"
        device = make_device_cert(make_ca())
        pem = cert_pem(device.cert)
        write_root(
            root,
            {AGENT: {"configuration": {"accessControl": agent_grant("dt/#")}}},
            awsRegion=REGION,
            iotRoleAlias=self.role_alias,
        )
        (root / "thingCert.crt").write_bytes(pem)
        iot = moto.client("iot")
        arn = iot.register_certificate_without_ca(certificatePem=pem.decode(), status="ACTIVE")[
            "certificateArn"
        ]
        self.names = []
        for name, document in policies.items():
            unique = f"{name}-{suffix}"
            iot.create_policy(
                policyName=unique, policyDocument=document.replace("{role_alias}", self.role_alias)
            )
            iot.attach_policy(policyName=unique, target=arn)
            self.names.append(unique)
        self.env = {
            "AWS_ACCESS_KEY_ID": "AKIAGGHEALTHTEST0001",
            "AWS_SECRET_ACCESS_KEY": f"secret-{suffix}-never-reported",
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL_IOT": moto.url,
            "AWS_ENDPOINT_URL_STS": moto.url,
        }
        self.root = root

    def check(self, now: dt.datetime = NOW, kept: Kept | None = None) -> list[CheckResult]:
        ctx = make_context(self.root, subscriptions={"fetchIotPolicy": True})
        ctx.env = self.env
        ctx.clock = lambda: now
        if kept is not None:
            ctx.kept = kept
        return list(iot_policy(ctx))


def test_attached_policies_are_fetched_and_evaluated(moto_iot: MotoServer, root: Path) -> None:
    device = Device(
        moto_iot,
        root,
        {
            "GreengrassCoreMinimal": _core_policy("{role_alias}"),
            "GreengrassV2IoTThingPolicy": (
                POLICIES / "GreengrassV2IoTThingPolicy.json"
            ).read_text(),
        },
    )
    results = {r.target: r for r in device.check()}
    minimal, broad = sorted(device.names)
    assert results[" + ".join(device.names)].status is Status.OK
    assert results[broad].status is Status.WARNING
    assert results[broad].details["reason"] == "overly_permissive"
    assert results[minimal].status is Status.OK
    assert results[" + ".join(device.names)].details["policies"] == device.names


def test_fetched_policies_are_cached_for_an_hour(moto_iot: MotoServer, root: Path) -> None:
    device = Device(moto_iot, root, {"Core": _core_policy("{role_alias}")})
    kept = Kept()
    first = device.check(kept=kept)
    entry = kept.get(SubscriptionState).fetched
    assert device.check(NOW + dt.timedelta(minutes=30), kept) == first
    assert kept.get(SubscriptionState).fetched is entry
    device.check(NOW + dt.timedelta(seconds=FETCH_TTL_SECONDS + 1), kept)
    assert kept.get(SubscriptionState).fetched is not entry


def test_a_missing_role_alias_permission_is_critical(moto_iot: MotoServer, root: Path) -> None:
    device = Device(moto_iot, root, {"Core": _core_policy("SomeOtherAlias")})
    [result] = device.check()
    assert result.status is Status.CRITICAL
    assert "iot:AssumeRoleWithCertificate on rolealias/TokenExchangeRoleAlias-" in result.message


def test_no_policy_attached(moto_iot: MotoServer, root: Path) -> None:
    [result] = Device(moto_iot, root, {}).check()
    assert result.status is Status.CRITICAL
    assert result.details["reason"] == "no_policy_attached"


STS_ANSWER = (
    b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    b"<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/agent</Arn>"
    b"<UserId>AIDAGGHEALTH</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
    b"<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
)


def test_credentials_that_may_not_read_policies(root: Path, canned: Canned) -> None:  # noqa: F811
    def respond(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if request["path"].startswith("/attached-policies/"):
            return 200, {"Content-Type": "application/json"}, b'{"policies": [{"policyName": "P"}]}'
        if request["path"].startswith("/policies/"):
            return (
                403,
                {"x-amzn-ErrorType": "AccessDeniedException"},
                json.dumps(
                    {
                        "message": "User: arn:aws:iam::123456789012:user/agent is not "
                        "authorized to perform: iot:GetPolicy"
                    }
                ).encode(),
            )
        return 200, {"Content-Type": "text/xml"}, STS_ANSWER

    canned.respond = respond
    write_root(root, {}, awsRegion=REGION)
    (root / "thingCert.crt").write_bytes(cert_pem(make_device_cert(make_ca()).cert))
    ctx = make_context(root, subscriptions={"fetchIotPolicy": True})
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
    ctx.env = {
        "AWS_ACCESS_KEY_ID": "AKIAGGHEALTHTEST0001",
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_IOT": canned.url,
        "AWS_ENDPOINT_URL_STS": canned.url,
    }
    [result] = iot_policy(ctx)
    assert result.status is Status.UNKNOWN
    assert result.details["reason"] == "access_denied"
    assert "iot:GetPolicy" in (result.remediation or "")
    assert secret not in json.dumps(result.to_dict())
    # Every call went to the endpoints named by the variables, SigV4-signed for its service.
    paths = [r["path"] for r in canned.requests]
    assert paths[1].startswith("/attached-policies/arn%3Aaws%3Aiot%3Aus-east-1%3A123456789012%3A")
    assert paths[2] == "/policies/P"
    auth = [r["headers"]["Authorization"] for r in canned.requests]
    assert f"/{REGION}/sts/aws4_request" in auth[0]
    assert all(f"/{REGION}/iot/aws4_request" in a for a in auth[1:])
