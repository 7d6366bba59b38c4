"""Greengrass IPC resource matching, table-driven on the nucleus's documented behaviour.

The expectations are those of aws-greengrass-nucleus ``WildcardTrie`` (MQTT-style lookups for
``aws.greengrass.ipc.mqttproxy``, standard lookups for the other services) and of
``AuthorizationModule.validateResource``; a property test compares the matcher with a plain
backtracking reference that implements the same rules independently.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config.names import with_thing_name
from agent.subscriptions.ipc_resources import (
    is_catch_all,
    resource_matches,
    resource_problem,
    uses_mqtt_wildcards,
)
from agent.subscriptions.ipc_services import LookupStyle

MQTT, STANDARD = LookupStyle.MQTT, LookupStyle.STANDARD


@pytest.mark.parametrize(
    ("pattern", "resource", "style", "expected"),
    [
        # '*' matches any run of characters, '/' included, in both styles
        ("abc*xy*z", "abc123xyabc!@/<>#$%^&*()_+-=z", STANDARD, True),
        ("abc*xy*z", "abcxyz", MQTT, True),
        ("abc*xy*z", "abc123xy90zABCzz0", STANDARD, False),
        ("abc*xy*z", "", MQTT, False),
        ("ab/*/c", "ab/1/3/2/c", STANDARD, True),
        ("ab/*/c", "ab/1/34/2/c/", MQTT, False),
        ("*wer", "123werX", STANDARD, False),
        ("*", "9999/88", STANDARD, True),
        ("**/abc", "7/8/abc", MQTT, True),
        ("*qwe*90*", "789qwe-+9qwe-+90ABC", STANDARD, True),
        # '#' as the whole last level: parent level and everything below (mqttproxy only)
        ("abc/#", "abc", MQTT, True),
        ("abc/#", "abc/", MQTT, True),
        ("abc/#", "abc/4/5/6", MQTT, True),
        ("abc/#", "abcd/e/f123/4/5/6", MQTT, False),
        ("abc/#", "abc/1/2/3", STANDARD, False),
        ("abc/#", "abc/#", STANDARD, True),
        ("#", "asdu76/asdas/23", MQTT, True),
        ("#", "asdu76/asdas/23", STANDARD, False),
        ("/#", "", MQTT, True),
        ("/#", "/a/b/c/d/e", MQTT, True),
        ("/#", "a/b/c/d", MQTT, False),
        # '#' anywhere else is a literal character
        ("w/qqq#", "w/qqq/e/r", MQTT, False),
        ("w/qqq#", "w/qqq#", MQTT, True),
        ("12/#/", "12/4/5/6", MQTT, False),
        ("##", "##", MQTT, True),
        ("123/#/xyz/#", "123/#/xyz/1/2/345", MQTT, True),
        ("123/#/xyz/#", "123/4/5/6/xyz/abc", MQTT, False),
        ("#/zzz/45", "x/zzz/45", MQTT, False),
        # '+' as a whole level matches exactly one level, possibly empty
        ("abc/+/123", "abc/def/123", MQTT, True),
        ("abc/+/123", "abc/def/g/123", MQTT, False),
        ("abc/+/123", "abc/def/123", STANDARD, False),
        ("xyz/+/abcd/+/1", "xyz/ghj/abcd//1", MQTT, True),
        ("89/+/+/+/90", "89/1/2//90", MQTT, True),
        ("89/+/+/+/90", "89/1/2/90", MQTT, False),
        ("+", "abc", MQTT, True),
        ("+", "/123", MQTT, False),
        ("+/+", "/123", MQTT, True),
        ("ax/qwe+/123", "ax/qwert/123", MQTT, False),
        ("12/+23", "12/x23", MQTT, False),
        ("/+/++", "/zz/++", MQTT, True),
        ("/+/++", "/33/ty", MQTT, False),
        # wildcards combined
        ("xyz*/+/*room/#", "xyzzzz/89/fan2/bedroom/light/5", MQTT, True),
        ("12/*#", "12/34/5#", MQTT, True),
        ("12/*#", "12/45/67", MQTT, False),
        ("x*ui/+/#", "xyz/zz34ui/matchPlus/23", MQTT, True),
        ("x*ui/+/#", "xyzzz34", MQTT, False),
        ("a/+/+/#/+", "a/b/c/#/d", MQTT, True),
        ("a/+/+/#/+", "a/b/c/d/e", MQTT, False),
        ("abc*/#", "abc123", MQTT, True),
        ("a/*bc/#", "a/xyzbc/nt/bc", MQTT, True),
        ("a/+/#", "a", MQTT, False),
        ("a/+/#", "a/", MQTT, True),
        # the fixture's mqttproxy policy: A/+/C/D* and X/Y*Z/#
        ("A/+/C/D*", "A/B/C/D", MQTT, True),
        ("A/+/C/D*", "A/B/C/Dxyz/w", MQTT, True),
        ("A/+/C/D*", "A/B/B/C/D", MQTT, False),
        ("X/Y*Z/#", "X/YabcZ", MQTT, True),
        ("X/Y*Z/#", "X/Y/a/Z/b/c", MQTT, True),
        # escapes ${*} ${?} ${$}
        ("acv/rt${*}mk", "acv/rt*mk", STANDARD, True),
        ("acv/rt${*}mk", "acv/rt123mk", STANDARD, False),
        ("acv/rt${*}mk", "acv/rt${*}mk", MQTT, False),
        ("${$}/begin", "$/begin", STANDARD, True),
        ("end/${?}", "end/?", MQTT, True),
        ("acv/rt${$}{*}mk", "acv/rt${abc/123/=-_+}mk", STANDARD, True),
        ("${*}", "*", MQTT, True),
        ("${*}", "*ab", STANDARD, False),
        ("456$*", "456$123/abc", STANDARD, True),
        ("$aws/things/+/tunnels/notify", "$aws/things/pi-42/tunnels/notify", MQTT, True),
    ],
)
def test_matching_as_the_nucleus_does(
    pattern: str, resource: str, style: LookupStyle, expected: bool
) -> None:
    assert resource_problem(pattern) is None
    assert resource_matches(pattern, resource, style) is expected


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        ("abc${", "invalid escape"),
        ("qwe${ca}", "invalid escape"),
        ("a/${c}", "invalid escape"),
        ("topic?", "'?'"),
        ("", "empty"),
        (7, "int"),
    ],
)
def test_resources_the_nucleus_refuses(resource: object, fragment: str) -> None:
    problem = resource_problem(resource)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize("resource", ["${?}", "${*}", "${$}x", "456$*", "$aws/things/x", "a{b}"])
def test_resources_the_nucleus_accepts(resource: str) -> None:
    assert resource_problem(resource) is None


@pytest.mark.parametrize(
    ("pattern", "style", "expected"),
    [
        ("*", MQTT, True),
        ("**", STANDARD, True),
        ("#", MQTT, True),
        ("#", STANDARD, False),
        ("+/#", MQTT, True),
        ("*/#", MQTT, True),
        ("/#", MQTT, False),
        ("+", MQTT, False),
        ("a/#", MQTT, False),
        ("${*}", STANDARD, False),
    ],
)
def test_catch_all(pattern: str, style: LookupStyle, expected: bool) -> None:
    assert is_catch_all(pattern, style) is expected


def test_mqtt_wildcards_only_where_valid() -> None:
    assert uses_mqtt_wildcards("/topic/1/#")
    assert uses_mqtt_wildcards("a/+/b")
    assert not uses_mqtt_wildcards("a+b/c#")


def test_thing_name_variable() -> None:
    assert with_thing_name("things/{iot:thingName}/x", "pi-42") == "things/pi-42/x"
    assert with_thing_name("things/{iot:thingName}/x", None) == "things/{iot:thingName}/x"


# --- property test against an independent backtracking reference -----------------------------


def _reference_tokens(pattern: str, mqtt: bool) -> list[str]:
    """Tokens: 'L<c>' literal, '*', '+', '#' (which also absorbs the '/' before it)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i : i + 2] == "${" and len(pattern) >= i + 4 and pattern[i + 3] == "}":
            out.append("L" + pattern[i + 2])
            i += 4
            continue
        c = pattern[i]
        before = pattern[i - 1] if i else "/"
        after = pattern[i + 1] if i + 1 < len(pattern) else "/"
        if c == "*":
            out.append("*")
        elif mqtt and c == "+" and before == "/" and after == "/":
            out.append("+")
        elif mqtt and c == "#" and before == "/" and i == len(pattern) - 1:
            if out and out[-1] == "L/":
                out.pop()
            out.append("#")
        else:
            out.append("L" + c)
        i += 1
    return out


