"""Resources of Greengrass IPC authorization policies: validation and matching as the nucleus does.

Rules (aws-greengrass-nucleus ``AuthorizationModule.validateResource`` and ``WildcardTrie``,
https://docs.aws.amazon.com/greengrass/v2/developerguide/interprocess-communication.html#ipc-authorization-policy-wildcards):

- ``*`` matches any run of characters, ``/`` included (nucleus v2.6.0 and later).
- ``?`` is not a wildcard and is refused unescaped; ``${*}``, ``${?}`` and ``${$}`` stand for a
  literal ``*``, ``?`` and ``$``. Any other ``${`` sequence is refused. A refused resource is
  dropped by the nucleus (the rest of its policy still loads).
- For ``aws.greengrass.ipc.mqttproxy`` only, ``+`` occupying a whole level matches one level and
  ``#`` as the whole last level matches the parent level and everything below; used anywhere else
  they are literal characters, as they always are for the other services.
"""

from __future__ import annotations

import functools
import re
from enum import Enum

from agent.subscriptions.ipc_services import LookupStyle

_ESCAPABLE = "*$?"


class _Kind(Enum):
    LITERAL = 0
    STAR = 1
    PLUS = 2
    HASH = 3


def resource_problem(resource: object) -> str | None:
    """Why the nucleus refuses ``resource``, or None when it accepts it."""
    if not isinstance(resource, str):
        return f"is a {type(resource).__name__}, not a string"
    if not resource:
        return "is empty"
    index = 0
    while index < len(resource):
        char = resource[index]
        if char == "$" and resource.startswith("${", index):
            body = resource[index : index + 4]
            if len(body) < 4 or body[3] != "}" or body[2] not in _ESCAPABLE:
                return (
                    f"has the invalid escape sequence '{resource[index : index + 4]}'; "
                    "only ${*}, ${?} and ${$} are escapes"
                )
            index += 4
            continue
        if char == "?":
            return "uses '?', which is not a wildcard here; write ${?} for a literal '?'"
        index += 1
    return None


def _tokens(resource: str, style: LookupStyle) -> list[tuple[_Kind, str]]:
    tokens: list[tuple[_Kind, str]] = []
    mqtt = style is LookupStyle.MQTT
    last = len(resource) - 1
    index = 0
    while index <= last:
        char = resource[index]
        if (
            char == "$"
            and resource.startswith("${", index)
            and index + 3 <= last
            and resource[index + 3] == "}"
            and resource[index + 2] in _ESCAPABLE
        ):
            tokens.append((_Kind.LITERAL, resource[index + 2]))
            index += 4
            continue
        starts_level = index == 0 or resource[index - 1] == "/"
        if char == "*":
            tokens.append((_Kind.STAR, char))
        elif (
            mqtt and char == "+" and starts_level and (index == last or resource[index + 1] == "/")
        ):
            tokens.append((_Kind.PLUS, char))
        elif mqtt and char == "#" and starts_level and index == last:
            tokens.append((_Kind.HASH, char))
        else:
            tokens.append((_Kind.LITERAL, char))
        index += 1
    return tokens


@functools.lru_cache(maxsize=2048)
def compile_resource(resource: str, style: LookupStyle) -> re.Pattern[str]:
    """The regular expression equivalent to a valid policy resource under ``style``."""
    tokens = _tokens(resource, style)
    if [kind for kind, _ in tokens] == [_Kind.HASH]:
        return re.compile(".*", re.DOTALL)
    parts: list[str] = []
    for position, (kind, text) in enumerate(tokens):
        if kind is _Kind.LITERAL:
            # A valid '#' tail swallows the '/' before it: "a/#" matches "a" and "a/...".
            if not (
                text == "/" and position + 1 < len(tokens) and tokens[position + 1][0] is _Kind.HASH
            ):
                parts.append(re.escape(text))
        elif kind is _Kind.STAR:
            parts.append(".*")
        elif kind is _Kind.PLUS:
            parts.append("[^/]*")
        else:
            parts.append("(?:/.*)?")
    return re.compile("".join(parts), re.DOTALL)


def resource_matches(pattern: str, resource: str, style: LookupStyle) -> bool:
    """Whether the valid policy resource ``pattern`` grants the requested ``resource``."""
    return compile_resource(pattern, style).fullmatch(resource) is not None


def is_catch_all(pattern: str, style: LookupStyle) -> bool:
    """Whether the valid resource ``pattern`` grants every resource (``*``, ``#``, ``+/#``)."""
    kinds = [kind for kind, _ in _tokens(pattern, style)]
    if kinds and all(kind is _Kind.STAR for kind in kinds):
        return True
    if kinds == [_Kind.HASH]:
        return True
    if len(kinds) >= 3 and kinds[-1] is _Kind.HASH and kinds[-2] is _Kind.LITERAL:
        head = kinds[:-2]  # the '/' before '#' is part of the optional tail
        return head == [_Kind.PLUS] or (bool(head) and all(k is _Kind.STAR for k in head))
    return False


def examples(pattern: str, style: LookupStyle) -> list[str]:
    """Requests that tell whether a matcher reads the valid ``pattern`` as documented: one it
    grants (each wildcard filled with a level of text), and for each ``*``, ``+`` or ``#`` the
    pattern holds literally, one it does not grant (that character replaced)."""
    tokens = _tokens(pattern, style)
    filled = {_Kind.STAR: "x", _Kind.PLUS: "x", _Kind.HASH: "x"}
    granted = "".join(filled.get(kind, text) for kind, text in tokens)
    probes = [granted] if granted else []
    for position, (kind, text) in enumerate(tokens):
        if kind is _Kind.LITERAL and text in "*+#":
            probes.append(
                "".join(
                    "Q" if i == position else filled.get(k, t) for i, (k, t) in enumerate(tokens)
                )
            )
    return probes


def uses_mqtt_wildcards(pattern: str) -> bool:
    """Whether ``pattern`` holds ``+`` or ``#`` that an MQTT-style lookup treats as wildcards."""
    return any(kind in (_Kind.PLUS, _Kind.HASH) for kind, _ in _tokens(pattern, LookupStyle.MQTT))
