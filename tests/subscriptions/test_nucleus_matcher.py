"""IPC authorization held to the real nucleus: its answers, its quirks, its version rules.

The oracle is ``shared/fixtures/nucleus-authorization/cases.tsv``: 4,000 requests answered by the
nucleus's own classes. ``tests/data/nucleus-trie/`` adds answers of the same Java classes for
large policies and the Java collection orders the port reproduces (see its README).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.subscriptions.authorization import (
    index_access_control,
    index_services,
    is_authorized,
)
from agent.subscriptions.ipc_lint import lint_access_control
from agent.subscriptions.ipc_resources import resource_matches
from agent.subscriptions.ipc_services import (
    MQTT_PROXY,
    PUB_SUB,
    PUBLISH_TO_IOT_CORE,
    PUBLISH_TO_TOPIC,
    TOKEN_EXCHANGE,
    LookupStyle,
)
from agent.subscriptions.java_order import (
    ConcurrentMapOrder,
    case_insensitive_key,
    hash_set_order,
)
from agent.subscriptions.nucleus_trie import WildcardTrie
from tests.conftest import REPO, SHARED_FIXTURES
from tests.subscriptions.conftest import EFFECTIVE, RECIPES, load_data

ORACLE = SHARED_FIXTURES / "nucleus-authorization" / "cases.tsv"
TRIE_CASES = REPO / "tests" / "data" / "nucleus-trie" / "cases.tsv"
JAVA_ORDERS = REPO / "tests" / "data" / "nucleus-trie" / "java-orders.tsv"

SERVICE_OF = {"S": (PUB_SUB, PUBLISH_TO_TOPIC), "M": (MQTT_PROXY, PUBLISH_TO_IOT_CORE)}
STYLE_OF = {"S": LookupStyle.STANDARD, "M": LookupStyle.MQTT}


def cases(path: Path) -> Iterator[tuple[str, str, str, bool, list[str]]]:
    """id, lookup style, request, the nucleus's answer, the policy's resources."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        case_id, style, request, answer, *resources = line.split("\t")
        yield case_id, style, request, answer == "1", resources


def one_policy(style: str, resources: list[str]) -> dict[str, Any]:
    service, operation = SERVICE_OF[style]
    return {"c": {service: {"p": {"operations": [operation], "resources": resources}}}}


def test_every_oracle_answer_is_the_nucleus_answer() -> None:
    wrong = []
    differs_from_documentation = 0
    total = 0
    for case_id, style, request, allowed, resources in cases(ORACLE):
        total += 1
        service, operation = SERVICE_OF[style]
        decision = is_authorized(one_policy(style, resources), "c", service, operation, request)
        if decision.allowed != allowed:
            wrong.append((case_id, style, request, allowed, resources))
        documented = any(resource_matches(r, request, STYLE_OF[style]) for r in resources)
        # Where the device departs from the documentation, the answer says so, and only there.
        departs = documented != allowed and request.strip() != ""
        assert (decision.quirk is not None) == departs, (case_id, decision)
        differs_from_documentation += departs
    assert total == 4000
    assert wrong == [], f"{len(wrong)} answers differ from the nucleus, e.g. {wrong[:5]}"
    # The oracle holds the quirks of the issue (89 cases where a documented matcher is wrong).
    assert differs_from_documentation >= 80


def test_large_policies_match_the_java_trie_in_the_order_added() -> None:
    answers = [
        (case_id, WildcardTrie.of(resources).matches(request, STYLE_OF[style]) == allowed)
        for case_id, style, request, allowed, resources in cases(TRIE_CASES)
    ]
    assert len(answers) > 1500
    assert [case_id for case_id, right in answers if not right] == []


def test_java_collection_orders() -> None:
    lines = JAVA_ORDERS.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 600
    for line in lines:
        given, answered = line.split("\x02")
        items = given.split("\t")
        hash_set, tree_map, concurrent = (part.split("\t") for part in answered.split("\x01"))
        assert hash_set_order(items) == hash_set, given
        first_of: dict[tuple[int, ...], str] = {}
        for item in items:
            first_of.setdefault(case_insensitive_key(item), item)
        assert [first_of[k] for k in sorted(first_of)] == tree_map, given
        chm: ConcurrentMapOrder[int] = ConcurrentMapOrder(int)
        for item in items:
            chm.get(item)
        assert [k for k, _ in chm.items()] == concurrent, given


@pytest.mark.parametrize(
    ("resources", "request_", "allowed", "says"),
    [
        # Patterns sharing trie nodes lose a match the documentation promises.
        (["dt/*/health", "dt/*th*/x"], "dt/pi-42/health", False, "loses this match"),
        (["dt/*/health"], "dt/pi-42/health", True, None),
        # An escape before a later wildcard becomes a wildcard.
        (["a/${*}/#"], "a/x/y", True, "grants 'a/x/y' although"),
        (["a/${*}/#"], "a/*/y", True, None),
        # A literal '+' beside another pattern's '+' wildcard becomes one.
        (["+/y", "+x"], "zx", True, "none of"),
    ],
)
def test_quirks_are_answered_as_the_device_does_and_named(
    resources: list[str], request_: str, allowed: bool, says: str | None
) -> None:
    decision = is_authorized(
        one_policy("M", resources), "c", MQTT_PROXY, PUBLISH_TO_IOT_CORE, request_
    )
    assert decision.allowed is allowed
    if says is None:
        assert decision.quirk is None
    else:
        assert decision.quirk is not None and says in decision.quirk


