"""Lint of every component's ``accessControl``: what the nucleus rejects, ignores or over-grants.

CRITICAL: a policy id used by two components for the same IPC service (the guide requires ids
"unique among all components"; nucleus versions before 2.12.0 then load *no* policy of that
service), anything that makes the nucleus drop a component's policies or a policy or resource,
an operation the service does not register, a policy without resources (it grants nothing).
WARNING: ``*`` operations or catch-all resources on the MQTT/pubsub services, an IPC service the
nucleus does not know, MQTT wildcards in a pubsub publish grant (pubsub matches them literally),
``{iot:thingName}`` left literal because the nucleus does not interpolate configuration, a
resource the nucleus's matcher reads otherwise than documented (it grants or refuses a request
the documentation says it does not).
https://docs.aws.amazon.com/greengrass/v2/developerguide/interprocess-communication.html#ipc-authorization-policies
"""

from __future__ import annotations

from collections import Counter, defaultdict

from agent.config.names import THING_NAME_VARIABLE
from agent.report import Finding, Status, Verdict
from agent.subscriptions.authorization import (
    AccessControlIndex,
    IpcPolicy,
    ParseProblem,
    is_authorized,
)
from agent.subscriptions.ipc_resources import (
    examples,
    is_catch_all,
    resource_problem,
    uses_mqtt_wildcards,
)
from agent.subscriptions.ipc_services import (
    ANY,
    BROAD_GRANT_SERVICES,
    IPC_SERVICES,
    PUB_SUB,
    PUBLISH_TO_TOPIC,
    lookup_style,
    similar_service,
)

_GUIDE = (
    "https://docs.aws.amazon.com/greengrass/v2/developerguide/"
    "interprocess-communication.html#ipc-authorization-policies"
)


def lint_access_control(index: AccessControlIndex, *, interpolates: bool) -> list[Verdict]:
    """One verdict per loaded policy and per part of a configuration the nucleus drops.

    ``interpolates`` tells whether the nucleus replaces recipe variables in configuration
    (``interpolateComponentConfiguration``); without it ``{iot:thingName}`` stays literal.
    """
    verdicts = [_problem_verdict(p) for p in index.problems]
    owners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for policy in index.policies:
        owners[(policy.service, policy.policy_id)].append(policy.component)
    # A component may reuse one id under two services; only then does the target name the service.
    reused = Counter((p.component, p.policy_id) for p in index.policies)
    for policy in index.policies:
        others = [c for c in owners[(policy.service, policy.policy_id)] if c != policy.component]
        shared = reused[(policy.component, policy.policy_id)] > 1
        verdicts.append(_policy_verdict(policy, others, interpolates, shared, index))
    return verdicts


def _target(
    component: str, policy_id: str | None, service: str | None = None, *, always: bool = False
) -> str:
    named = service if (policy_id is None or always) else None
    return "/".join(part for part in (component, named, policy_id) if part)


def _problem_verdict(problem: ParseProblem) -> Verdict:
    if problem.scope == "service":
        effect = f"no component is authorized for {problem.service} until it is fixed"
        fix = (
            f"give every {problem.service} policy of every component an id that is not blank "
            f'and unique among all components, e.g. "{problem.component}:'
            f'{str(problem.service).rsplit(".", 1)[-1]}:1", and redeploy'
        )
    elif problem.scope == "component":
        effect = f"the nucleus ignores every accessControl policy of {problem.component}"
        fix = (
            f"fix the accessControl of {problem.component} (see {_GUIDE}) and redeploy it; "
            "each policy id maps to {policyDescription, operations: [...], resources: [...]}"
        )
    else:
        effect = "the nucleus skips this policy"
        fix = (
            "list the operations this policy grants, e.g. operations: "
            '["aws.greengrass#PublishToIoTCore"]'
        )
    finding = Finding(Status.CRITICAL, "rejected_by_nucleus", f"{problem.message}: {effect}", fix)
    return Verdict(
        _target(problem.component, problem.policy_id, problem.service),
        "",
        (finding,),
        {
            "component": problem.component,
            "service": problem.service,
            "policy_id": problem.policy_id,
        },
    )


