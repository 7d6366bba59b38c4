"""Audit of a core device's AWS IoT policies: what it needs, what it must not have.

Needed (missing: CRITICAL unless noted), from
https://docs.aws.amazon.com/greengrass/v2/developerguide/device-auth.html#greengrass-core-minimal-iot-policy:
``iot:Connect`` as the thing name (and as ``<thing>#2``, which the nucleus uses after 50
subscriptions: WARNING), the IoT jobs topics deployments arrive on, the fleet-status topic
(WARNING), ``iot:AssumeRoleWithCertificate`` on the nucleus role alias, the Greengrass data-plane
actions, ``iot:Publish`` on the health topic and Publish/Subscribe/Receive on
``subscriptions.requiredTopics``. Thing policy variables do not resolve for core devices, so a
need met only through one is a WARNING.

Not wanted (WARNING): grants Device Defender's IOT_POLICY_OVERLY_PERMISSIVE_CHECK reports
(https://docs.aws.amazon.com/iot/latest/developerguide/audit-chk-iot-policy-permissive.html),
probed here by asking whether the policy lets this device act for *another* thing; and ``+``/``#``
in a Deny, which AWS IoT matches literally (IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from agent.report import Finding, Status, Verdict
from agent.subscriptions.iot_policy import Context, IotPolicy, arn, evaluate
from agent.subscriptions.topics import has_wildcard

OTHER_THING = "gghealth-probe-other-thing"
"""A thing that is not this device, for the over-permissive probes."""
SHADOW_AND_JOB_ACTIONS = (
    "iot:DeleteThingShadow",
    "iot:GetThingShadow",
    "iot:UpdateThingShadow",
    "iot:DescribeJobExecution",
    "iot:GetPendingJobExecutions",
    "iot:StartNextPendingJobExecution",
    "iot:UpdateJobExecution",
)
_MINIMAL = (
    "https://docs.aws.amazon.com/greengrass/v2/developerguide/"
    "device-auth.html#greengrass-core-minimal-iot-policy"
)


@dataclass(frozen=True)
class DeviceFacts:
    """What the required set depends on."""

    thing_name: str
    region: str | None = None
    account: str | None = None
    role_alias: str | None = None
    nucleus_version: str | None = None
    publish_topics: tuple[str, ...] = ()
    """Resolved topics the agent publishes to AWS IoT Core (the health topic)."""
    client_ids: tuple[str, ...] = ()
    """Extra MQTT client ids the device connects with (the direct MQTT transport)."""
    required_topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Requirement:
    """One action on one resource the device needs."""

    action: str
    resource: str
    why: str
    status: Status = Status.CRITICAL
    grant: str | None = None
    """The resource to suggest in a fix when broader than ``resource`` (AWS's own advice)."""


def requirements(facts: DeviceFacts) -> list[Requirement]:
    """The actions the core device needs, most basic first."""
    ctx = Context(region=facts.region, account=facts.account)
    thing = facts.thing_name

    def iot(kind: str, name: str) -> str:
        return arn("iot", f"{kind}/{name}", ctx)

    jobs = f"$aws/things/{thing}/jobs"
    out = [
        Requirement(
            "iot:Connect",
            iot("client", thing),
            "the nucleus connects with the thing name as MQTT client id",
        )
    ]
    out += [
        Requirement(
            "iot:Connect", iot("client", cid), f"the direct MQTT transport connects as {cid}"
        )
        for cid in facts.client_ids
        if cid != thing
    ]
    out.append(
        Requirement(
            "iot:Connect",
            iot("client", f"{thing}#2"),
            f"after 50 subscriptions the nucleus opens more connections as {thing}#2, #3...",
            Status.WARNING,
        )
    )
    out += [
        Requirement(
            "iot:Subscribe", iot("topicfilter", f"{jobs}/notify"), "deployments arrive as IoT jobs"
        ),
        Requirement(
            "iot:Receive", iot("topic", f"{jobs}/notify"), "deployments arrive as IoT jobs"
        ),
        Requirement(
            "iot:Publish",
            iot("topic", f"{jobs}/$next/get"),
            "the nucleus asks for the next deployment job",
        ),
        Requirement(
            "iot:Subscribe",
            iot("topicfilter", f"{jobs}/$next/get/accepted"),
            "the nucleus reads the next deployment job",
        ),
        Requirement(
            "iot:Receive",
            iot("topic", f"{jobs}/$next/get/accepted"),
            "the nucleus reads the next deployment job",
        ),
        Requirement(
            "iot:Publish",
            iot("topic", f"$aws/things/{thing}/greengrassv2/health/json"),
            "the core device reports its status to AWS IoT Greengrass",
            Status.WARNING,
        ),
    ]
    if facts.role_alias:
        out.append(
            Requirement(
                "iot:AssumeRoleWithCertificate",
                iot("rolealias", facts.role_alias),
                "components get AWS credentials through the token exchange role",
            )
        )
    version = facts.nucleus_version or "2.0.0"
    out += [
        Requirement(
            "greengrass:GetComponentVersionArtifact",
            arn(
                "greengrass",
                f"components:aws.greengrass.Nucleus:versions:{version}",
                ctx,
                account="aws",
            ),
            "deployments download AWS-provided component artifacts",
            grant="*",
        ),
        Requirement(
            "greengrass:ResolveComponentCandidates", "*", "deployments resolve component versions"
        ),
        Requirement(
            "greengrass:GetDeploymentConfiguration",
            "*",
            "deployments larger than 7 KB are downloaded",
        ),
        Requirement(
            "greengrass:ListThingGroupsForCoreDevice",
            iot("thing", thing),
            "deployments check the thing groups of the device",
        ),
    ]
    out += [
        Requirement("iot:Publish", iot("topic", t), "the health report goes to this topic")
        for t in facts.publish_topics
    ]
    for topic in facts.required_topics:
        out.append(
            Requirement(
                "iot:Subscribe", iot("topicfilter", topic), "listed in subscriptions.requiredTopics"
            )
        )
        if not has_wildcard(topic):
            out += [
                Requirement(action, iot("topic", topic), "listed in subscriptions.requiredTopics")
                for action in ("iot:Publish", "iot:Receive")
            ]
    return out


def _short(resource: str) -> str:
    """``topic/a/b`` for an ARN (the part a reader recognises), ``*`` unchanged."""
    return resource.split(":", 5)[5] if resource.startswith("arn:") else resource


def _policy_arn(resource: str) -> str:
    """The ARN to write into a policy: an unknown region or account becomes ``*``."""
    if not resource.startswith("arn:"):
        return resource
    parts = resource.split(":", 5)
    return ":".join(part or "*" for part in parts)


def _statements(reqs: Sequence[Requirement]) -> str:
    by_action: dict[str, list[str]] = {}
    for req in reqs:
        by_action.setdefault(req.action, []).append(_policy_arn(req.grant or req.resource))
    return json.dumps(
        [
            {"Effect": "Allow", "Action": action, "Resource": res[0] if len(res) == 1 else res}
            for action, res in by_action.items()
        ]
    )


def _listing(reqs: Sequence[Requirement]) -> str:
    return "; ".join(f"{r.action} on {_short(r.resource)} ({r.why})" for r in reqs)


def required_verdict(policies: Sequence[IotPolicy], facts: DeviceFacts, target: str) -> Verdict:
    """Whether ``policies`` together allow everything in ``requirements(facts)``."""
    own = Context(
        client_id=facts.thing_name,
        thing_name=facts.thing_name,
        thing_attached=True,
        region=facts.region,
        account=facts.account,
    )
    # Thing policy variables do not resolve for core devices (device-auth.html#iot-policies).
    core = replace(own, thing_name=None, thing_attached=None)
    missing: dict[Status, list[Requirement]] = {Status.CRITICAL: [], Status.WARNING: []}
    denied: dict[Requirement, tuple[str, ...]] = {}
    via_thing: list[Requirement] = []
    conditional: list[str] = []
    reqs = requirements(facts)
    for req in reqs:
        ctx = own
        if req.action == "iot:Connect":
            client_id = req.resource.rpartition("client/")[2]
            if client_id != facts.thing_name:  # thing variables resolve only for a thing's name
                ctx = replace(own, client_id=client_id, thing_name=None, thing_attached=None)
        result = evaluate(policies, req.action, req.resource, ctx)
        if result.decision == "explicit_deny":
            denied[req] = result.denied_by
        elif not result.allowed:
            missing[req.status].append(req)
        elif not evaluate(
            policies, req.action, req.resource, replace(core, client_id=ctx.client_id)
        ).allowed:
            via_thing.append(req)
        elif result.conditional:
            conditional.append(f"{req.action} on {_short(req.resource)}")
    findings = [
        Finding(
            status,
            "missing_permission",
            f"not allowed: {_listing(group)}",
            "add to a policy attached to the device certificate: "
            f"{_statements(group)} (see {_MINIMAL})",
        )
        for status, group in missing.items()
        if group
    ]
    findings += [
        Finding(
            req.status,
            "denied_permission",
            f"explicitly denied by {', '.join(by)}: {_listing([req])}",
            f"narrow the Deny of {', '.join(by)} so it leaves {_policy_arn(req.resource)} out",
        )
        for req, by in denied.items()
    ]
    if via_thing:
        findings.append(
            Finding(
                Status.WARNING,
                "thing_policy_variable",
                f"allowed only through iot:Connection.Thing.* policy variables, which core devices "
                f"do not support: {_listing(via_thing)}",
                "write the thing name (or a prefix with '*', e.g. MyCoreDevice*) instead of "
                "${iot:Connection.Thing.ThingName}",
            )
        )
    return Verdict(
        target,
        f"allows the {len(reqs)} actions this core device needs",
        tuple(findings),
        {"policies": [p.name for p in policies], "required": len(reqs), "conditional": conditional},
    )


def _probes(facts: DeviceFacts) -> list[tuple[str, str, Context]]:
    own = Context(
        client_id=facts.thing_name,
        thing_name=facts.thing_name,
        thing_attached=True,
        region=facts.region,
        account=facts.account,
    )
    # Someone connecting as another thing: the thing is not attached to this certificate.
    other = Context(
        client_id=OTHER_THING,
        thing_name=OTHER_THING,
        thing_attached=False,
        region=facts.region,
        account=facts.account,
    )
    things = f"$aws/things/{OTHER_THING}"
    probes = [
        ("iot:Connect", arn("iot", f"client/{OTHER_THING}", other), other),
        ("iot:Publish", arn("iot", f"topic/{things}/shadow/update", own), own),
        ("iot:Subscribe", arn("iot", f"topicfilter/{things}/shadow/update", own), own),
        ("iot:Subscribe", arn("iot", "topicfilter/$aws/things/+/shadow/update", own), own),
        ("iot:Subscribe", arn("iot", "topicfilter/$aws/things/#", own), own),
    ]
    probes += [
        (action, arn("iot", f"thing/{OTHER_THING}", own), own) for action in SHADOW_AND_JOB_ACTIONS
    ]
    return probes


def lint_findings(policy: IotPolicy, facts: DeviceFacts) -> list[Finding]:
    """Over-permissive grants and MQTT wildcards in Deny statements of one policy."""
    findings: list[Finding] = []
    broad: dict[str, set[str]] = {}
    for action, resource, ctx in _probes(facts):
        result = evaluate([policy], action, resource, ctx)
        if result.allowed:
            broad.setdefault(action, set()).update(result.allowed_by)
    if broad:
        statements = sorted({s for labels in broad.values() for s in labels})
        findings.append(
            Finding(
                Status.WARNING,
                "overly_permissive",
                f"{', '.join(broad)} allowed for other devices' clients, topics or things "
                "too (Device Defender IOT_POLICY_OVERLY_PERMISSIVE_CHECK; statements: "
                f"{', '.join(statements)})",
                f"scope the resources to this device, e.g. client/{facts.thing_name}* and "
                f"topic/$aws/things/{facts.thing_name}*/... (see {_MINIMAL})",
            )
        )
    for statement in policy.statements:
        if statement.effect != "Deny":
            continue
        wild = [r for r in statement.resources if "+" in r or "#" in r]
        if wild:
            findings.append(
                Finding(
                    Status.WARNING,
                    "mqtt_wildcard_in_deny",
                    f"statement {statement.label} denies {', '.join(wild)}, but AWS IoT "
                    "matches '+' and '#' literally in policies, so only the topic spelled that "
                    "way is denied "
                    "(IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK)",
                    "use '*' in Deny resources to cover many topics",
                )
            )
    return findings


def audit_policies(policies: Sequence[IotPolicy], facts: DeviceFacts) -> list[Verdict]:
    """Verdicts per policy name; with one policy its needs and lint share one verdict."""
    if len(policies) == 1:
        only = policies[0]
        need = required_verdict(policies, facts, only.name)
        return [
            Verdict(
                only.name,
                need.ok_message,
                tuple(lint_findings(only, facts)) + need.findings,
                need.details,
            )
        ]
    verdicts = [
        Verdict(
            p.name,
            f"{len(p.statements)} statement(s), none over-permissive",
            tuple(lint_findings(p, facts)),
            {"policy": p.name},
        )
        for p in policies
    ]
    verdicts.append(required_verdict(policies, facts, " + ".join(p.name for p in policies)))
    return verdicts
