"""IPC authorization as nucleus lite's ggipcd decides it: a separate path from the Java
nucleus's matcher (agent/subscriptions/nucleus_trie.py), chosen when GreengrassRoot.lite.

Reproduced from aws-greengrass-lite 2.6.0, step for step:

- modules/ggipcd/src/ipc_authz.c ``ggl_ipc_auth``: the request resource is validated first
  (modules/ggl-policy-validation/src/policy_validation.c: a '?' or a bad ``${`` escape in it is
  refused); then ``services/<component>/configuration/accessControl/<service>`` is read; missing
  or not a map refuses; the policies are walked in store order; a policy that is not a map
  refuses at once (even when a later one would allow); one without list-of-strings
  ``operations``/``resources`` is skipped; in a policy, the first operation equal to the request's
  or ``*`` decides: a resource ``*`` or one the matcher accepts allows.
- ``ggl_ipc_default_policy_matcher`` (pubsub, cli): ``*`` matches any run of characters (``/``
  included), ``${*}``, ``${?}``, ``${$}`` are the literal character; nothing else is special.
- modules/ggipcd/src/services/mqttproxy/mqttproxy.c ``ggl_ipc_mqtt_policy_matcher``: the default
  matcher, or MQTT filter matching where ``+`` takes characters up to the next ``/`` and ``#``
  anywhere matches the rest.
- Recipe variables in policy resources: lite 2.6.0 and earlier match them as written
  (``{iot:thingName}`` is literal text, configuration is not interpolated,
  docs/RECIPE_SUPPORT_CHANGES.md); lite's main branch substitutes them at authorization time
  since commit 3572e069 "Add variable interpolation to ggipc authz" (2026-07-15, in no release
  yet): ``interpolate=True`` models that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MQTT_PROXY = "aws.greengrass.ipc.mqttproxy"
_WILDCARD = object()


@dataclass(frozen=True)
class LiteDecision:
    """Lite's answer to one request."""

    allowed: bool
    policy_id: str | None
    resource: str | None
    """The policy resource that matched."""
    why: str


def validate_request_resource(resource: str) -> str | None:
    """Why ggipcd refuses the request resource itself (policy_validation.c), or None."""
    i = 0
    while i < len(resource):
        c = resource[i]
        if c == "?":
            return f"a bare '?' at position {i} of the requested resource"
        if c == "$" and i + 1 < len(resource) and resource[i + 1] == "{":
            if i + 3 >= len(resource):
                return "an unterminated '${' escape in the requested resource"
            if resource[i + 2] not in "*?$" or resource[i + 3] != "}":
                return "a bad '${' escape in the requested resource"
            i += 3
        i += 1
    return None


def default_matcher(request: str, policy: str) -> bool:
    """ipc_authz.c ggl_ipc_default_policy_matcher."""
    pattern: list[object] = []
    in_escape = False
    i = 0
    while i < len(policy):
        c = policy[i]
        if in_escape:
            if c == "}":
                in_escape = False
                i += 1
                continue
        elif c == "*":
            pattern.append(_WILDCARD)
            i += 1
            continue
        elif c == "$" and i < len(policy) - 1 and policy[i + 1] == "{":
            in_escape = True
            i += 2
            continue
        pattern.append(c)
        i += 1
    segments: list[str] = [""]
    for item in pattern:
        if item is _WILDCARD:
            segments.append("")
        else:
            segments[-1] += str(item)
    if len(segments) == 1:
        return request == segments[0]
    if not request.startswith(segments[0]):
        return False
    remaining = request[len(segments[0]) :]
    for segment in segments[1:-1]:
        at = remaining.find(segment)
        if at < 0:
            return False
        remaining = remaining[at + len(segment) :]
    return remaining.endswith(segments[-1])


def topic_filter_matcher(request: str, policy: str) -> bool:
    """mqttproxy.c match_topic_filter."""
    j = 0
    for c in policy:
        if c == "+":
            while j < len(request) and request[j] != "/":
                j += 1
        elif c == "#":
            return True
        else:
            if j >= len(request) or c != request[j]:
                return False
            j += 1
    return j == len(request)


def matches(service: str, request: str, policy: str) -> bool:
    """The matcher ggipcd uses for ``service``."""
    if service == MQTT_PROXY:
        return default_matcher(request, policy) or topic_filter_matcher(request, policy)
    return default_matcher(request, policy)


def _interpolate(resource: str, variables: Mapping[str, str]) -> str | None:
    """ipc_authz.c interpolate_policy_resource (main after 2.6.0); None where lite skips it."""
    out: list[str] = []
    i = 0
    while i < len(resource):
        c = resource[i]
        if c == "{" and not (i > 0 and resource[i - 1] == "$"):
            end = resource.find("}", i + 1)
            if end < 0 or resource[i + 1 : end] not in variables:
                return None
            out.append(variables[resource[i + 1 : end]])
            i = end + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def authorize(
    access_control: Any,
    service: str,
    operation: str,
    resource: str,
    *,
    interpolate: bool = False,
    thing_name: str | None = None,
) -> LiteDecision:
    """ggl_ipc_auth for one component whose ``accessControl`` is ``access_control``."""
    problem = validate_request_resource(resource)
    if problem:
        return LiteDecision(False, None, None, f"ggipcd refuses {problem}")
    policies = access_control.get(service) if isinstance(access_control, Mapping) else None
    if policies is None:
        return LiteDecision(False, None, None, f"no accessControl policy for {service}")
    if not isinstance(policies, Mapping):
        return LiteDecision(False, None, None, f"accessControl.{service} is not a map")
    variables = {"iot:thingName": thing_name or ""}
    for policy_id, policy in policies.items():
        if not isinstance(policy, Mapping):
            return LiteDecision(
                False,
                str(policy_id),
                None,
                f"policy {policy_id} is not a map, and ggipcd stops at it",
            )
        operations, resources = policy.get("operations"), policy.get("resources")
        if not (_strings(operations) and _strings(resources)):
            continue  # GG_ERR_CONFIG: ggl_ipc_auth goes on with the next policy
        assert isinstance(operations, list) and isinstance(resources, list)
        if not any(op in ("*", operation) for op in operations):
            continue
        for pattern in resources:
            if pattern == "*":
                return LiteDecision(True, str(policy_id), pattern, _granted(policy_id, pattern))
            target: str | None = pattern
            if interpolate and "{" in pattern:
                target = _interpolate(pattern, variables)
            if target is not None and matches(service, resource, target):
                return LiteDecision(True, str(policy_id), pattern, _granted(policy_id, pattern))
    return LiteDecision(
        False, None, None, f"no {service} policy grants {operation} on '{resource}'"
    )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _granted(policy_id: Any, pattern: str) -> str:
    return f"policy {policy_id} grants it through '{pattern}' (nucleus lite's ggipcd matcher)"
