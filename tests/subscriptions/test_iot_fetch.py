"""``subscriptions.fetchIotPolicy`` against real peers on loopback.

moto's AWS IoT holds the device certificate and the policies attached to it; the agent finds them
from the certificate alone (its ARN id is the SHA-256 of the DER encoding), reaching IoT through
``AWS_ENDPOINT_URL_IOT`` and STS through ``AWS_ENDPOINT_URL_STS``. moto's registry also holds the
thing (type, attributes, attached certificate) that ``iot:Connection.Thing.*`` conditions are
decided on (issue 16). A canned HTTP peer stands in for the answers moto cannot give
(AccessDenied on iot:GetPolicy or iot:DescribeThing, malformed bodies) and shows the SigV4 signing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from agent.checks.base import Kept
from agent.checks.subscriptions import FETCH_TTL_SECONDS, SubscriptionState, iot_policy
from agent.report import CheckResult, Status
from tests.peers.moto import ACCOUNT, REGION, MotoServer
from tests.peers.silent import Canned, canned  # noqa: F401  (fixture)
from tests.pki import NOW, cert_pem, make_ca, make_device_cert
from tests.subscriptions.conftest import (
    AGENT,
    POLICIES,
    QUARANTINE,
    THING,
    agent_grant,
    make_context,
    substitute,
    write_root,
)

pytestmark = pytest.mark.peer


def canned_env(url: str) -> dict[str, str]:
    """Keys of no account and every IoT/STS call to the canned peer at ``url``."""
    return {
        "AWS_ACCESS_KEY_ID": "AKIAGGHEALTHTEST0001",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_IOT": url,
        "AWS_ENDPOINT_URL_STS": url,
    }


def _core_policy(
    role_alias: str, thing: str = THING, *extra: dict[str, Any], health: bool = True
) -> str:
    text = substitute(
        (POLICIES / "greengrass-v2-core-device-minimal-iot-policy.json").read_text(),
        account_id=ACCOUNT,
        core_device_thing_name=thing,
        token_exchange_role_alias_name=role_alias,
    ).replace(":region:", f":{REGION}:")
    document = json.loads(text)
    if health:
        document["Statement"].append(
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/dt/gghealth/{thing}/*",
            }
        )
    document["Statement"] += extra
    return json.dumps(document)


class Device:
    """A Greengrass root whose certificate moto knows, and the credentials the agent uses."""

    def __init__(
        self,
        moto: MotoServer,
        root: Path,
        policies: dict[str, str],
        *,
        thing: str = THING,
        registry: dict[str, Any] | None = None,
        attach: bool = True,
    ) -> None:
        """``registry``: create ``thing`` in moto with these CreateThing arguments (a
        ``thingTypeName`` is created first) and, with ``attach``, attach the certificate."""
        suffix = uuid.uuid4().hex[:8]
        self.role_alias = f"TokenExchangeRoleAlias-{suffix}"
        device = make_device_cert(make_ca())
        pem = cert_pem(device.cert)
        write_root(
            root,
            {AGENT: {"configuration": {"accessControl": agent_grant("dt/#")}}},
            thing=thing,
            awsRegion=REGION,
            iotRoleAlias=self.role_alias,
        )
        (root / "thingCert.crt").write_bytes(pem)
        iot = moto.client("iot")
        arn = iot.register_certificate_without_ca(certificatePem=pem.decode(), status="ACTIVE")[
            "certificateArn"
        ]
        if registry is not None:
            if "thingTypeName" in registry:
                iot.create_thing_type(thingTypeName=registry["thingTypeName"])
            iot.create_thing(thingName=thing, **registry)
            if attach:
                iot.attach_thing_principal(thingName=thing, principal=arn)
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
    ctx.env = canned_env(canned.url)
    secret = ctx.env["AWS_SECRET_ACCESS_KEY"]
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


# --- iot:Connection.Thing.* conditions, decided from moto's registry (issue 16) ----------------


def _health_if(thing: str, condition: dict[str, Any]) -> dict[str, Any]:
    """The health-topic grant under ``condition`` (thing-policy-examples.html's pattern)."""
    return {
        "Sid": "HealthIfRegistered",
        "Effect": "Allow",
        "Action": "iot:Publish",
        "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/dt/gghealth/{thing}/*",
        "Condition": condition,
    }


def _unique_thing() -> str:
    return f"pi-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    ("stage", "status", "reason"),
    [
        ("prod", Status.OK, None),
        ("quarantine", Status.CRITICAL, "denied_permission"),
    ],
)
def test_a_deny_on_a_thing_attribute_is_decided_by_describe_thing(
    moto_iot: MotoServer, root: Path, stage: str, status: Status, reason: str | None
) -> None:
    thing = _unique_thing()
    device = Device(
        moto_iot,
        root,
        {"Core": _core_policy("{role_alias}", thing, QUARANTINE)},
        thing=thing,
        registry={"attributePayload": {"attributes": {"stage": stage, "site": "lab"}}},
    )
    [result] = device.check()
    assert result.status is status, result.message
    assert result.details.get("reason") == reason
    assert result.details["thing_registry"] == {
        "described": True,
        "attached": True,
        "missing_permissions": [],
    }
    if reason:
        assert "explicitly denied by " in result.message and "Quarantine" in result.message


