"""Greengrass IPC authorization exactly as the nucleus applies it: parsing and lookups.

Parsing follows ``AuthorizationPolicyParser``: ``services.<component>.configuration.accessControl``
maps an IPC service to ``{policyId: {policyDescription, operations, resources}}`` (keys matched
case-insensitively). Anything Jackson cannot bind (an unknown key, a scalar where a list belongs,
an explicit null) makes the nucleus drop *every* policy of that component; a policy without
operations is skipped on its own. ``AuthorizationHandler.validatePolicyId`` then runs on the
policies of all components for one service: one blank id (and, before v2.12.0, one id used twice)
drops every policy of that service. Lookups follow ``AuthorizationHandler.isAuthorized``: the
operation must be registered by the service, then the resources of all the calling component's
policies for the operation (then for ``*``) form one trie, walked as the nucleus walks it
(:mod:`agent.subscriptions.nucleus_trie`). Where that walk differs from the documented semantics
the decision says so: the device obeys the walk.
https://docs.aws.amazon.com/greengrass/v2/developerguide/interprocess-communication.html#ipc-authorization-policies
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent.config.files import loads_json
from agent.config.names import THING_NAME_VARIABLE, with_thing_name
from agent.subscriptions.ipc_resources import resource_matches, resource_problem
from agent.subscriptions.ipc_services import ANY, IPC_SERVICES, TOKEN_EXCHANGE, LookupStyle
from agent.subscriptions.java_order import case_insensitive_key, hash_set_order, java_is_blank
from agent.subscriptions.nucleus_trie import WildcardTrie

UNIQUE_IDS_OPTIONAL = (2, 12, 0)
"""The first nucleus that accepts a policy id used twice for one service (aws-greengrass-nucleus
#1498); before it, ``validatePolicyId`` rejected every policy of that service."""

_FIELDS = {
    "policydescription": "policyDescription",
    "operations": "operations",
    "resources": "resources",
}


@dataclass(frozen=True)
class IpcPolicy:
    """One authorization policy the nucleus loads for a component."""

    component: str
    service: str
    policy_id: str
    description: str | None
    operations: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True)
class ParseProblem:
    """Why the nucleus ignores part of a component's ``accessControl``."""

    component: str
    service: str | None
    policy_id: str | None
    message: str
    scope: Literal["service", "component", "policy"]
    """``service``: every component's policies for the service are dropped; ``component``: every
    policy of the component; ``policy``: only this one."""


@dataclass(frozen=True)
class AccessControlIndex:
    """Every loaded policy of every component, and the problems met while parsing."""

    policies: tuple[IpcPolicy, ...] = ()
    problems: tuple[ParseProblem, ...] = ()

    def for_component(self, component: str, service: str | None = None) -> list[IpcPolicy]:
        """The policies of ``component`` (for ``service`` when given), in the nucleus's order."""
        return [
            p
            for p in self.policies
            if p.component == component and (service is None or p.service == service)
        ]


@dataclass(frozen=True)
class Decision:
    """The outcome of one authorization lookup, with the policy that decided it."""

    allowed: bool
    reason: str
    policy_id: str | None = None
    resource_pattern: str | None = None
    via_thing_name: bool = False
    """Granted only because ``{iot:thingName}`` in the pattern was replaced by the thing name."""
    quirk: str | None = None
    """Why this answer differs from what the documented semantics suggest (the device obeys
    the nucleus's matcher), or None when both agree."""


class _Invalid(Exception):
    def __init__(self, message: str, policy_id: str | None = None) -> None:
        super().__init__(message)
        self.policy_id = policy_id


def access_control_of(service_entry: Any) -> Any:
    """``configuration.accessControl`` of one ``services.<name>`` entry (None when absent)."""
    if not isinstance(service_entry, Mapping):
        return None
    configuration = service_entry.get("configuration")
    if not isinstance(configuration, Mapping):
        return None
    if "accessControl" in configuration:
        return configuration["accessControl"]
    # Nucleus configuration keys are case-insensitive.
    for key, value in configuration.items():
        if isinstance(key, str) and key.lower() == "accesscontrol":
            return value
    return None


def nucleus_version(services: Mapping[str, Any]) -> tuple[int, ...] | None:
    """``services.aws.greengrass.Nucleus.version`` as numbers (None when absent or not x.y.z)."""
    entry = services.get("aws.greengrass.Nucleus")
    version = entry.get("version") if isinstance(entry, Mapping) else None
    parts = str(version).split("-", 1)[0].split(".") if version is not None else []
    return tuple(int(p) for p in parts) if parts and all(p.isdigit() for p in parts) else None