def test_blank_resources_are_neither_granted_nor_requested() -> None:
    policy = one_policy("S", ["  ", "*"])
    assert not is_authorized(policy, "c", PUB_SUB, PUBLISH_TO_TOPIC, " ").allowed
    assert not is_authorized(policy, "c", PUB_SUB, PUBLISH_TO_TOPIC, "\u00a0").allowed
    assert is_authorized(policy, "c", PUB_SUB, PUBLISH_TO_TOPIC, "\t").allowed  # not a space char
    blank_only = one_policy("S", [" "])
    assert not is_authorized(blank_only, "c", PUB_SUB, PUBLISH_TO_TOPIC, " ").allowed


def _grant(policy_id: str, resource: str = "t/#", service: str = MQTT_PROXY) -> dict[str, Any]:
    operation = PUBLISH_TO_IOT_CORE if service == MQTT_PROXY else PUBLISH_TO_TOPIC
    return {service: {policy_id: {"operations": [operation], "resources": [resource]}}}


def test_a_blank_policy_id_drops_every_components_policies_for_that_service() -> None:
    index = index_access_control(
        {
            "a": _grant("a:1"),
            "b": {**_grant(" "), **_grant("b:pubsub", "t/x", PUB_SUB)},
        }
    )
    assert not is_authorized(index, "a", MQTT_PROXY, PUBLISH_TO_IOT_CORE, "t/x").allowed
    # Other services of the same components are untouched.
    assert is_authorized(index, "b", PUB_SUB, PUBLISH_TO_TOPIC, "t/x").allowed
    [problem] = [p for p in index.problems if p.scope == "service"]
    assert problem.service == MQTT_PROXY and "blank" in problem.message


@pytest.mark.parametrize(("version", "loads"), [("2.11.3", False), ("2.12.0", True), (None, True)])
def test_a_policy_id_used_twice_is_fatal_before_nucleus_2_12(
    version: str | None, loads: bool
) -> None:
    nucleus: dict[str, Any] = {"componentType": "NUCLEUS"}
    if version:
        nucleus["version"] = version
    services = {
        "aws.greengrass.Nucleus": nucleus,
        "a": {"configuration": {"accessControl": _grant("shared")}},
        "b": {"configuration": {"accessControl": _grant("shared")}},
    }
    index = index_services(services)
    assert is_authorized(index, "a", MQTT_PROXY, PUBLISH_TO_IOT_CORE, "t/x").allowed is loads
    rejected = [p for p in index.problems if p.scope == "service"]
    assert bool(rejected) is not loads
    if rejected:
        assert version is not None and version in rejected[0].message
    # The lint names the problem either way.
    reasons = {f.reason for v in lint_access_control(index, interpolates=True) for f in v.findings}
    assert reasons & {"duplicate_policy_id", "rejected_by_nucleus"}


def test_the_token_exchange_service_allows_everyone_whatever_accessControl_says() -> None:
    declared = {"a": {TOKEN_EXCHANGE: {"p": {"operations": ["getCredentials"], "resources": []}}}}
    for component in ("a", "never.declared"):
        decision = is_authorized(declared, component, TOKEN_EXCHANGE, "getCredentials", "-")
        assert decision.allowed and "default policy" in decision.reason
    assert not is_authorized(declared, "a", TOKEN_EXCHANGE, "*", "-").allowed


def test_hidden_policy_ids_are_left_out_of_the_store_but_not_out_of_json_text() -> None:
    stored = index_access_control({"c": _grant("_draft")})
    assert not is_authorized(stored, "c", MQTT_PROXY, PUBLISH_TO_IOT_CORE, "t/x").allowed
    as_json = index_access_control(
        {
            "c": '{"aws.greengrass.ipc.mqttproxy": {"_draft": {"operations": '
            '["aws.greengrass#PublishToIoTCore"], "resources": ["t/#"]}}}'
        }
    )
    assert is_authorized(as_json, "c", MQTT_PROXY, PUBLISH_TO_IOT_CORE, "t/x").allowed


def test_the_lint_warns_of_a_policy_the_nucleus_reads_otherwise() -> None:
    index = index_access_control(
        {
            "c": {
                MQTT_PROXY: {
                    "p": {
                        "operations": [PUBLISH_TO_IOT_CORE],
                        "resources": ["dt/*/health", "dt/*th*/x"],
                    }
                }
            }
        }
    )
    [verdict] = lint_access_control(index, interpolates=True)
    quirks = [f for f in verdict.findings if f.reason == "nucleus_matcher_quirk"]
    assert len(quirks) == 1 and "dt/*/health" in quirks[0].message
    assert "gg-health-agent authorize" in (quirks[0].remediation or "")


def test_no_quirk_is_reported_on_real_configurations() -> None:
    """The nucleus's integration-test configs and the public recipes: not one false alarm."""
    checked = 0
    for path in sorted(EFFECTIVE.glob("*.yaml")):
        services = load_data(path).get("services") or {}
        index = index_services(services)
        checked += len(index.policies)
        for verdict in lint_access_control(index, interpolates=True):
            assert "nucleus_matcher_quirk" not in {f.reason for f in verdict.findings}, path
    for path in sorted(RECIPES.iterdir()):
        data = load_data(path) if path.suffix in (".yaml", ".json") else None
        configuration = (
            (data.get("ComponentConfiguration") or {}).get("DefaultConfiguration") or {}
            if isinstance(data, dict)
            else {}
        )
        if "accessControl" not in configuration:
            continue
        index = index_access_control({data["ComponentName"]: configuration["accessControl"]})
        checked += len(index.policies)
        for verdict in lint_access_control(index, interpolates=True):
            assert "nucleus_matcher_quirk" not in {f.reason for f in verdict.findings}, path
    assert checked >= 10
