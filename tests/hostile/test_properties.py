"""Properties of the configuration loader and of the report folding, for any input.

Loader: whatever plain data or text arrives, the outcome is a valid AgentConfig or a
ConfigError/InputError naming a key path or the file — never another exception; an accepted
health topic obeys every AWS IoT limit; a valid configuration survives a dump/load round trip;
the later layer wins. Folding (agent/transports/sizing.py): every payload fits the limit, every
non-OK result survives with its status, the summary and status are the report's in every payload,
the OK results are all accounted for, and chunks are numbered 1..n under one sequence.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import AgentConfig, build_config, validate_publish_topic
from agent.config.files import MAX_JSON_DEPTH, InputError, load_yaml_text, loads_json
from agent.config.names import topic_problem
from agent.errors import ConfigError
from agent.report import CheckResult, HealthReport, Status
from agent.subscriptions.topics import aws_iot_limit_problem
from agent.transports.sizing import MAX_PAYLOAD_BYTES, TARGETS_SAMPLE, payloads

# --- the configuration loader --------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "componentName", "intervalSeconds", "healthTopic", "transport", "certificates",
        "warnDays", "criticalDays", "extraPaths", "caBundle", "s3", "buckets", "name", "access",
        "probePrefix", "requestTimeoutSeconds", "cycleBudgetSeconds", "subscriptions",
        "iotPolicyFile", "requiredTopics", "mqtt", "port", "spool", "maxBytes", "file", "path",
        "accessControl", "credentials", "source", "unknownKey",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["ipc", "file", "read", "write", "tes", "x509", "dt/a/b", "a/#", "\x00"]),
)
PLAIN = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)


@given(st.dictionaries(KEYS, PLAIN, max_size=6))
def test_any_plain_data_is_a_config_or_a_config_error(data: dict[str, Any]) -> None:
    try:
        config = build_config(data, source="--config x.yaml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("invalid --config x.yaml: ")
        assert "\n" not in message.strip() or len(message) < 100_000
        return
    assert isinstance(config, AgentConfig)
    validate_publish_topic(config.health_topic)  # whatever was accepted is publishable


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_is_data_or_an_input_error(text: str) -> None:
    try:
        load_yaml_text(text, origin="agent.yaml")
    except InputError as exc:
        assert str(exc).startswith("agent.yaml ")


@given(st.binary(max_size=300))
def test_any_bytes_are_json_or_a_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        loads_json(data)


@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[]", '{"a":}']))
def test_json_nesting_has_one_limit_whatever_the_recursion_limit(depth: int, pair: str) -> None:
    opening, closing = (pair[0], pair[1]) if pair == "[]" else ('{"a":', "}")
    leaf = "" if pair == "[]" else "1"
    text = opening * depth + leaf + closing * depth
    if depth > MAX_JSON_DEPTH:
        with pytest.raises(ValueError, match="too deeply"):
            loads_json(text)
    else:
        loads_json(text)


TOPIC_TEXT = st.lists(
    st.sampled_from(["a", "b", "/", "+", "#", "$", "\x00", "é", "{iot:thingName}", "$aws/rules/R/",
                     "x" * 40, "\ud800"]),
    max_size=24,
).map("".join) | st.text(max_size=300)  # fmt: skip


@given(TOPIC_TEXT)
def test_an_accepted_health_topic_obeys_every_aws_iot_limit(topic: str) -> None:
    try:
        validate_publish_topic(topic)
    except ValueError as exc:
        assert str(exc)
        return
    assert topic_problem(topic) is None
    assert aws_iot_limit_problem(topic) is None
    assert not topic.startswith("$") or topic.startswith("$aws/rules/")


VALID = st.fixed_dictionaries(
    {},
    optional={
        "intervalSeconds": st.integers(1, 7 * 24 * 3600),
        "healthTopic": st.from_regex(r"[a-z]{1,8}(/[a-z0-9]{1,8}){0,5}", fullmatch=True),
        "transport": st.sampled_from(["ipc", "mqtt", "stdout", "file"]),
        "certificates": st.fixed_dictionaries(
            {"warnDays": st.integers(0, 1000), "criticalDays": st.integers(0, 1000)},
            optional={"extraPaths": st.lists(st.from_regex(r"/[a-z]{1,10}", fullmatch=True))},
        ),
        "s3": st.fixed_dictionaries(
            {},
            optional={
                "buckets": st.lists(
                    st.fixed_dictionaries(
                        {
                            "name": st.from_regex(
                                r"[a-z0-9][a-z0-9-]{1,30}[a-z0-9]", fullmatch=True
                            ),
                            "access": st.sampled_from(["read", "write", "readwrite"]),
                        }
                    ),
                    max_size=3,
                ),
                "probePrefix": st.from_regex(r"[a-z]{1,10}/", fullmatch=True),
                "requestTimeoutSeconds": st.floats(0.1, 120),
            },
        ),
    },
)


@given(VALID)
def test_a_valid_config_survives_a_dump_and_load(data: dict[str, Any]) -> None:
    config = build_config(data)
    dumped = config.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert build_config(json.loads(json.dumps(dumped))) == config


@given(st.integers(1, 3600), st.integers(1, 3600), st.integers(0, 100), st.integers(0, 100))
def test_the_later_layer_wins_key_by_key(a: int, b: int, warn: int, crit: int) -> None:
    config = build_config(
        {"intervalSeconds": a, "certificates": {"warnDays": warn}},
        {"intervalSeconds": b, "certificates": {"criticalDays": crit}},
    )
    assert config.interval_seconds == b
    assert (config.certificates.warn_days, config.certificates.critical_days) == (warn, crit)


# --- report folding ------------------------------------------------------------------------------

IDS = st.sampled_from(
    ["certificate.validity", "certificate.readable", "s3.artifact", "subscription.policy_lint"]
)
WIDE_TEXT = st.one_of(
    st.text(max_size=40),
    st.integers(0, 40_000).map(lambda n: "é" * n),
    st.integers(0, 300_000).map(lambda n: "x" * n),
)
RESULT = st.builds(
    CheckResult,
    id=IDS,
    status=st.sampled_from(list(Status)),
    target=st.one_of(st.text(max_size=60), WIDE_TEXT),
    message=WIDE_TEXT,
    details=st.dictionaries(
        st.sampled_from(["reason", "days_left", "blob"]),
        st.one_of(st.text(max_size=20), st.integers(), WIDE_TEXT),
        max_size=3,
    ),
    remediation=st.one_of(st.none(), st.text(max_size=80)),
)


def _report(results: list[CheckResult], thing: str) -> HealthReport:
    return HealthReport.build(
        results,
        agent_version="0.1.0",
        thing_name=thing,
        generated_at="2026-11-29T18:00:00Z",
        sequence=17,
        duration_ms=1.0,
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(RESULT, max_size=30) | st.integers(0, 6000).map(lambda n: _many_ok(n)),
    st.one_of(st.just("pi-42"), st.integers(0, 400_000).map(lambda n: "t" * n)),
)
def test_folding_keeps_every_finding_within_the_payload_limit(
    results: list[CheckResult], thing: str
) -> None:
    report = _report(results, thing)
    parts = [json.loads(p) for p in _checked(report)]
    assert all(p["summary"] == report.summary for p in parts)
    assert all(p["status"] == report.status.value for p in parts)
    assert {p["sequence"] for p in parts} == {17}
    if len(parts) > 1:
        assert [p["chunk"] for p in parts] == [
            {"index": i, "total": len(parts)} for i in range(1, len(parts) + 1)
        ]
    published = [c for p in parts for c in p["checks"]]
    want = Counter((r.id, r.status.value) for r in report.checks if r.status is not Status.OK)
    got = Counter((c["id"], c["status"]) for c in published if c["status"] != "OK")
    assert got == want
    non_ok_targets = {r.target[:1024] for r in report.checks if r.status is not Status.OK}
    assert {c["target"][:1024] for c in published if c["status"] != "OK"} == non_ok_targets
    ok_total = sum(c["details"].get("count", 1) for c in published if c["status"] == "OK")
    assert ok_total == report.summary["OK"]
    for c in published:
        if "targets_sample" in c["details"]:
            assert len(c["details"]["targets_sample"]) <= TARGETS_SAMPLE


def _many_ok(count: int) -> list[CheckResult]:
    return [
        CheckResult("certificate.validity", Status.OK, f"/certs/client-{i:05}.pem", "valid", {})
        for i in range(count)
    ]


def _checked(report: HealthReport) -> list[bytes]:
    parts = payloads(report)
    assert parts
    assert all(len(p) <= MAX_PAYLOAD_BYTES for p in parts), [len(p) for p in parts]
    return parts


def test_a_huge_thing_name_still_fits() -> None:
    """Found by the property above: the header every chunk repeats could exceed the limit."""
    results = [CheckResult("agent.publish", Status.CRITICAL, "ipc", "x", {"reason": "r"}, "y")]
    report = _report(results, "t" * 300_000)
    (part,) = _checked(report)
    assert json.loads(part)["checks"][0]["status"] == "CRITICAL"