def index_services(services: Mapping[str, Any]) -> AccessControlIndex:
    """Parse the ``accessControl`` of every service in an ``effectiveConfig.yaml``, for the
    nucleus version it names."""
    return index_access_control(
        {name: access_control_of(e) for name, e in services.items()},
        nucleus_version(services),
    )


def index_access_control(
    by_component: Mapping[str, Any], version: tuple[int, ...] | None = None
) -> AccessControlIndex:
    """Parse ``{component: accessControl value}`` the way nucleus ``version`` does (None: the
    newest behaviour)."""
    policies: list[IpcPolicy] = []
    problems: list[ParseProblem] = []
    for component, value in by_component.items():
        loaded, skipped, failure = _parse_component(str(component), value)
        if failure is not None:
            problems.append(failure)
            continue
        policies.extend(loaded)
        problems.extend(skipped)
    rejected = _rejected_services(policies, version)
    problems.extend(rejected.values())
    kept = tuple(p for p in policies if p.service not in rejected)
    return AccessControlIndex(kept, tuple(problems))


def _rejected_services(
    policies: Iterable[IpcPolicy], version: tuple[int, ...] | None
) -> dict[str, ParseProblem]:
    """``validatePolicyId`` on every component's policies for one service (the TES excepted:
    its default policy replaces them all)."""
    by_service: dict[str, list[IpcPolicy]] = {}
    for policy in policies:
        by_service.setdefault(policy.service, []).append(policy)
    rejected: dict[str, ParseProblem] = {}
    for service, listed in by_service.items():
        if service == TOKEN_EXCHANGE:
            continue
        found = _blank_id(listed)
        if found is None and version is not None and version < UNIQUE_IDS_OPTIONAL:
            found = _reused_id(listed, version)
        if found is not None:
            policy, why = found
            rejected[service] = ParseProblem(
                policy.component,
                service,
                policy.policy_id,
                f"{why}, and the nucleus then rejects every component's policies for {service}",
                "service",
            )
    return rejected


def _blank_id(policies: list[IpcPolicy]) -> tuple[IpcPolicy, str] | None:
    blank = next((p for p in policies if java_is_blank(p.policy_id)), None)
    return None if blank is None else (blank, f"a policy id of {blank.component} is blank")


def _reused_id(policies: list[IpcPolicy], version: tuple[int, ...]) -> tuple[IpcPolicy, str] | None:
    seen: dict[str, IpcPolicy] = {}
    for policy in policies:
        first = seen.setdefault(policy.policy_id, policy)
        if first is not policy:
            return policy, (
                f"the policy id {policy.policy_id} is used by both {first.component} and "
                f"{policy.component} on nucleus {'.'.join(map(str, version))} (before 2.12.0)"
            )
    return None


def _parse_component(
    component: str, value: Any
) -> tuple[list[IpcPolicy], list[ParseProblem], ParseProblem | None]:
    if value is None or value == {}:
        return [], [], None
    stored = not isinstance(value, str)
    if isinstance(value, str):
        # A leaf value is parsed as JSON ("be flexible and do best to understand customer intent").
        try:
            value = loads_json(value)
        except ValueError as exc:
            return (
                [],
                [],
                ParseProblem(
                    component,
                    None,
                    None,
                    f"accessControl is a string that is not JSON ({exc})",
                    "component",
                ),
            )
    if not isinstance(value, Mapping):
        return (
            [],
            [],
            ParseProblem(
                component,
                None,
                None,
                f"accessControl is a {type(value).__name__}, not a mapping "
                "of IPC service to policies",
                "component",
            ),
        )
    policies: list[IpcPolicy] = []
    skipped: list[ParseProblem] = []
    for service, by_id in _visible(value, stored):
        service = str(service)
        try:
            loaded, missing_ops = _parse_service(component, service, by_id, stored)
        except _Invalid as exc:
            return [], [], ParseProblem(component, service, exc.policy_id, str(exc), "component")
        policies.extend(loaded)
        skipped.extend(
            ParseProblem(
                component,
                service,
                pid,
                "has no operations, so the nucleus skips the policy",
                "policy",
            )
            for pid in missing_ops
        )
    return policies, skipped, None


