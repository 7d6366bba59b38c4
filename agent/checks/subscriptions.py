"""The ``subscription`` area: who may publish and subscribe what on this core device.

``subscription.publish_authorized``, ``subscription.policy_lint``, ``subscription.bridge``,
``subscription.legacy_router`` and ``subscription.iot_policy`` of the SPEC catalogue; the rules
live in ``agent.subscriptions``, this module turns a Greengrass root into their inputs.
``subscription.probe`` needs an MQTT connection and lives with the MQTT transport.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.checks.base import CheckContext, check, result
from agent.checks.probe import probe_check
from agent.config.files import InputError
from agent.config.models import Transport
from agent.config.names import THING_NAME_VARIABLE, topic_problem, with_thing_name
from agent.report import CheckResult, Status
from agent.secrets import scrub
from agent.subscriptions.authorization import (
    AccessControlIndex,
    grant_snippet,
    index_access_control,
    index_services,
    is_authorized,
)
from agent.subscriptions.bridge import BRIDGE_COMPONENT, audit_bridge
from agent.subscriptions.iot_audit import DeviceFacts, ThingFacts, audit_policies
from agent.subscriptions.iot_policy import IotPolicy, PolicyError, ThingRecord
from agent.subscriptions.iot_sources import (
    documents_from_api,
    load_policy_file,
    policy_files,
    stat_key,
)
from agent.subscriptions.ipc_lint import lint_access_control
from agent.subscriptions.ipc_services import MQTT_PROXY, PUBLISH_TO_IOT_CORE
from agent.subscriptions.legacy_router import ROUTER_COMPONENT, audit_router
from agent.subscriptions.lite_authz import authorize as lite_authorize
from agent.subscriptions.topics import aws_iot_limit_problem

PUBLISH = "subscription.publish_authorized"
LINT = "subscription.policy_lint"
BRIDGE = "subscription.bridge"
ROUTER = "subscription.legacy_router"
IOT_POLICY = "subscription.iot_policy"


@dataclass(frozen=True)
class Fetched:
    """The policies AWS IoT has attached to the device certificate, and where they live."""

    policies: list[IotPolicy]
    account: str
    region: str
    secrets: tuple[str, ...] = ()
    """Credential values to scrub from anything reported about this fetch."""
    thing: ThingFacts | None = None
    """The thing's registry entry, for ``iot:Connection.Thing.*`` conditions."""


def fetch_policies(ctx: CheckContext) -> Fetched:
    """Fetch (through the AWS client, loaded only when fetching is on) and parse the attached
    policies; raises AwsError or PolicyError."""
    from agent.aws.iot import fetch_device_policies

    device = fetch_device_policies(
        config=ctx.config.s3,
        greengrass=ctx.greengrass,
        env=ctx.env,
        thing_name=ctx.thing_name,
        now=ctx.clock(),
        http=ctx.http_client(),
    )
    parsed = documents_from_api({p.name: p.document for p in device.attached})
    policies = [IotPolicy(p.name, p.statements, device.policy_arn_prefix + p.name) for p in parsed]
    thing = None
    if device.thing is not None:
        described = device.thing
        thing = ThingFacts(
            ThingRecord(described.type_name, described.attributes) if described.described else None,
            described.attached,
            described.missing,
            tuple(scrub(p, device.secrets, env=ctx.env) for p in described.problems),
        )
    return Fetched(policies, device.account, device.region, device.secrets, thing)


@dataclass
class SubscriptionState:
    """What the subscription checks keep from one cycle to the next."""

    fetched: tuple[datetime, Fetched] | None = None
    """When AWS IoT last told the certificate's policies, and what (``fetchIotPolicy``)."""
    policy_file: tuple[Hashable, list[IotPolicy]] | None = None
    """``iotPolicyFile``'s policies, under the path, files and stamps they were read from."""
    lint: tuple[AccessControlIndex, bool, list[CheckResult]] | None = None
    """The last lint, under the index and interpolation it was made from: asking the nucleus's
    matcher about every resource costs milliseconds a policy, and configurations rarely change."""


def _build_index(ctx: CheckContext) -> AccessControlIndex:
    return index_services(ctx.greengrass.services)


def _index(ctx: CheckContext) -> AccessControlIndex:
    return ctx.once(_build_index)


def health_topic(ctx: CheckContext) -> str:
    """The health topic with ``{iot:thingName}`` resolved."""
    return ctx.config.health_topic_for(ctx.thing_name)


