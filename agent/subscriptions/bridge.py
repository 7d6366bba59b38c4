"""Audit of the MQTT bridge's ``mqttTopicMapping`` (``aws.greengrass.clientdevices.mqtt.Bridge``).

Each mapping relays messages on ``topic`` (a filter) from ``source`` to ``target`` (LocalMqtt,
Pubsub or IotCore, matched case-insensitively) under ``targetTopicPrefix`` + the message topic.
The bridge binds the whole map at once: one mapping it cannot bind stops every mapping
(aws-greengrass-mqtt-bridge ``BridgeConfig.getTopicMapping``). The bridge subscribes to AWS IoT
Core through the nucleus without no-local, so a mapping that sends a topic up and another that
brings the same topic down echo every message, and loop when the echo matches the first filter
again. https://docs.aws.amazon.com/greengrass/v2/developerguide/mqtt-bridge-component.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.config.names import BASIC_INGEST_PREFIX
from agent.report import Finding, Status, Verdict
from agent.subscriptions.topics import (
    aws_iot_limit_problem,
    filter_problem,
    overlaps,
    prefixed_filter,
)

BRIDGE_COMPONENT = "aws.greengrass.clientdevices.mqtt.Bridge"
TOPIC_TYPES = {"localmqtt": "LocalMqtt", "pubsub": "Pubsub", "iotcore": "IotCore"}
_CATCH_ALL = ("#", "+/#")
_DOC = "https://docs.aws.amazon.com/greengrass/v2/developerguide/mqtt-bridge-component.html"


@dataclass(frozen=True)
class _Route:
    mapping_id: str
    topic: str
    source: str
    target: str
    prefix: str
    no_local: bool


def _field(entry: Mapping[Any, Any], name: str) -> Any:
    for key, value in entry.items():
        if str(key).lower() == name.lower():  # the bridge binds keys case-insensitively
            return value
    return None


def _no_local(configuration: Mapping[str, Any], mapping_id: str) -> bool:
    mqtt = configuration.get("mqtt")
    version = str(mqtt.get("version", "mqtt3")) if isinstance(mqtt, Mapping) else "mqtt3"
    options = configuration.get("mqtt5RouteOptions")
    route = options.get(mapping_id) if isinstance(options, Mapping) else None
    # Route options only apply when the bridge speaks MQTT 5 to the local broker.
    return (
        version.lower() == "mqtt5"
        and isinstance(route, Mapping)
        and str(_field(route, "noLocal")).lower() == "true"
    )


def audit_bridge(configuration: Mapping[str, Any]) -> list[Verdict]:
    """One verdict per mapping of the bridge ``configuration`` (none when nothing is mapped)."""
    mappings = configuration.get("mqttTopicMapping")
    if mappings is None or mappings == {}:
        return []
    if not isinstance(mappings, Mapping):
        return [
            Verdict(
                "mqttTopicMapping",
                "",
                (
                    Finding(
                        Status.CRITICAL,
                        "malformed_mapping",
                        f"mqttTopicMapping is a {type(mappings).__name__}, not a mapping of id to "
                        "{topic, source, target}; the bridge does not start",
                        f"give mqttTopicMapping as an object of mappings ({_DOC})",
                    ),
                ),
            )
        ]
    routes: dict[str, _Route] = {}
    findings: dict[str, list[Finding]] = {}
    for raw_id, entry in mappings.items():
        mapping_id = str(raw_id)
        route, problems = _parse(mapping_id, entry, configuration)
        findings[mapping_id] = problems
        if route is not None:
            routes[mapping_id] = route
            findings[mapping_id].extend(_limits(route))
    _echoes(routes, findings)
    return [_verdict(mid, routes.get(mid), found) for mid, found in findings.items()]


def _parse(
    mapping_id: str, entry: Any, configuration: Mapping[str, Any]
) -> tuple[_Route | None, list[Finding]]:
    stop = "; the bridge rejects the whole mqttTopicMapping and relays nothing"
    if not isinstance(entry, Mapping):
        return None, [
            Finding(
                Status.CRITICAL,
                "malformed_mapping",
                f"is not a mapping of topic/source/target{stop}",
                f"define the mapping as {{topic, source, target}} ({_DOC})",
            )
        ]
    found: list[Finding] = []
    topic = _field(entry, "topic")
    problem = (
        "is missing"
        if topic is None
        else ("is not text" if not isinstance(topic, str) else filter_problem(topic))
    )
    if problem:
        found.append(
            Finding(
                Status.CRITICAL,
                "bad_topic_filter",
                f"topic {problem}",
                "set topic to a valid MQTT topic filter",
            )
        )
    ends: dict[str, str] = {}
    for end in ("source", "target"):
        value = _field(entry, end)
        kind = TOPIC_TYPES.get(str(value).lower()) if isinstance(value, str) else None
        if kind is None:
            what = (
                "is missing" if value is None else f"'{value}' is not LocalMqtt, Pubsub or IotCore"
            )
            found.append(
                Finding(
                    Status.CRITICAL,
                    f"bad_{end}",
                    f"{end} {what}{stop}",
                    f"set {end} to LocalMqtt, Pubsub or IotCore",
                )
            )
        else:
            ends[end] = kind
    if len(ends) == 2 and ends["source"] == ends["target"]:
        found.append(
            Finding(
                Status.CRITICAL,
                "same_source_and_target",
                f"source and target are both {ends['source']}: the mapping would "
                "republish every message to itself",
                "make source and target different brokers",
            )
        )
    prefix = _field(entry, "targetTopicPrefix")
    if prefix is not None and not isinstance(prefix, str):
        found.append(
            Finding(
                Status.CRITICAL,
                "bad_prefix",
                "targetTopicPrefix is not text",
                "set targetTopicPrefix to plain topic text, e.g. 'events/input/'",
            )
        )
        prefix = None
    elif prefix and ("+" in prefix or "#" in prefix):
        found.append(
            Finding(
                Status.CRITICAL,
                "bad_prefix",
                f"targetTopicPrefix '{prefix}' holds an MQTT wildcard, so no "
                "message can be published under it",
                "remove '+' and '#' from targetTopicPrefix",
            )
        )
    if found:
        return None, found
    return _Route(
        mapping_id,
        str(topic),
        ends["source"],
        ends["target"],
        prefix or "",
        _no_local(configuration, mapping_id),
    ), found


def _limits(route: _Route) -> list[Finding]:
    found: list[Finding] = []
    if route.target == "IotCore":
        # The shortest topic the mapping can publish: wildcard levels empty, '/#' gone.
        shortest = (route.prefix + route.topic).replace("+", "")
        shortest = shortest[:-2] if shortest.endswith("/#") else shortest.rstrip("#")
        problem = aws_iot_limit_problem(shortest)
        if problem:
            found.append(
                Finding(
                    Status.CRITICAL,
                    "iot_topic_limit",
                    f"the AWS IoT Core topic '{route.prefix}{route.topic}' {problem}, "
                    "so AWS IoT Core rejects every message it bridges",
                    "shorten targetTopicPrefix or the topic (<= 256 bytes, <= 7 "
                    "slashes not counting $aws/rules/<rule>/)",
                )
            )
        if route.topic in _CATCH_ALL:
            found.append(
                Finding(
                    Status.WARNING,
                    "catch_all_to_cloud",
                    f"bridges every {route.source} topic ('{route.topic}') to AWS IoT "
                    "Core: all local traffic leaves the device and is billed",
                    "map only the topics the cloud needs, e.g. 'clients/+/telemetry'",
                )
            )
    if route.source == "IotCore":
        problem = aws_iot_limit_problem(route.topic)
        if route.topic.startswith(BASIC_INGEST_PREFIX):
            problem = "is a Basic Ingest topic, which cannot be subscribed to"
        if problem:
            found.append(
                Finding(
                    Status.CRITICAL,
                    "iot_topic_limit",
                    f"the AWS IoT Core subscription '{route.topic}' {problem}",
                    "subscribe to a topic filter AWS IoT Core accepts",
                )
            )
    return found


def _echoes(routes: dict[str, _Route], findings: dict[str, list[Finding]]) -> None:
    ups = [r for r in routes.values() if r.source == "LocalMqtt" and r.target == "IotCore"]
    downs = [r for r in routes.values() if r.source == "IotCore" and r.target == "LocalMqtt"]
    for up in ups:
        sent = prefixed_filter(up.prefix, up.topic)
        for down in downs:
            if not overlaps(sent, down.topic):
                continue
            loops = not up.no_local and overlaps(prefixed_filter(down.prefix, down.topic), up.topic)
            tail = (
                f", and '{up.mapping_id}' sends the echo up again: an endless loop" if loops else ""
            )
            message = (
                f"'{up.mapping_id}' sends '{sent}' to AWS IoT Core and '{down.mapping_id}' "
                f"subscribes to '{down.topic}' there, so every message comes back to the "
                f"local broker (the bridge does not set no-local on AWS IoT Core){tail}"
            )
            fix = (
                "use disjoint topics for the two directions (e.g. 'up/...' and 'down/...'), "
                "or a targetTopicPrefix that takes the bridged topic out of the other filter"
            )
            for route in (up, down):
                findings[route.mapping_id].append(
                    Finding(Status.WARNING, "echo_loop" if loops else "echo", message, fix)
                )


def _verdict(mapping_id: str, route: _Route | None, found: list[Finding]) -> Verdict:
    details: dict[str, Any] = {"mapping": mapping_id}
    ok = ""
    if route is not None:
        details.update(
            topic=route.topic,
            source=route.source,
            target=route.target,
            target_topic_prefix=route.prefix,
        )
        ok = f"{route.source} -> {route.target} on '{route.topic}'" + (
            f" (prefix '{route.prefix}')" if route.prefix else ""
        )
    return Verdict(mapping_id, ok, tuple(found), details)