def _visible(mapping: Mapping[Any, Any], stored: bool) -> list[tuple[Any, Any]]:
    """The entries the parser sees. From the configuration store (``Topics.toPOJO``): keys
    starting with ``_`` left out, the rest sorted case-insensitively (the order policies join a
    trie in); from a JSON text: every entry, in the text's order."""
    if not stored:
        return list(mapping.items())
    shown = [(k, v) for k, v in mapping.items() if not str(k).startswith("_")]
    return sorted(shown, key=lambda item: case_insensitive_key(str(item[0])))


def _parse_service(
    component: str, service: str, by_id: Any, stored: bool
) -> tuple[list[IpcPolicy], list[str]]:
    if not isinstance(by_id, Mapping):
        raise _Invalid(
            f"the value of {service} is "
            f"{'empty' if by_id is None else 'a ' + type(by_id).__name__}, "
            "not a mapping of policy id to policy"
        )
    loaded: list[IpcPolicy] = []
    missing_ops: list[str] = []
    for raw_id, body in _visible(by_id, stored):
        policy_id = str(raw_id)
        fields = _policy_fields(policy_id, body, stored)
        operations = _strings(policy_id, "operations", fields.get("operations"))
        resources = _strings(policy_id, "resources", fields.get("resources"))
        description = fields.get("policyDescription")
        if not operations:
            missing_ops.append(policy_id)
            continue
        loaded.append(
            IpcPolicy(
                component,
                service,
                policy_id,
                None if description is None else str(description),
                tuple(dict.fromkeys(operations)),
                # Jackson binds the list to a HashSet: its order is the order of the trie.
                tuple(hash_set_order(resources)),
            )
        )
    return loaded, missing_ops


def _policy_fields(policy_id: str, body: Any, stored: bool) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        what = "empty" if body is None else f"a {type(body).__name__}"
        raise _Invalid(
            f"policy {policy_id} is {what}, not a mapping of "
            "policyDescription/operations/resources",
            policy_id,
        )
    fields: dict[str, Any] = {}
    for key, value in _visible(body, stored):
        name = _FIELDS.get(str(key).lower())
        if name is None:
            raise _Invalid(
                f"policy {policy_id} has the unknown key '{key}' (allowed: "
                "policyDescription, operations, resources)",
                policy_id,
            )
        if value is None:
            raise _Invalid(f"policy {policy_id} sets {name} to null", policy_id)
        if name == "policyDescription" and isinstance(value, (Mapping, list)):
            raise _Invalid(
                f"policy {policy_id} has a policyDescription that is not text", policy_id
            )
        fields[name] = value
    return fields


