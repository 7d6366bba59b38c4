"""The names a configuration holds that AWS must accept: MQTT topic names and S3 bucket names.

Pure validation, shared by the configuration model (which refuses a bad ``healthTopic`` or bucket
when it is read) and the rules (``agent.subscriptions.topics``, the S3 client) that build on them.

Topic syntax follows MQTT 3.1.1 §4.7 / MQTT 5.0 §4.7: strings are UTF-8 without U+0000 (§1.5.4),
``+`` and ``#`` are wildcards no topic name may hold. AWS IoT limits a topic to 256 bytes and 7
slashes, not counting the three levels ``$aws/rules/<rule-name>/`` of a Basic Ingest topic:
https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits
"""

from __future__ import annotations

import re

MAX_TOPIC_BYTES = 256
MAX_TOPIC_SLASHES = 7
MQTT_MAX_TOPIC_BYTES = 65535
"""MQTT encodes a topic with a two-byte length (MQTT 3.1.1 §1.5.3)."""
BASIC_INGEST_PREFIX = "$aws/rules/"
WILDCARDS = ("+", "#")
THING_NAME_VARIABLE = "{iot:thingName}"
"""The recipe variable the nucleus (and the agent, in ``healthTopic``) replaces by the thing."""

# S3 bucket naming rules, with the legacy us-east-1 allowances (upper case, underscores, 255):
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")


def with_thing_name(text: str, thing_name: str | None) -> str:
    """``text`` with the recipe variable ``{iot:thingName}`` replaced, when a name is given."""
    if thing_name is None:
        return text
    return text.replace(THING_NAME_VARIABLE, thing_name)


def encoding_problem(text: str) -> str | None:
    """Why ``text`` cannot be an MQTT topic or filter at all (empty, NUL, not UTF-8, too long)."""
    if not text:
        return "is empty (MQTT topics and filters are at least one character long)"
    if "\x00" in text:
        return "contains the NUL character U+0000, which MQTT forbids (MQTT 3.1.1 §1.5.3)"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8 (it holds a lone surrogate code point)"
    if size > MQTT_MAX_TOPIC_BYTES:
        return f"is {size} bytes long; MQTT allows at most {MQTT_MAX_TOPIC_BYTES}"
    return None


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` is not a valid topic name to publish on, or None when it is."""
    problem = encoding_problem(topic)
    if problem:
        return problem
    if any(w in topic for w in WILDCARDS):
        return "contains a wildcard ('+' or '#'), which a topic name to publish on must not"
    return None


def split_basic_ingest(topic: str) -> tuple[str, str]:
    """``($aws/rules/<rule>/, rest)`` for a Basic Ingest topic, else ``("", topic)``."""
    if topic.startswith(BASIC_INGEST_PREFIX):
        rule, sep, rest = topic[len(BASIC_INGEST_PREFIX) :].partition("/")
        if sep and rule:
            return BASIC_INGEST_PREFIX + rule + "/", rest
    return "", topic


def validate_publish_topic(topic: str) -> str:
    """Reject a topic AWS IoT would refuse to publish on (no wildcards, size and depth limits).

    MQTT forbids U+0000 in topics (MQTT 5.0 section 1.5.4); ``$`` topics are reserved by AWS IoT
    (https://docs.aws.amazon.com/iot/latest/developerguide/reserved-topics.html) except Basic
    Ingest ``$aws/rules/<rule>/...``, whose three leading levels do not count toward the limits.
    """
    if not topic:
        raise ValueError("must not be empty")
    if "\x00" in topic:
        raise ValueError("must not contain the NUL character (MQTT forbids U+0000)")
    if "+" in topic or "#" in topic:
        raise ValueError("a publish topic must not contain the MQTT wildcards + or #")
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid UTF-8 (it holds a lone surrogate)") from None
    ingest, counted = split_basic_ingest(topic)
    if topic.startswith("$") and not ingest:
        raise ValueError(
            "topics starting with '$' are reserved by AWS IoT; only Basic Ingest "
            "'$aws/rules/<rule>/...' may carry the report"
        )
    size = len(counted.encode("utf-8"))
    if size > MAX_TOPIC_BYTES:
        raise ValueError(f"longer than {MAX_TOPIC_BYTES} bytes")
    if counted.count("/") > MAX_TOPIC_SLASHES:
        raise ValueError(f"more than {MAX_TOPIC_SLASHES} slashes (AWS IoT limit)")
    problem = topic_problem(topic)  # and whatever else MQTT itself forbids
    if problem:
        raise ValueError(problem)
    return topic


def valid_bucket_name(bucket: str) -> bool:
    """Whether S3 would accept ``bucket`` as a bucket name."""
    return bool(_BUCKET_RE.fullmatch(bucket)) and ".." not in bucket
