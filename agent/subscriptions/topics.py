"""MQTT topic names and topic filters: syntax, AWS IoT limits, matching and overlap.

Syntax follows MQTT 3.1.1 §4.7 / MQTT 5.0 §4.7 (https://docs.oasis-open.org/mqtt/mqtt/v5.0/mqtt-v5.0.html):
``/`` separates levels, ``+`` matches exactly one whole level, ``#`` matches the parent level and
everything below it and must be the last level, and a filter starting with a wildcard does not
match topics starting with ``$`` (§4.7.2). Strings are UTF-8 without U+0000 (§1.5.4).

AWS IoT adds limits of its own (https://docs.aws.amazon.com/general/latest/gr/iot-core.html):
a topic or filter is at most 256 bytes and 7 slashes, both not counting the three mandatory levels
``$aws/rules/<rule-name>/`` of a Basic Ingest topic. What a topic name to publish on may be
(``topic_problem``, ``split_basic_ingest``) is checked in ``agent.config.names``, which the
configuration model validates ``healthTopic`` with.
"""

from __future__ import annotations

from agent.config.names import (
    MAX_TOPIC_BYTES,
    MAX_TOPIC_SLASHES,
    WILDCARDS,
    encoding_problem,
    split_basic_ingest,
)


def filter_problem(topic_filter: str) -> str | None:
    """Why ``topic_filter`` is not a valid MQTT topic filter, or None when it is."""
    problem = encoding_problem(topic_filter)
    if problem:
        return problem
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return "uses '#' other than as the whole last level (MQTT 3.1.1 §4.7.1.2)"
        if "+" in level and level != "+":
            return "uses '+' other than as a whole level (MQTT 3.1.1 §4.7.1.3)"
    return None


def aws_iot_limit_problem(topic: str) -> str | None:
    """Why AWS IoT Core would refuse ``topic`` (a name or a filter) by size or depth, or None.

    The Basic Ingest levels ``$aws/rules/<rule>/`` do not count (AWS IoT Core quotas, "Maximum
    number of slashes in topic and topic filter" and "Topic size").
    """
    _, counted = split_basic_ingest(topic)
    size = len(counted.encode("utf-8", "surrogatepass"))
    if size > MAX_TOPIC_BYTES:
        return f"is {size} bytes long; AWS IoT Core allows at most {MAX_TOPIC_BYTES}"
    slashes = counted.count("/")
    if slashes > MAX_TOPIC_SLASHES:
        return f"has {slashes} slashes; AWS IoT Core allows at most {MAX_TOPIC_SLASHES}"
    return None


def has_wildcard(topic_filter: str) -> bool:
    """True when the filter matches more than one topic name."""
    return any(level in WILDCARDS for level in topic_filter.split("/"))


def _dollar_excluded(filter_first: str, topic_first: str) -> bool:
    # MQTT 5.0 §4.7.2: a filter starting with a wildcard does not match a topic starting with $.
    return filter_first in WILDCARDS and topic_first.startswith("$")


def matches(topic_filter: str, topic: str) -> bool:
    """Whether the valid filter ``topic_filter`` matches the topic name ``topic``."""
    levels = topic_filter.split("/")
    names = topic.split("/")
    if _dollar_excluded(levels[0], names[0]):
        return False
    for index, level in enumerate(levels):
        if level == "#":
            return True  # also matches the parent level: "a/#" matches "a"
        if index >= len(names) or (level != "+" and level != names[index]):
            return False
    return len(levels) == len(names)


def overlaps(first: str, second: str) -> bool:
    """Whether some topic name is matched by both valid filters."""
    a, b = first.split("/"), second.split("/")
    if _dollar_excluded(a[0], b[0]) or _dollar_excluded(b[0], a[0]):
        return False
    for index in range(max(len(a), len(b))):
        x = a[index] if index < len(a) else None
        y = b[index] if index < len(b) else None
        if x == "#" or y == "#":
            # "#" also matches its parent level. When the other filter ends right here, the
            # common topics are the levels so far - and one empty level is the empty string,
            # which is no topic name (MQTT 5.0 section 4.7.3): "/#" and "+" share no topic.
            ends_here = (y if x == "#" else x) is None
            return not (ends_here and index == 1 and "" in (a[0], b[0]))
        if x is None or y is None:
            return False
        if x != y and x != "+" and y != "+":
            return False
    return True


def prefixed_filter(prefix: str, topic_filter: str) -> str:
    """A filter matching at least every ``prefix + t`` for a topic ``t`` matched by the filter.

    The MQTT bridge prepends ``targetTopicPrefix`` as plain text. When the prefix does not end
    with ``/`` it merges into the first level; a wildcard there then widens to ``+`` (or ``#``),
    so the result may match a little more than the bridge can produce, never less.
    """
    if not prefix or prefix.endswith("/"):
        return prefix + topic_filter
    first, sep, rest = topic_filter.partition("/")
    head, _, last = prefix.rpartition("/")
    merged = "#" if first == "#" else ("+" if first == "+" else last + first)
    if merged == "#":
        return (head + "/" if head or prefix.startswith("/") else "") + "#"
    return (head + "/" if "/" in prefix else "") + merged + sep + rest