def _policy_verdict(
    policy: IpcPolicy,
    others: list[str],
    interpolates: bool,
    shared_id: bool,
    index: AccessControlIndex,
) -> Verdict:
    findings: list[Finding] = []
    if others:
        findings.append(
            Finding(
                Status.CRITICAL,
                "duplicate_policy_id",
                f"policy id {policy.policy_id} of {policy.service} is also used by "
                f"{', '.join(sorted(set(others)))}; ids must be unique among all components and "
                "nucleus versions before 2.12.0 then load no policy of this service at all",
                f'rename it, e.g. to "{policy.component}:{policy.service.rsplit(".", 1)[-1]}:1"',
            )
        )
    service = IPC_SERVICES.get(policy.service)
    if service is None:
        hint = similar_service(policy.service)
        findings.append(
            Finding(
                Status.WARNING,
                "unknown_service",
                f"{policy.service} is not an IPC service the nucleus authorizes, so this "
                "policy has no effect",
                f"use the service identifier {hint}"
                if hint
                else f"use one of the IPC service identifiers of {_GUIDE}",
            )
        )
    else:
        unknown = [op for op in policy.operations if op not in service.operations]
        if unknown:
            known = ", ".join(sorted(service.operations))
            findings.append(
                Finding(
                    Status.CRITICAL,
                    "unknown_operation",
                    f"operation(s) {', '.join(unknown)} unknown to {policy.service}, so "
                    "the nucleus never grants them",
                    f"use the operations of {policy.service}: {known} ({service.doc})",
                )
            )
    findings.extend(_resource_findings(policy, interpolates))
    findings.extend(_matcher_quirk(policy, index))
    if policy.service in BROAD_GRANT_SERVICES and ANY in policy.operations:
        findings.append(
            Finding(
                Status.WARNING,
                "any_operation",
                f"grants every operation ('*') of {policy.service}",
                "list only the operations the component uses (publish and/or subscribe)",
            )
        )
    return Verdict(
        _target(policy.component, policy.policy_id, policy.service, always=shared_id),
        f"grants {', '.join(policy.operations)} on {len(policy.resources)} resource(s) of "
        f"{policy.service}",
        tuple(findings),
        {
            "component": policy.component,
            "service": policy.service,
            "policy_id": policy.policy_id,
            "operations": list(policy.operations),
            "resources": list(policy.resources),
        },
    )


def _resource_findings(policy: IpcPolicy, interpolates: bool) -> list[Finding]:
    findings: list[Finding] = []
    if not policy.resources:
        findings.append(
            Finding(
                Status.CRITICAL,
                "no_resources",
                "lists no resources, so it grants nothing",
                "add the resources (topics, secret ARNs...) the operations apply to",
            )
        )
    style = lookup_style(policy.service)
    publishes_pubsub = policy.service == PUB_SUB and (
        PUBLISH_TO_TOPIC in policy.operations or ANY in policy.operations
    )
    for resource in policy.resources:
        problem = resource_problem(resource)
        if problem is not None:
            findings.append(
                Finding(
                    Status.CRITICAL,
                    "malformed_resource",
                    f"resource '{resource}' {problem}, so the nucleus drops it",
                    "escape '*', '?' and '$' as ${*}, ${?} and ${$} where they are literal",
                )
            )
            continue
        if policy.service in BROAD_GRANT_SERVICES and is_catch_all(resource, style):
            findings.append(
                Finding(
                    Status.WARNING,
                    "catch_all_resource",
                    f"resource '{resource}' grants every topic of {policy.service}",
                    "list the topics the component needs (wildcards within a topic are fine)",
                )
            )
        elif publishes_pubsub and uses_mqtt_wildcards(resource):
            findings.append(
                Finding(
                    Status.WARNING,
                    "literal_mqtt_wildcard",
                    f"pubsub matches '+' and '#' literally, so publishing is granted on the topic "
                    f"named exactly '{resource}' only",
                    "use '*' for a wildcard in local publish/subscribe resources",
                )
            )
        if not interpolates and THING_NAME_VARIABLE in resource:
            findings.append(
                Finding(
                    Status.WARNING,
                    "thing_name_not_interpolated",
                    f"resource '{resource}' uses {THING_NAME_VARIABLE}, which the nucleus replaces "
                    "only with interpolateComponentConfiguration; here it is matched literally",
                    "set interpolateComponentConfiguration: true in the aws.greengrass.Nucleus "
                    "configuration (nucleus v2.6.0+) and redeploy, or write the thing name",
                )
            )
    return findings


def _matcher_quirk(policy: IpcPolicy, index: AccessControlIndex) -> list[Finding]:
    """The first request, among the examples of this policy's resources, where the nucleus's
    matcher and the documented semantics answer differently (the device obeys the matcher)."""
    service = IPC_SERVICES.get(policy.service)
    if service is None:
        return []
    for operation in policy.operations:
        for resource in policy.resources:
            if resource_problem(resource) is not None:
                continue
            for request in examples(resource, service.style):
                decision = is_authorized(
                    index, policy.component, policy.service, operation, request
                )
                if decision.quirk is not None:
                    return [
                        Finding(
                            Status.WARNING,
                            "nucleus_matcher_quirk",
                            f"{operation}: {decision.quirk}",
                            "check the topics this component uses with "
                            "'gg-health-agent authorize' before deploying",
                        )
                    ]
    return []