@check(PUBLISH)
def publish_authorized(ctx: CheckContext) -> Iterable[CheckResult]:
    """The agent's own accessControl lets it publish its report through IPC."""
    if ctx.config.transport is not Transport.IPC:
        return []
    topic = health_topic(ctx)
    component = ctx.config.component_name
    malformed = topic_problem(topic)
    if malformed:
        # The template passed validation; the thing name itself holds '+', '#' or NUL.
        return [
            result(
                PUBLISH,
                Status.CRITICAL,
                topic,
                f"with the thing name {ctx.thing_name!r} in place of {{iot:thingName}}, the "
                f"health topic {malformed}; no report can be published",
                "fix system.thingName (AWS IoT thing names hold only letters, digits, ':', '_' "
                "and '-') or use a healthTopic without {iot:thingName}",
                reason="invalid_topic",
                component=component,
            )
        ]
    too_long = aws_iot_limit_problem(topic)
    if too_long:
        # The template passed validation; the thing name made it too long for AWS IoT Core.
        return [
            result(
                PUBLISH,
                Status.CRITICAL,
                topic,
                f"the health topic {too_long}, so AWS IoT Core rejects every report",
                "shorten healthTopic (<= 256 bytes and 7 slashes once {iot:thingName} is "
                "replaced by the thing name)",
                reason="topic_limit",
                component=component,
            )
        ]
    if ctx.greengrass.lite:
        return _lite_publish_authorized(ctx, component, topic)
    index = _index(ctx)
    if component not in ctx.greengrass.services and ctx.config.access_control:
        index = index_access_control({component: ctx.config.access_control})
    dropped = [
        p
        for p in index.problems
        if (p.scope == "component" and p.component == component)
        or (p.scope == "service" and p.service == MQTT_PROXY)
    ]
    thing = ctx.thing_name if ctx.greengrass.interpolates_configuration else None
    decision = is_authorized(index, component, MQTT_PROXY, PUBLISH_TO_IOT_CORE, topic, thing)
    if decision.allowed:
        return _publish_granted(
            component, topic, decision.reason, decision.policy_id, decision.resource_pattern
        )
    snippet = grant_snippet(component, MQTT_PROXY, PUBLISH_TO_IOT_CORE, topic)
    if dropped:
        ignored = (
            f"every {MQTT_PROXY} policy"
            if dropped[0].scope == "service"
            else f"every accessControl policy of {component}"
        )
        message = (
            f"the nucleus ignores {ignored} ({dropped[0].message}), so publishing the report "
            "is refused"
        )
        fix = f"fix the accessControl of {component}; it must grant {snippet}"
        reason = "access_control_rejected"
    elif (
        thing is None
        and is_authorized(
            index, component, MQTT_PROXY, PUBLISH_TO_IOT_CORE, topic, ctx.thing_name
        ).allowed
    ):
        message = (
            f"{component} is granted '{topic}' only through {THING_NAME_VARIABLE}, which "
            "this nucleus does not interpolate (interpolateComponentConfiguration is off), "
            "so it matches the text literally and publishing is refused"
        )
        fix = (
            "set interpolateComponentConfiguration: true in the aws.greengrass.Nucleus "
            f"configuration (v2.6.0+) and redeploy {component}, or grant the topic with the "
            f"thing name written out: {snippet}"
        )
        reason = "thing_name_not_interpolated"
    elif decision.quirk is not None:
        message = f"{decision.quirk}; the nucleus refuses to publish the health report"
        fix = f"grant the health topic exactly, in a policy of its own: {snippet}"
        reason = "nucleus_matcher"
    else:
        message = f"{decision.reason}: the nucleus refuses to publish the health report"
        fix = (
            f"add to the configuration of {component} (recipe DefaultConfiguration or a "
            f"deployment configuration merge): {snippet}"
        )
        reason = "not_granted"
    return _publish_refused(component, topic, message, fix, reason)


def _publish_refused(
    component: str, topic: str, message: str, fix: str, reason: str
) -> list[CheckResult]:
    return [
        result(
            PUBLISH,
            Status.CRITICAL,
            topic,
            message,
            fix,
            component=component,
            service=MQTT_PROXY,
            operation=PUBLISH_TO_IOT_CORE,
            reason=reason,
        )
    ]


def _publish_granted(
    component: str, topic: str, why: str, policy_id: str | None, resource: str | None
) -> list[CheckResult]:
    return [
        result(
            PUBLISH,
            Status.OK,
            topic,
            f"{component}: {why}",
            component=component,
            policy_id=policy_id,
            resource=resource,
        )
    ]


