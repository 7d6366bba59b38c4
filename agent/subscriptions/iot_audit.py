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

Uncertain (WARNING ``condition_not_evaluated``): a need whose answer hangs on a ``Condition`` the
evaluator cannot decide — a Deny that may apply, or an Allow that is the only grant. Thing keys
(``iot:Connection.Thing.*``) are decided from the registry when ``fetchIotPolicy`` read it
(:class:`ThingFacts`); other keys (``aws:SourceIp``, ``iot:ConnectAttributes``...) belong to a
request the agent has not made and stay undecided.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agent.report import Finding, Status, Verdict
from agent.subscriptions.iot_policy import (
    THING_VARIABLE_PREFIX,
    Context,
    Evaluation,
    IotPolicy,
    ThingRecord,
    Undecided,
    arn,
    evaluate,
)
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


_EVALUATION_LOGIC = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"
)
_SHOWN = 4
"""Needs named in a condition_not_evaluated message; details.undecided lists every one."""
THING_PERMISSIONS = ("iot:DescribeThing", "iot:ListThingPrincipals")
"""What the agent's credentials need to decide ``iot:Connection.Thing.*`` conditions."""


@dataclass(frozen=True)
class ThingFacts:
    """What AWS IoT's registry told about the device's thing (``fetchIotPolicy``)."""

    record: ThingRecord | None = None
    """Type and attributes (DescribeThing); None when the call did not answer."""
    attached: bool | None = None
    """The device certificate is attached to the thing (ListThingPrincipals); None: unknown."""
    missing: tuple[str, ...] = ()
    """Permissions the registry calls were refused (``iot:DescribeThing``...)."""
    problems: tuple[str, ...] = ()
    """Why something stayed unknown, one message per failed call (no secrets)."""


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
    thing: ThingFacts | None = None
    """The registry's answers; None when it was not asked (``fetchIotPolicy`` off)."""


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


def _own_context(facts: DeviceFacts) -> Context:
    """The nucleus's own connection: client id = thing name, thing keys as the registry says."""
    thing = facts.thing or ThingFacts()
    return Context(
        client_id=facts.thing_name,
        thing_name=facts.thing_name,
        thing_attached=thing.attached,
        thing=thing.record,
        region=facts.region,
        account=facts.account,
    )


def _undecided_remedy(keys: Sequence[str], facts: DeviceFacts) -> str:
    """How to get the condition keys ``keys`` decided (or what to check by hand)."""
    thing_keys = [k for k in keys if k.startswith(THING_VARIABLE_PREFIX)]
    others = [k for k in keys if not k.startswith(THING_VARIABLE_PREFIX)]
    fixes = []
    if thing_keys:
        thing_arn = _policy_arn(
            arn(
                "iot",
                f"thing/{facts.thing_name}",
                Context(region=facts.region, account=facts.account),
            )
        )
        if facts.thing is None:
            fixes.append(
                "set subscriptions.fetchIotPolicy: true so the agent reads the thing's type, "
                "attributes and certificate attachment from AWS IoT (it needs "
                f"{' and '.join(THING_PERMISSIONS)} on {thing_arn})"
            )
        elif facts.thing.missing:
            fixes.append(
                f"allow {' and '.join(facts.thing.missing)} on {thing_arn} to the credentials "
                "the agent uses, so iot:Connection.Thing.* conditions can be decided"
            )
        else:
            fixes.append(
                "make AWS IoT's DescribeThing / ListThingPrincipals answer for "
                f"{facts.thing_name}, so iot:Connection.Thing.* conditions can be decided"
            )
    if others:
        fixes.append(
            f"check by hand that {', '.join(others)} leaves this device's requests as intended "
            "(the agent cannot know these keys before a request), or narrow the statement so it "
            f"does not cover them (see {_EVALUATION_LOGIC})"
        )
    return "; ".join(fixes)