def reference_matches(pattern: str, resource: str, mqtt: bool) -> bool:
    if mqtt and pattern == "#":
        return True
    tokens = _reference_tokens(pattern, mqtt)

    @functools.cache
    def walk(t: int, r: int) -> bool:
        if t == len(tokens):
            return r == len(resource)
        token = tokens[t]
        if token == "*":
            return any(walk(t + 1, k) for k in range(r, len(resource) + 1))
        if token == "+":
            k = r
            while True:
                if walk(t + 1, k):
                    return True
                if k == len(resource) or resource[k] == "/":
                    return False
                k += 1
        if token == "#":
            return r == len(resource) or resource[r] == "/"
        return r < len(resource) and resource[r] == token[1] and walk(t + 1, r + 1)

    return walk(0, 0)


patterns = (
    st.lists(
        st.sampled_from(["a", "b", "/", "*", "+", "#", "$", "{", "}", "${*}", "${$}", "${?}"]),
        max_size=8,
    )
    .map("".join)
    .filter(lambda p: resource_problem(p) is None)
)
resources = st.lists(
    st.sampled_from(["a", "b", "/", "*", "+", "#", "$", "{", "}", "?"]), min_size=1, max_size=8
).map("".join)


@given(patterns, resources, st.sampled_from([MQTT, STANDARD]))
def test_matcher_agrees_with_reference(pattern: str, resource: str, style: LookupStyle) -> None:
    expected = reference_matches(pattern, resource, style is MQTT)
    assert resource_matches(pattern, resource, style) is expected


UNIVERSE = ["a", "/", "a/b", "/a", "a/", "$x", "a/b/c", "*", "#", "+"]


@given(st.lists(st.sampled_from(["*", "+", "/", "#", "a"]), min_size=1, max_size=5).map("".join))
def test_catch_all_means_every_resource(pattern: str) -> None:
    everything = all(resource_matches(pattern, r, MQTT) for r in UNIVERSE)
    assert is_catch_all(pattern, MQTT) is everything