def _lite_publish_authorized(ctx: CheckContext, component: str, topic: str) -> list[CheckResult]:
    """Nucleus lite: ggipcd's own walk and matchers (agent/subscriptions/lite_authz.py), not the
    Java nucleus's trie; ``{iot:thingName}`` in a policy is literal on lite <= 2.6.0."""
    if component in ctx.greengrass.services:
        acl = ctx.greengrass.service_configuration(component).get("accessControl")
    else:
        acl = ctx.config.access_control
    decision = lite_authorize(acl, MQTT_PROXY, PUBLISH_TO_IOT_CORE, topic)
    if decision.allowed:
        return _publish_granted(
            component, topic, decision.why, decision.policy_id, decision.resource
        )
    snippet = grant_snippet(component, MQTT_PROXY, PUBLISH_TO_IOT_CORE, topic)
    if lite_authorize(
        acl, MQTT_PROXY, PUBLISH_TO_IOT_CORE, topic, interpolate=True, thing_name=ctx.thing_name
    ).allowed:
        message = (
            f"{component} is granted '{topic}' only through {THING_NAME_VARIABLE}, which "
            "nucleus lite matches literally (it does not interpolate component configuration), "
            "so publishing is refused"
        )
        fix = f"grant the topic with '+' or the thing name written out: {snippet}"
        reason = "thing_name_not_interpolated"
    else:
        message = f"{decision.why}: nucleus lite refuses to publish the health report"
        fix = f"add to the configuration of {component}: {snippet}"
        reason = "not_granted"
    return _publish_refused(component, topic, message, fix, reason)


@check(LINT)
def policy_lint(ctx: CheckContext) -> Iterable[CheckResult]:
    """Every component's accessControl: rejected, ignored or over-broad policies."""
    index, interpolates = _index(ctx), ctx.greengrass.interpolates_configuration
    state = ctx.kept.get(SubscriptionState)
    if state.lint is not None and state.lint[:2] == (index, interpolates):
        return list(state.lint[2])
    results = [v.to_result(LINT) for v in lint_access_control(index, interpolates=interpolates)]
    state.lint = (index, interpolates, results)
    return list(results)


@check(BRIDGE)
def bridge(ctx: CheckContext) -> Iterable[CheckResult]:
    """The MQTT bridge's topic mappings (nothing when the bridge is not deployed)."""
    if BRIDGE_COMPONENT not in ctx.greengrass.services:
        return []
    verdicts = audit_bridge(ctx.greengrass.service_configuration(BRIDGE_COMPONENT))
    return [v.to_result(BRIDGE) for v in verdicts]


@check(ROUTER)
def legacy_router(ctx: CheckContext) -> Iterable[CheckResult]:
    """The legacy subscription router's subscriptions (nothing when it is not deployed)."""
    services = ctx.greengrass.services
    entry = services.get(ROUTER_COMPONENT)
    if not isinstance(entry, Mapping):
        return []
    version = entry.get("version")
    verdicts = audit_router(
        ctx.greengrass.service_configuration(ROUTER_COMPONENT),
        services,
        None if version is None else str(version),
    )
    return [v.to_result(ROUTER) for v in verdicts]


@check(IOT_POLICY)
def iot_policy(ctx: CheckContext) -> Iterable[CheckResult]:
    """The device certificate's AWS IoT policies, when a file or AWS IoT provides them."""
    settings = ctx.config.subscriptions
    if settings.iot_policy_file is not None:
        path = settings.iot_policy_file
        try:
            policies = _file_policies(ctx, path)
        except (InputError, PolicyError) as exc:
            return [
                result(
                    IOT_POLICY,
                    Status.UNKNOWN,
                    str(path),
                    f"cannot read the IoT policy: {exc}",
                    "point subscriptions.iotPolicyFile at the policy JSON (a document, a "
                    "GetPolicy response, or a directory of them) readable by the agent",
                    reason="unreadable_policy",
                )
            ]
        return iot_policy_results(ctx, policies)
    if settings.fetch_iot_policy:
        return fetch_iot_policies(ctx)
    return []


FETCH_TTL_SECONDS = 3600
"""Attached policies change rarely; fetching them once an hour keeps the steady state cheap."""


