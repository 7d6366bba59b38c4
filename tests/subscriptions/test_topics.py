"""MQTT topic syntax, AWS IoT limits, matching and overlap; property tests against references."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent.config.names import split_basic_ingest, topic_problem
from agent.subscriptions.topics import (
    aws_iot_limit_problem,
    filter_problem,
    has_wildcard,
    matches,
    overlaps,
    prefixed_filter,
)


@pytest.mark.parametrize(
    ("topic_filter", "fragment"),
    [
        ("sport/tennis/#", None),
        ("#", None),
        ("+", None),
        ("+/tennis/#", None),
        ("sport/+/player1", None),
        ("/finance", None),
        ("$aws/things/+/shadow/update", None),
        ("", "empty"),
        ("sport/tennis#", "'#'"),
        ("sport/tennis/#/ranking", "'#'"),
        ("sport+", "'+'"),
        ("sport/+tennis", "'+'"),
        ("a\x00b", "NUL"),
        ("a\ud800", "UTF-8"),
        ("x" * 65536, "65535"),
    ],
)
def test_filter_syntax_follows_mqtt_4_7(topic_filter: str, fragment: str | None) -> None:
    problem = filter_problem(topic_filter)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    ("topic", "ok"),
    [("dt/gghealth/pi-42/health", True), ("a/+/b", False), ("a/#", False), ("", False)],
)
def test_publish_topic_has_no_wildcards(topic: str, ok: bool) -> None:
    assert (topic_problem(topic) is None) is ok


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("a/b/c/d/e/f/g/h", None),  # 7 slashes
        ("a/b/c/d/e/f/g/h/i", "8 slashes"),
        ("$aws/rules/StatusUpdateRule/a/b/c/d/e/f/g/h", None),  # Basic Ingest levels are free
        ("$aws/rules/StatusUpdateRule/a/b/c/d/e/f/g/h/i", "8 slashes"),
        ("t" * 256, None),
        ("t" * 257, "257 bytes"),
        ("é" * 129, "258 bytes"),  # bytes, not characters
        ("$aws/rules/R/" + "t" * 256, None),
    ],
)
def test_aws_iot_topic_limits(topic: str, fragment: str | None) -> None:
    problem = aws_iot_limit_problem(topic)
    assert (problem is None) if fragment is None else (problem is not None and fragment in problem)


def test_basic_ingest_prefix_needs_a_rule_name() -> None:
    assert split_basic_ingest("$aws/rules/R/x") == ("$aws/rules/R/", "x")
    assert split_basic_ingest("$aws/rules/") == ("", "$aws/rules/")
    assert split_basic_ingest("dt/x") == ("", "dt/x")


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        # MQTT 3.1.1 §4.7.1.2 examples
        ("sport/tennis/player1/#", "sport/tennis/player1", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
        ("sport/#", "sport", True),
        # §4.7.1.3
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        # §4.7.2: wildcards at the first level do not match $ topics
        ("#", "$SYS/monitor/Clients", False),
        ("+/monitor/Clients", "$SYS/monitor/Clients", False),
        ("$SYS/#", "$SYS/monitor/Clients", True),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
        ("$aws/things/+/shadow/update", "$aws/things/pi-42/shadow/update", True),
        ("clients/+/hello/world", "clients/sensor-1/hello/world", True),
        ("a/b", "a/b/c", False),
    ],
)
def test_filter_matches_topic(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("clients/+/status", "clients/c1/#", True),
        ("clients/+/status", "clients/+/detections", False),
        ("a/#", "a", True),
        ("a/+", "a", False),
        ("#", "$aws/things/x", False),
        ("+/x", "$aws/x", False),
        ("#", "+", True),
        ("$aws/#", "$aws/things/+/shadow", True),
        ("a/b/c", "a/b", False),
    ],
)
def test_filter_overlap(first: str, second: str, expected: bool) -> None:
    assert overlaps(first, second) is expected
    assert overlaps(second, first) is expected


@pytest.mark.parametrize(
    ("prefix", "topic_filter", "expected"),
    [
        ("", "a/+", "a/+"),
        ("events/input/", "clients/+/detections", "events/input/clients/+/detections"),
        ("a-prefix", "topic/to/map", "a-prefixtopic/to/map"),
        ("a-prefix", "+/x", "+/x"),
        ("up/a-prefix", "+/x", "up/+/x"),
        ("up/a-prefix", "#", "up/#"),
        ("a-prefix", "#", "#"),
    ],
)
def test_prefixed_filter(prefix: str, topic_filter: str, expected: str) -> None:
    assert prefixed_filter(prefix, topic_filter) == expected


def test_has_wildcard_counts_whole_levels_only() -> None:
    assert has_wildcard("a/+/b") and has_wildcard("a/#")
    assert not has_wildcard("a/b")


# --- property tests against straightforward reference implementations -------------------------

LEVELS = ["a", "b", "$s", "", "+", "#"]
TOPIC_LEVELS = ["a", "b", "$s", "", "z"]


def reference_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching by translating the filter into a regular expression."""
    if topic_filter[0] in "+#" and topic.startswith("$"):
        return False
    levels = topic_filter.split("/")
    if levels == ["#"]:
        return True
    body = "/".join("[^/]*" if lv == "+" else re.escape(lv) for lv in levels if lv != "#")
    regex = body + ("(/.*)?" if levels[-1] == "#" else "")
    return re.fullmatch(regex, topic, re.DOTALL) is not None


filters = (
    st.lists(st.sampled_from(LEVELS), min_size=1, max_size=4)
    .filter(lambda ls: "#" not in ls[:-1])
    .map("/".join)
    .filter(bool)
)
topics = st.lists(st.sampled_from(TOPIC_LEVELS), min_size=1, max_size=5).map("/".join).filter(bool)
UNIVERSE = [
    "/".join(levels)
    for size in range(1, 6)
    for levels in itertools.product(TOPIC_LEVELS, repeat=size)
    if "/".join(levels)
]


@given(filters, topics)
def test_matches_agrees_with_regex_reference(topic_filter: str, topic: str) -> None:
    assert filter_problem(topic_filter) is None
    assert matches(topic_filter, topic) is reference_matches(topic_filter, topic)


@given(filters, filters)
@example("/#", "+")  # "#" matching its parent level would leave the empty topic: no overlap
def test_overlaps_agrees_with_brute_force(first: str, second: str) -> None:
    witness = any(reference_matches(first, t) and reference_matches(second, t) for t in UNIVERSE)
    assert overlaps(first, second) is witness


@given(st.sampled_from(["", "p/", "p", "x/p", "$aws/rules/R/"]), filters, topics)
def test_prefixed_filter_never_misses_a_bridged_topic(
    prefix: str, topic_filter: str, topic: str
) -> None:
    if matches(topic_filter, topic):
        assert reference_matches(prefixed_filter(prefix, topic_filter), prefix + topic)