def _undecided_findings(
    uncertain: Mapping[Undecided, list[Requirement]], facts: DeviceFacts
) -> list[Finding]:
    findings = []
    for undecided, reqs in uncertain.items():
        tests = ", ".join(f"{op} {key}".strip() for op, key in undecided.tests)
        if undecided.effect == "Deny":
            effect = "it may deny, so these are neither allowed nor proven denied"
        else:
            effect = "it is their only grant, so they may be refused"
        why = ""
        thing = facts.thing
        if (
            thing is not None
            and thing.problems
            and any(k.startswith(THING_VARIABLE_PREFIX) for k in undecided.keys)
        ):
            why = f" ({'; '.join(thing.problems)})"
        findings.append(
            Finding(
                Status.WARNING,
                "condition_not_evaluated",
                f"the Condition of {undecided.effect} statement {undecided.statement} "
                f"({tests}) cannot be decided here{why}; {effect}: {_listing(reqs[:_SHOWN])}"
                + (
                    f"; and {len(reqs) - _SHOWN} more (details.undecided)"
                    if len(reqs) > _SHOWN
                    else ""
                ),
                _undecided_remedy(undecided.keys, facts),
            )
        )
    return findings


def _affects(result: Evaluation) -> tuple[Undecided, ...]:
    """The undecided statements that change ``result`` (none for a decided answer)."""
    if result.decision == "uncertain" or (result.allowed and result.conditional):
        return result.undecided
    return ()


def required_verdict(policies: Sequence[IotPolicy], facts: DeviceFacts, target: str) -> Verdict:
    """Whether ``policies`` together allow everything in ``requirements(facts)``."""
    own = _own_context(facts)
    # Thing policy variables do not resolve for core devices (device-auth.html#iot-policies).
    core = replace(own, thing_name=None, thing_attached=None, thing=None)
    missing: dict[Status, list[Requirement]] = {Status.CRITICAL: [], Status.WARNING: []}
    denied: dict[Requirement, tuple[str, ...]] = {}
    via_thing: list[Requirement] = []
    conditional: list[str] = []
    uncertain: dict[Undecided, list[Requirement]] = {}
    reqs = requirements(facts)
    for req in reqs:
        ctx = own
        if req.action == "iot:Connect":
            client_id = req.resource.rpartition("client/")[2]
            if client_id != facts.thing_name:  # thing variables resolve only for a thing's name
                ctx = replace(
                    own, client_id=client_id, thing_name=None, thing_attached=None, thing=None
                )
        result = evaluate(policies, req.action, req.resource, ctx)
        if result.decision == "explicit_deny":
            denied[req] = result.denied_by
            continue
        if result.decision == "implicit_deny":
            missing[req.status].append(req)
            continue
        if result.allowed and result.thing_variables:
            # Only a resource matched through ${iot:Connection.Thing.*} is flagged: that is what
            # core devices are documented not to resolve. Thing *condition keys* are decided on
            # the device's own MQTT connection (client id = thing name) from the registry.
            as_core = evaluate(
                policies, req.action, req.resource, replace(core, client_id=ctx.client_id)
            )
            if not as_core.allowed and as_core.decision != "uncertain":
                via_thing.append(req)
                continue
        if result.conditional:
            conditional.append(f"{req.action} on {_short(req.resource)}")
        for undecided in _affects(result):
            uncertain.setdefault(undecided, []).append(req)
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
    findings += _undecided_findings(uncertain, facts)
    details: dict[str, Any] = {
        "policies": [p.name for p in policies],
        "required": len(reqs),
        "conditional": conditional,
    }
    if uncertain:
        details["undecided"] = [
            {
                "statement": u.statement,
                "effect": u.effect,
                "keys": list(u.keys),
                "requests": [f"{r.action} on {_short(r.resource)}" for r in group],
            }
            for u, group in uncertain.items()
        ]
    if facts.thing is not None:
        details["thing_registry"] = {
            "described": facts.thing.record is not None,
            "attached": facts.thing.attached,
            "missing_permissions": list(facts.thing.missing),
        }
    return Verdict(
        target, f"allows the {len(reqs)} actions this core device needs", tuple(findings), details
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