def _strings(policy_id: str, name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid(
            f"policy {policy_id} gives {name} as a {type(value).__name__}; it must be a list",
            policy_id,
        )
    out: list[str] = []
    for item in value:
        if isinstance(item, (Mapping, list)) or item is None:
            raise _Invalid(f"policy {policy_id} has an entry of {name} that is not text", policy_id)
        out.append(_jackson_text(item))
    return out


def _jackson_text(item: Any) -> str:
    # Jackson coerces scalars to their JSON text: true -> "true", 1.0 -> "1.0".
    if isinstance(item, bool):
        return "true" if item else "false"
    return str(item)


def is_authorized(
    access_control: AccessControlIndex | Mapping[str, Any],
    component: str,
    service: str,
    operation: str,
    resource: str,
    thing_name: str | None = None,
) -> Decision:
    """Whether the nucleus lets ``component`` perform ``service``:``operation`` on ``resource``.

    ``access_control`` is an index or ``{component: accessControl}``. ``thing_name``, when given,
    replaces ``{iot:thingName}`` in policy resources (what the nucleus does at deployment time
    with ``interpolateComponentConfiguration`` on); without it the variable is literal text.
    """
    index = (
        access_control
        if isinstance(access_control, AccessControlIndex)
        else index_access_control(access_control)
    )
    known = IPC_SERVICES.get(service)
    if known is None:
        return Decision(False, f"{service} is not an IPC service the nucleus authorizes")
    if operation not in known.operations:
        return Decision(False, f"{operation} is not an operation of {service}")
    if service == TOKEN_EXCHANGE:
        # AuthorizationHandler.getDefaultPolicies: principal '*', no resource, and it replaces
        # whatever accessControl components declare for the TES.
        return Decision(
            True,
            "the token exchange service's default policy lets every component get credentials "
            "(the nucleus ignores accessControl for it)",
        )
    if java_is_blank(resource):
        return Decision(False, "the nucleus refuses a request for an empty or blank resource")
    candidates = index.for_component(component, service)
    # Most specific first, as the nucleus looks them up: the operation, then '*'.
    for wanted in (operation, ANY):
        granted = _granted_patterns(candidates, wanted, thing_name)
        if granted and WildcardTrie.of(p for _, p, _ in granted).matches(resource, known.style):
            return _allowed(granted, wanted, resource, known.style, thing_name)
    if not candidates:
        return Decision(False, f"{component} has no accessControl policy for {service}")
    return Decision(
        False,
        f"no accessControl policy of {component} for {service} grants {operation} on '{resource}'",
        quirk=_lost_match(candidates, operation, resource, known.style, thing_name),
    )


_Granted = tuple[IpcPolicy, str, str]
"""A policy, one of its resources as the nucleus holds it, and that resource as written."""


def _granted_patterns(
    policies: Iterable[IpcPolicy], operation: str, thing_name: str | None
) -> list[_Granted]:
    """The resources of every policy granting ``operation``, in the order the nucleus adds them
    to the operation's one trie, without those it refuses to load."""
    granted: list[_Granted] = []
    for policy in policies:
        if operation not in policy.operations:
            continue
        for written in policy.resources:
            held = with_thing_name(written, thing_name)
            if resource_problem(held) is None and not java_is_blank(held):
                granted.append((policy, held, written))
    return granted


def _allowed(
    granted: list[_Granted], wanted: str, resource: str, style: LookupStyle, thing: str | None
) -> Decision:
    alone = next((g for g in granted if WildcardTrie.of([g[1]]).matches(resource, style)), None)
    documented = [g for g in granted if resource_matches(g[1], resource, style)]
    quirk = None
    if not documented:
        quirk = (
            f"the nucleus grants '{resource}' although, as documented, none of "
            f"{_listed(granted)} does: its matcher turns an escaped ${{*}} before a later "
            "wildcard, or a literal *, + or # beside another pattern's wildcard, into a wildcard"
        )
    if alone is None:
        return Decision(
            True,
            f"the patterns {_listed(granted)} granting {wanted} together grant '{resource}' in "
            "the nucleus's matcher, though none does alone",
            granted[0][0].policy_id,
            None,
            False,
            quirk,
        )
    policy, _, written = alone
    return Decision(
        True,
        f"policy {policy.policy_id} grants {wanted} on '{written}'",
        policy.policy_id,
        written,
        thing is not None and THING_NAME_VARIABLE in written,
        quirk,
    )


def _lost_match(
    policies: list[IpcPolicy], operation: str, resource: str, style: LookupStyle, thing: str | None
) -> str | None:
    """Why a refused ``resource`` is refused although the documentation says a pattern grants
    it (None when the documentation agrees with the refusal)."""
    for wanted in (operation, ANY):
        granted = _granted_patterns(policies, wanted, thing)
        documented = [g for g in granted if resource_matches(g[1], resource, style)]
        if not documented:
            continue
        policy, held, written = documented[0]
        if WildcardTrie.of([held]).matches(resource, style):
            return (
                f"the nucleus refuses '{resource}' although, as documented, '{written}' of "
                f"policy {policy.policy_id} grants it: the nucleus keeps all of the component's "
                f"patterns for {wanted} in one tree and loses this match among "
                f"{_listed(granted)}; write a pattern that shares no beginning with the others, "
                "e.g. the exact topic (separate policies do not help: they share the tree)"
            )
        return (
            f"the nucleus refuses '{resource}' although, as documented, '{written}' of policy "
            f"{policy.policy_id} grants it: the nucleus's matcher reads this pattern differently "
            "from the documentation; write it without escapes next to wildcards"
        )
    return None


def _listed(granted: Iterable[_Granted]) -> str:
    return ", ".join(f"'{written}'" for _, _, written in granted)


def grant_snippet(component: str, service: str, operation: str, resource: str) -> str:
    """The flow-style YAML of an ``accessControl`` that makes the nucleus grant the request."""
    policy_id = f"{component}:{service.rsplit('.', 1)[-1]}:1"
    return (
        f'accessControl: {{{service}: {{"{policy_id}": {{operations: ["{operation}"], '
        f'resources: ["{resource}"]}}}}}}'
    )


def policies_granting(policies: Iterable[IpcPolicy], operation: str) -> list[IpcPolicy]:
    """The policies whose operations include ``operation`` or ``*``."""
    return [p for p in policies if operation in p.operations or ANY in p.operations]
