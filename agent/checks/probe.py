"""``subscription.probe``: what the broker really allows, judged by PUBACK and SUBACK reason codes.

Over the transport's own connection (a second connection with the same client id would take
over the first, https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html):

* **publish on the health topic** — judged by the PUBACK of the real reports, so no extra
  message goes anywhere;
* **subscribe to each ``subscriptions.requiredTopics`` entry** — a QoS 1 SUBSCRIBE (at most 8
  filters per packet, the AWS IoT limit), unsubscribed at once.

No probe message is ever published: a PUBACK only judges the exact topic it was sent to, and
publishing on a required topic would reach its real subscribers (someone else's topic), while a
``<topic>/gghealth-probe`` sub-topic would judge a different resource than the one required.
NOT_AUTHORIZED (0x87) and filters the broker can never accept are CRITICAL (MQTT 5.0 sections
3.4.2.1 and 3.9.3); a probe that cannot be sent or answered is UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from agent.checks.base import CheckContext, SubscribeProbe, check, result
from agent.config.models import Transport
from agent.config.names import with_thing_name
from agent.errors import ProbeError
from agent.report import PUBACK_DELIVERED, CheckResult, Status
from agent.subscriptions import topics

CHECK_ID = "subscription.probe"
MAX_FILTERS_PER_SUBSCRIBE = 8
NEVER_ACCEPTED = {
    0x87: "NOT_AUTHORIZED",
    0x8F: "TOPIC_FILTER_INVALID",
    0x90: "TOPIC_NAME_INVALID",
    0x9E: "SHARED_SUBSCRIPTIONS_NOT_SUPPORTED",
    0xA2: "WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED",
}


def filter_problem(topic_filter: str) -> str | None:
    """Why ``topic_filter`` is not a valid AWS IoT topic filter (MQTT syntax and IoT limits)."""
    return topics.filter_problem(topic_filter) or topics.aws_iot_limit_problem(topic_filter)


def run_probes(
    source: SubscribeProbe,
    required_topics: Sequence[str],
    *,
    health_topic: str | None = None,
    health_puback: int | None = None,
    timeout_s: float = 5.0,
) -> list[CheckResult]:
    """One result per probed topic; see the module docstring for the verdicts."""
    out: list[CheckResult] = []
    if health_topic is not None and health_puback is not None:
        out.append(_publish_verdict(health_topic, health_puback))
    valid: list[str] = []
    for topic in dict.fromkeys(required_topics):  # de-duplicated, order kept
        problem = filter_problem(topic)
        if problem is None:
            valid.append(topic)
        else:
            out.append(
                result(
                    CHECK_ID,
                    Status.CRITICAL,
                    topic,
                    f"not a valid MQTT topic filter: {problem}",
                    "fix the entry in subscriptions.requiredTopics",
                    operation="subscribe",
                    reason="invalid_filter",
                )
            )
    for start in range(0, len(valid), MAX_FILTERS_PER_SUBSCRIBE):
        out += _subscribe_probe(source, valid[start : start + MAX_FILTERS_PER_SUBSCRIBE], timeout_s)
    return out


def _publish_verdict(topic: str, code: int) -> CheckResult:
    name = PUBACK_DELIVERED.get(code) or NEVER_ACCEPTED.get(code) or "reason"
    facts: dict[str, Any] = {"operation": "publish", "reason_code": code, "reason": name}
    if code in PUBACK_DELIVERED:
        return result(CHECK_ID, Status.OK, topic, f"publish accepted ({name})", **facts)
    if code == 0x87:
        return result(
            CHECK_ID,
            Status.CRITICAL,
            topic,
            "the broker refused the health report: PUBACK NOT_AUTHORIZED (0x87)",
            f"allow iot:Publish on topic/{topic} in the AWS IoT policy of the device certificate",
            **facts,
        )
    return result(
        CHECK_ID,
        Status.UNKNOWN,
        topic,
        f"the broker did not accept the health report: PUBACK 0x{code:02x}",
        "see the broker's log for the publish of this client",
        **facts,
    )


def _subscribe_probe(
    source: SubscribeProbe, filters: list[str], timeout_s: float
) -> list[CheckResult]:
    try:
        codes = source.probe_subscribe(filters, timeout_s)
    except ProbeError as exc:
        return [_unknown(f, str(exc), exc.reason) for f in filters]
    return [_subscribe_verdict(f, c) for f, c in zip(filters, codes, strict=True)]


def _subscribe_verdict(topic_filter: str, code: int) -> CheckResult:
    facts: dict[str, Any] = {"operation": "subscribe", "reason_code": code}
    if code < 0x80:
        return result(CHECK_ID, Status.OK, topic_filter, f"subscribe granted (QoS {code})", **facts)
    name = NEVER_ACCEPTED.get(code)
    if name is None:
        return result(
            CHECK_ID,
            Status.UNKNOWN,
            topic_filter,
            f"the broker refused the subscription with reason 0x{code:02x}",
            "see the broker's log; the probe is retried every cycle",
            **facts,
        )
    remediation = (
        f"allow iot:Subscribe on topicfilter/{topic_filter} (and iot:Receive on its topics) in "
        "the AWS IoT policy attached to the device certificate"
        if code == 0x87
        else "change the filter in subscriptions.requiredTopics to one the broker supports"
    )
    return result(
        CHECK_ID,
        Status.CRITICAL,
        topic_filter,
        f"the broker refused the subscription: SUBACK {name} (0x{code:02x})",
        remediation,
        reason=name,
        **facts,
    )


def _unknown(topic: str, message: str, reason: str) -> CheckResult:
    return result(
        CHECK_ID,
        Status.UNKNOWN,
        topic,
        message,
        "the probe runs again next cycle; check the agent.publish result for the connection",
        operation="subscribe",
        reason=reason,
    )


@check(CHECK_ID)
def probe_check(ctx: CheckContext) -> Iterable[CheckResult]:
    """Probes over the running MQTT transport's connection; nothing without one (``check``)."""
    source = ctx.probe_source
    if ctx.config.transport is not Transport.MQTT or not ctx.config.mqtt.probe or source is None:
        return []
    if not source.has_connected:
        # Not connected yet (the first cycle runs before the first publish): nothing verified,
        # nothing refused; agent.publish reports the connection itself.
        return []
    thing = ctx.thing_name
    required = [with_thing_name(t, thing) for t in ctx.config.subscriptions.required_topics]
    return run_probes(
        source,
        required,
        health_topic=source.topic,
        health_puback=source.last_health_puback,
    )