def test_thing_type_and_attachment_decide_a_conditional_grant(
    moto_iot: MotoServer, tmp_path: Path
) -> None:
    condition = {
        "StringEquals": {
            "iot:Connection.Thing.ThingTypeName": "GreengrassCore",
            "iot:Connection.Thing.Attributes[fleet]": "gghealth",
        },
        "Bool": {"iot:Connection.Thing.IsAttached": "true"},
    }
    results = {}
    for name, registry, attach in (
        ("granted", {"thingTypeName": "GreengrassCore"}, True),
        ("wrong_type", {"thingTypeName": "Camera"}, True),
        ("detached", {"thingTypeName": "GreengrassCore"}, False),
    ):
        thing = _unique_thing()
        registry = {**registry, "attributePayload": {"attributes": {"fleet": "gghealth"}}}
        policy = _core_policy("{role_alias}", thing, _health_if(thing, condition), health=False)
        device = Device(
            moto_iot,
            tmp_path / name,
            {"Core": policy},
            thing=thing,
            registry=registry,
            attach=attach,
        )
        [results[name]] = device.check()
    assert results["granted"].status is Status.OK, results["granted"].message
    for name in ("wrong_type", "detached"):
        assert results[name].status is Status.CRITICAL
        assert results[name].details["reasons"] == ["missing_permission"]
        assert "iot:Publish on topic/dt/gghealth/" in results[name].message
    assert results["detached"].details["thing_registry"]["attached"] is False


def test_without_fetching_the_same_conditions_stay_undecided(root: Path) -> None:
    policy = json.loads(_core_policy("GreengrassV2TokenExchangeRoleAlias", THING, QUARANTINE))
    write_root(
        root, {AGENT: {"configuration": {"accessControl": agent_grant("dt/#")}}}, awsRegion=REGION
    )
    path = root / "policy.json"
    path.write_text(json.dumps(policy))
    ctx = make_context(root, subscriptions={"iotPolicyFile": str(path)})
    [result] = iot_policy(ctx)
    assert result.status is Status.WARNING
    assert result.details["reason"] == "condition_not_evaluated"
    assert "thing_registry" not in result.details
    assert "subscriptions.fetchIotPolicy: true" in (result.remediation or "")


def test_a_thing_missing_from_the_registry_has_no_attributes(
    moto_iot: MotoServer, root: Path
) -> None:
    # Not created in moto: DescribeThing answers 404, so no thing key resolves and the
    # attribute-conditioned Deny cannot apply.
    thing = _unique_thing()
    device = Device(
        moto_iot, root, {"Core": _core_policy("{role_alias}", thing, QUARANTINE)}, thing=thing
    )
    [result] = device.check()
    assert result.status is Status.OK, result.message
    assert result.details["thing_registry"]["attached"] is False


