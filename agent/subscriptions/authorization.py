"""Greengrass IPC authorization exactly as the nucleus applies it: parsing and lookups.

Parsing follows ``AuthorizationPolicyParser``: ``services.<component>.configuration.accessControl``
maps an IPC service to ``{policyId: {policyDescription, operations, resources}}`` (keys matched
case-insensitively). Anything Jackson cannot bind (an unknown key, a scalar where a list belongs,
an explicit null) makes the nucleus drop *every* policy of that component; a policy without
operations is skipped on its own. Lookups follow ``AuthorizationHandler.isAuthorized``: the
operation must be registered by the service, then a policy of the calling component whose
operations hold the operation (or ``*``) must have a resource matching the request.
https://docs.aws.amazon.com/greengrass/v2/developerguide/interprocess-communication.html#ipc-authorization-policies
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent.config.files import loads_json
from agent.config.names import THING_NAME_VARIABLE, with_thing_name
from agent.subscriptions.ipc_resources import resource_matches, resource_problem
from agent.subscriptions.ipc_services import ANY, IPC_SERVICES, lookup_style

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
    scope: Literal["component", "policy"]
    """``component``: every policy of the component is dropped; ``policy``: only this one."""


@dataclass(frozen=True)
class AccessControlIndex:
    """Every loaded policy of every component, and the problems met while parsing."""

    policies: tuple[IpcPolicy, ...] = ()
    problems: tuple[ParseProblem, ...] = ()

    def for_component(self, component: str, service: str | None = None) -> list[IpcPolicy]:
        """The policies of ``component`` (for ``service`` when given), in configuration order."""
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


def index_services(services: Mapping[str, Any]) -> AccessControlIndex:
    """Parse the ``accessControl`` of every service in an ``effectiveConfig.yaml``."""
    return index_access_control({name: access_control_of(e) for name, e in services.items()})


def index_access_control(by_component: Mapping[str, Any]) -> AccessControlIndex:
    """Parse ``{component: accessControl value}`` the way the nucleus does."""
    policies: list[IpcPolicy] = []
    problems: list[ParseProblem] = []
    for component, value in by_component.items():
        loaded, skipped, failure = _parse_component(str(component), value)
        if failure is not None:
            problems.append(failure)
            continue
        policies.extend(loaded)
        problems.extend(skipped)
    return AccessControlIndex(tuple(policies), tuple(problems))


def _parse_component(
    component: str, value: Any
) -> tuple[list[IpcPolicy], list[ParseProblem], ParseProblem | None]:
    if value is None or value == {}:
        return [], [], None
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
    for service, by_id in value.items():
        service = str(service)
        try:
            loaded, missing_ops = _parse_service(component, service, by_id)
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


def _parse_service(component: str, service: str, by_id: Any) -> tuple[list[IpcPolicy], list[str]]:
    if not isinstance(by_id, Mapping):
        raise _Invalid(
            f"the value of {service} is "
            f"{'empty' if by_id is None else 'a ' + type(by_id).__name__}, "
            "not a mapping of policy id to policy"
        )
    loaded: list[IpcPolicy] = []
    missing_ops: list[str] = []
    for raw_id, body in by_id.items():
        policy_id = str(raw_id)
        if not policy_id:
            raise _Invalid(
                f"a policy id is empty; the nucleus then rejects every policy of {service}",
                policy_id,
            )
        fields = _policy_fields(policy_id, body)
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
                tuple(dict.fromkeys(resources)),
            )
        )
    return loaded, missing_ops


def _policy_fields(policy_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        what = "empty" if body is None else f"a {type(body).__name__}"
        raise _Invalid(
            f"policy {policy_id} is {what}, not a mapping of "
            "policyDescription/operations/resources",
            policy_id,
        )
    fields: dict[str, Any] = {}
    for key, value in body.items():
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
    style = lookup_style(service)
    candidates = index.for_component(component, service)
    # Most specific first, as the nucleus logs the policy it hit: the operation, then '*'.
    for wanted in (operation, ANY):
        for policy in candidates:
            if wanted not in policy.operations:
                continue
            for pattern in policy.resources:
                if resource_problem(pattern) is not None:
                    continue  # the nucleus dropped this resource when loading the policy
                if resource_matches(with_thing_name(pattern, thing_name), resource, style):
                    return Decision(
                        True,
                        f"policy {policy.policy_id} grants {wanted} on '{pattern}'",
                        policy.policy_id,
                        pattern,
                        thing_name is not None and THING_NAME_VARIABLE in pattern,
                    )
    if not candidates:
        return Decision(False, f"{component} has no accessControl policy for {service}")
    return Decision(
        False,
        f"no accessControl policy of {component} for {service} grants {operation} on '{resource}'",
    )


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