def fetch_iot_policies(ctx: CheckContext) -> list[CheckResult]:
    """``subscriptions.fetchIotPolicy``: the policies AWS IoT has attached to the certificate."""
    from agent.errors import AwsError, ErrorKind

    now = ctx.clock()
    state = ctx.kept.get(SubscriptionState)
    cached = state.fetched
    if cached is not None and 0 <= (now - cached[0]).total_seconds() < FETCH_TTL_SECONDS:
        fetched = cached[1]
        return iot_policy_results(ctx, fetched.policies, fetched.account, fetched.thing)
    try:
        fetched = fetch_policies(ctx)
    except (AwsError, PolicyError) as exc:
        kind = exc.kind if isinstance(exc, AwsError) else None
        denied = kind is ErrorKind.ACCESS_DENIED
        fix = (
            "allow sts:GetCallerIdentity, iot:ListAttachedPolicies on the certificate ARN and "
            "iot:GetPolicy to the credentials the agent uses, or give the policy as a file with "
            "subscriptions.iotPolicyFile"
            if denied or kind is None
            else (
                exc.remediation
                if isinstance(exc, AwsError) and exc.remediation
                else "check the network path and credentials, or give the policy as a file with "
                "subscriptions.iotPolicyFile"
            )
        )
        message = scrub(f"cannot fetch the certificate's IoT policies: {exc}", env=ctx.env)
        return [
            result(
                IOT_POLICY,
                Status.UNKNOWN,
                "AWS IoT",
                message,
                fix,
                reason=kind.value if kind else "bad_policy",
            )
        ]
    if not fetched.policies:
        return [
            result(
                IOT_POLICY,
                Status.CRITICAL,
                "AWS IoT",
                "no IoT policy is attached to the device certificate, so AWS IoT refuses "
                "every action of this core device",
                "attach the Greengrass core device policy to the certificate "
                "(aws iot attach-policy --target <certificate ARN>)",
                reason="no_policy_attached",
                account=fetched.account,
            )
        ]
    state.fetched = (now, fetched)
    return iot_policy_results(ctx, fetched.policies, fetched.account, fetched.thing)


def _file_policies(ctx: CheckContext, path: Path) -> list[IotPolicy]:
    files = policy_files(path)
    key = tuple(stat_key(f) for f in files)
    state = ctx.kept.get(SubscriptionState)
    cached = state.policy_file
    if cached is not None and cached[0] == (path, files, key) and None not in key:
        return cached[1]
    policies = [p for f in files for p in load_policy_file(f)]
    state.policy_file = ((path, files, key), policies)
    return policies


def iot_policy_results(
    ctx: CheckContext,
    policies: Sequence[IotPolicy],
    account: str | None = None,
    registry: ThingFacts | None = None,
) -> list[CheckResult]:
    """The ``subscription.iot_policy`` results for policies however they were obtained.

    ``account`` is the AWS account id when known (AWS IoT tells it; a file may not); ``registry``
    what AWS IoT's registry said about the thing (None: not asked, thing conditions undecided).
    """
    thing = ctx.greengrass.device_thing_name(ctx.env)
    if thing is None:
        return [
            result(
                IOT_POLICY,
                Status.UNKNOWN,
                ", ".join(p.name for p in policies),
                "the thing name is unknown, so the policy cannot be evaluated for it",
                "set system.thingName in the Greengrass configuration or run the agent "
                "as a component (AWS_IOT_THING_NAME)",
                reason="thing_name_unknown",
            )
        ]
    region, arn_account = _arn_region_account(policies)
    publishes = ctx.config.transport in (Transport.IPC, Transport.MQTT)
    client_ids: tuple[str, ...] = ()
    if ctx.config.transport is Transport.MQTT:
        client_ids = (ctx.config.mqtt.client_id or thing,)
    facts = DeviceFacts(
        thing_name=thing,
        region=ctx.greengrass.region or ctx.env.get("AWS_REGION") or region,
        account=account or arn_account,
        role_alias=ctx.greengrass.role_alias,
        nucleus_version=_text(_entry(ctx, ctx.greengrass.nucleus_name).get("version")),
        publish_topics=(health_topic(ctx),) if publishes else (),
        client_ids=client_ids,
        required_topics=tuple(
            with_thing_name(t, thing) for t in ctx.config.subscriptions.required_topics
        ),
        thing=registry,
    )
    return [v.to_result(IOT_POLICY) for v in audit_policies(policies, facts)]


def _arn_region_account(policies: Sequence[IotPolicy]) -> tuple[str | None, str | None]:
    for policy in policies:
        parts = (policy.arn or "").split(":")
        if len(parts) >= 6 and parts[0] == "arn":
            return parts[3] or None, parts[4] or None
    return None, None


def _entry(ctx: CheckContext, name: str) -> Mapping[str, Any]:
    entry = ctx.greengrass.services.get(name)
    return entry if isinstance(entry, Mapping) else {}


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, (Mapping, list)) else (str(value) or None)


CHECKS = [publish_authorized, policy_lint, bridge, legacy_router, iot_policy, probe_check]