def _canned_iot(
    canned: Canned,  # noqa: F811
    document: str,
    things: Any,
) -> None:
    """STS, ListAttachedPolicies and GetPolicy answered; ``things(request)`` answers the rest."""

    def respond(request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        path = request["path"]
        if path.startswith("/attached-policies/"):
            return 200, {"Content-Type": "application/json"}, b'{"policies": [{"policyName": "P"}]}'
        if path.startswith("/policies/"):
            body = json.dumps({"policyName": "P", "policyDocument": document}).encode()
            return 200, {"Content-Type": "application/json"}, body
        if path.startswith("/things/"):
            answer: tuple[int, dict[str, str], bytes] = things(request)
            return answer
        return 200, {"Content-Type": "text/xml"}, STS_ANSWER

    canned.respond = respond


DENIED = (
    403,
    {"x-amzn-ErrorType": "AccessDeniedException"},
    b'{"message": "User: arn:aws:iam::123456789012:user/agent is not authorized to perform: '
    b'iot:DescribeThing"}',
)
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("describe", "principals", "fragment", "fix"),
    [
        (
            DENIED,
            None,
            "iot:DescribeThing",
            "allow iot:DescribeThing",
        ),
        (
            (200, JSON, b"<html>surprise</html>"),
            None,
            "DescribeThing pi-42 answered with a body that is not JSON",
            "DescribeThing",
        ),
        (
            (200, JSON, b'{"thingName": "pi-42", "attributes": ["stage", "quarantine"]}'),
            None,
            "answered attributes that are not a map of strings",
            "DescribeThing",
        ),
        (
            (200, JSON, b'{"thingName": "pi-42", "thingTypeName": 7}'),
            None,
            "answered a thingTypeName that is not a string",
            "DescribeThing",
        ),
    ],
)
def test_registry_answers_that_cannot_be_used(
    root: Path,
    canned: Canned,  # noqa: F811
    describe: tuple[int, dict[str, str], bytes],
    principals: tuple[int, dict[str, str], bytes] | None,
    fragment: str,
    fix: str,
) -> None:
    document = _core_policy("GreengrassV2TokenExchangeRoleAlias", THING, QUARANTINE)
    cert = make_device_cert(make_ca()).cert
    if principals is None:  # the certificate is attached: attribute keys would resolve
        cert_id = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{cert_id}"
        principals = (200, JSON, json.dumps({"principals": [arn]}).encode())
    _canned_iot(
        canned,
        document,
        lambda request: principals if "/principals" in request["path"] else describe,
    )
    write_root(
        root, {AGENT: {"configuration": {"accessControl": agent_grant("dt/#")}}}, awsRegion=REGION
    )
    (root / "thingCert.crt").write_bytes(cert_pem(cert))
    ctx = make_context(root, subscriptions={"fetchIotPolicy": True})
    ctx.env = canned_env(canned.url)
    secret = ctx.env["AWS_SECRET_ACCESS_KEY"]
    [result] = iot_policy(ctx)
    # The Deny on a thing attribute stays undecided: WARNING, never an allow, never a traceback.
    assert result.status is Status.WARNING, result.message
    assert result.details["reason"] == "condition_not_evaluated"
    assert fragment in result.message
    assert fix in (result.remediation or "")
    assert result.details["thing_registry"]["described"] is False
    assert result.details["thing_registry"]["attached"] is True
    assert secret not in json.dumps(result.to_dict())
    paths = [r["path"] for r in canned.requests]
    assert f"/things/{THING}" in paths
    assert any(p.startswith(f"/things/{THING}/principals?") for p in paths)


def test_a_refused_list_thing_principals_leaves_is_attached_undecided(
    root: Path,
    canned: Canned,  # noqa: F811
) -> None:
    condition = {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}
    document = _core_policy(
        "GreengrassV2TokenExchangeRoleAlias", THING, _health_if(THING, condition), health=False
    )
    refused = (DENIED[0], DENIED[1], DENIED[2].replace(b"DescribeThing", b"ListThingPrincipals"))
    described = (200, JSON, b'{"thingName": "pi-42", "attributes": {}}')
    _canned_iot(
        canned, document, lambda request: refused if "/principals" in request["path"] else described
    )
    write_root(
        root, {AGENT: {"configuration": {"accessControl": agent_grant("dt/#")}}}, awsRegion=REGION
    )
    (root / "thingCert.crt").write_bytes(cert_pem(make_device_cert(make_ca()).cert))
    ctx = make_context(root, subscriptions={"fetchIotPolicy": True})
    ctx.env = {
        "AWS_ACCESS_KEY_ID": "AKIAGGHEALTHTEST0001",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_IOT": canned.url,
        "AWS_ENDPOINT_URL_STS": canned.url,
    }
    [result] = iot_policy(ctx)
    assert result.status is Status.WARNING, result.message
    assert result.details["reason"] == "condition_not_evaluated"
    assert result.details["thing_registry"] == {
        "described": True,
        "attached": None,
        "missing_permissions": ["iot:ListThingPrincipals"],
    }
    assert "Bool iot:Connection.Thing.IsAttached" in result.message
    assert "allow iot:ListThingPrincipals on arn:aws:iot:" in (result.remediation or "")
