"""The AWS IoT policy evaluator, one rule per row, and its glob against a reference."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.subscriptions.iot_policy import (
    Context,
    IotPolicy,
    PolicyError,
    ThingRecord,
    arn,
    condition_holds,
    evaluate,
    glob_match,
    parse_policy,
)

CTX = Context(
    client_id="pi-42",
    thing_name="pi-42",
    thing_attached=True,
    region="eu-west-1",
    account="123456789012",
)
PREFIX = "arn:aws:iot:eu-west-1:123456789012:"


def policy(*statements: dict[str, Any]) -> IotPolicy:
    return parse_policy("p", {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


@pytest.mark.parametrize(
    ("statements", "action", "resource", "decision"),
    [
        # explicit Deny beats Allow beats implicit deny
        (
            [allow("iot:*", "*"), deny("iot:Publish", PREFIX + "topic/secret")],
            "iot:Publish",
            PREFIX + "topic/secret",
            "explicit_deny",
        ),
        (
            [allow("iot:*", "*"), deny("iot:Publish", PREFIX + "topic/secret")],
            "iot:Publish",
            PREFIX + "topic/open",
            "allow",
        ),
        ([allow("iot:Connect", "*")], "iot:Publish", PREFIX + "topic/a", "implicit_deny"),
        # scalar or list, Action case-insensitive, Resource case-sensitive
        (
            [allow(["iot:Publish", "iot:Receive"], [PREFIX + "topic/a"])],
            "iot:Receive",
            PREFIX + "topic/a",
            "allow",
        ),
        ([allow("IOT:publish", PREFIX + "topic/a")], "iot:Publish", PREFIX + "topic/a", "allow"),
        (
            [allow("iot:Publish", PREFIX + "topic/A")],
            "iot:Publish",
            PREFIX + "topic/a",
            "implicit_deny",
        ),
        # globs: * any run, ? one character, in actions and resources
        ([allow("iot:*Shadow", "*")], "iot:UpdateThingShadow", "*", "allow"),
        (
            [allow("iot:Publish", PREFIX + "topic/dev?/x")],
            "iot:Publish",
            PREFIX + "topic/dev1/x",
            "allow",
        ),
        (
            [allow("iot:Publish", PREFIX + "topic/dev?/x")],
            "iot:Publish",
            PREFIX + "topic/dev12/x",
            "implicit_deny",
        ),
        # + and # are literal characters in IoT policies
        (
            [allow("iot:Subscribe", PREFIX + "topicfilter/a/#")],
            "iot:Subscribe",
            PREFIX + "topicfilter/a/b",
            "implicit_deny",
        ),
        (
            [allow("iot:Subscribe", PREFIX + "topicfilter/a/#")],
            "iot:Subscribe",
            PREFIX + "topicfilter/a/#",
            "allow",
        ),
        # NotAction / NotResource
        (
            [{"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"}],
            "iot:Connect",
            PREFIX + "client/pi-42",
            "allow",
        ),
        (
            [{"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"}],
            "iot:Publish",
            PREFIX + "topic/a",
            "implicit_deny",
        ),
        (
            [{"Effect": "Allow", "Action": "iot:Publish", "NotResource": PREFIX + "topic/admin/*"}],
            "iot:Publish",
            PREFIX + "topic/admin/x",
            "implicit_deny",
        ),
        (
            [{"Effect": "Allow", "Action": "iot:Publish", "NotResource": PREFIX + "topic/admin/*"}],
            "iot:Publish",
            PREFIX + "topic/user/x",
            "allow",
        ),
        # policy variables and the special-character escapes
        (
            [allow("iot:Connect", PREFIX + "client/${iot:ClientId}")],
            "iot:Connect",
            PREFIX + "client/pi-42",
            "allow",
        ),
        (
            [allow("iot:Publish", PREFIX + "topic/${iot:Connection.Thing.ThingName}/x")],
            "iot:Publish",
            PREFIX + "topic/pi-42/x",
            "allow",
        ),
        (
            [allow("iot:Publish", PREFIX + "topic/${iot:Connection.Thing.ThingTypeName}/x")],
            "iot:Publish",
            PREFIX + "topic/sensor/x",
            "implicit_deny",
        ),
        (
            [allow("iot:Publish", PREFIX + "topic/a${*}")],
            "iot:Publish",
            PREFIX + "topic/a*",
            "allow",
        ),
        (
            [allow("iot:Publish", PREFIX + "topic/a${*}")],
            "iot:Publish",
            PREFIX + "topic/ab",
            "implicit_deny",
        ),
        (
            [allow("iot:Publish", PREFIX + "topic/${$}{x}")],
            "iot:Publish",
            PREFIX + "topic/${x}",
            "allow",
        ),
        # region and account fields are matched when known
        (
            [allow("iot:Publish", "arn:aws:iot:us-east-1:123456789012:topic/a")],
            "iot:Publish",
            PREFIX + "topic/a",
            "implicit_deny",
        ),
        (
            [allow("iot:Publish", "arn:aws:iot:*:*:topic/a")],
            "iot:Publish",
            PREFIX + "topic/a",
            "allow",
        ),
        (
            [allow("iot:Publish", "arn:aws:iot:eu-west-1:*")],
            "iot:Publish",
            PREFIX + "topic/a",
            "allow",
        ),
        # resource-less actions are evaluated against "*"
        (
            [allow("greengrass:*", "arn:aws:greengrass:*")],
            "greengrass:ResolveComponentCandidates",
            "*",
            "implicit_deny",
        ),
        ([allow("greengrass:*", "*")], "greengrass:ResolveComponentCandidates", "*", "allow"),
    ],
)
def test_evaluation_rules(
    statements: list[dict[str, Any]], action: str, resource: str, decision: str
) -> None:
    assert evaluate([policy(*statements)], action, resource, CTX).decision == decision


def test_a_variable_value_is_never_a_glob() -> None:
    ctx = Context(client_id="dev*", region="eu-west-1", account="123456789012")
    p = policy(allow("iot:Connect", PREFIX + "client/${iot:ClientId}"))
    assert evaluate([p], "iot:Connect", PREFIX + "client/dev*", ctx).allowed
    assert not evaluate([p], "iot:Connect", PREFIX + "client/devil", ctx).allowed


def test_unknown_region_and_account_match_what_the_policy_names() -> None:
    unknown = Context(client_id="pi-42")
    p = policy(allow("iot:Publish", "arn:aws:iot:region:account-id:topic/a"))
    assert evaluate([p], "iot:Publish", arn("iot", "topic/a", unknown), unknown).allowed
    assert not evaluate([p], "iot:Publish", arn("iot", "topic/a", CTX), CTX).allowed


def test_arn_partition_follows_the_region() -> None:
    assert arn("iot", "topic/a", Context(region="cn-north-1")).startswith("arn:aws-cn:iot:")
    assert arn("iot", "topic/a", Context(region="us-gov-west-1")).startswith("arn:aws-us-gov:")
    assert arn("greengrass", "x", CTX, account="aws") == "arn:aws:greengrass:eu-west-1:aws:x"


@pytest.mark.parametrize(
    ("condition", "ctx", "allowed", "conditional"),
    [
        ({"Bool": {"iot:Connection.Thing.IsAttached": "true"}}, CTX, True, False),
        (
            {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            Context(client_id="x", thing_attached=False),
            False,
            False,
        ),
        ({"StringLike": {"iot:ClientId": "pi-*"}}, CTX, True, False),
        ({"StringNotEquals": {"iot:ClientId": ["pi-42", "pi-43"]}}, CTX, False, False),
        ({"StringEquals": {"aws:SourceIp": "10.0.0.1"}}, CTX, True, True),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, CTX, True, True),
        (
            {"BoolIfExists": {"iot:Connection.Thing.IsAttached": "true"}},
            Context(client_id="x"),
            True,
            False,
        ),
    ],
)
def test_conditions(
    condition: dict[str, Any], ctx: Context, allowed: bool, conditional: bool
) -> None:
    p = policy(allow("iot:Connect", "*", Condition=condition))
    result = evaluate([p], "iot:Connect", "*", ctx)
    assert result.allowed is allowed
    assert result.conditional is conditional


def test_deny_under_an_undecided_condition_makes_the_answer_uncertain() -> None:
    p = policy(
        allow("iot:*", "*"),
        deny(
            "iot:Publish",
            "*",
            Sid="office",
            Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        ),
    )
    result = evaluate([p], "iot:Publish", PREFIX + "topic/a", CTX)
    assert result.decision == "uncertain"
    assert not result.allowed
    assert result.denied_by == ()
    assert [(u.statement, u.effect, u.keys) for u in result.undecided] == [
        ("p office", "Deny", ("aws:SourceIp",))
    ]
    # Requests the Deny does not match stay decided.
    other = evaluate([p], "iot:Connect", PREFIX + "client/pi-42", CTX)
    assert other.decision == "allow" and other.undecided == ()


def test_an_undecided_deny_cannot_change_an_implicit_or_explicit_deny() -> None:
    undecided = deny("iot:Publish", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    alone = evaluate([policy(undecided)], "iot:Publish", PREFIX + "topic/a", CTX)
    assert alone.decision == "implicit_deny" and alone.undecided == ()
    both = policy(allow("iot:*", "*"), undecided, deny("iot:Publish", PREFIX + "topic/a"))
    assert evaluate([both], "iot:Publish", PREFIX + "topic/a", CTX).decision == "explicit_deny"


def test_a_deny_whose_condition_is_false_is_ignored() -> None:
    # StringNotEquals on a known key that does not match: decided, so no uncertainty.
    p = policy(
        allow("iot:*", "*"),
        deny("iot:Publish", "*", Condition={"StringEquals": {"iot:ClientId": "someone-else"}}),
    )
    result = evaluate([p], "iot:Publish", PREFIX + "topic/a", CTX)
    assert result.decision == "allow" and not result.conditional and result.undecided == ()


def test_a_false_test_decides_a_condition_with_an_undecided_one() -> None:
    # Every operator must hold; one proven false is enough, whatever aws:SourceIp is.
    p = policy(
        allow("iot:*", "*"),
        deny(
            "iot:Publish",
            "*",
            Condition={
                "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                "StringEquals": {"iot:ClientId": "someone-else"},
            },
        ),
    )
    assert evaluate([p], "iot:Publish", PREFIX + "topic/a", CTX).decision == "allow"


def test_a_conditional_allow_beside_an_unconditional_one_is_not_conditional() -> None:
    p = policy(
        allow("iot:Publish", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        allow("iot:Publish", PREFIX + "topic/a"),
    )
    result = evaluate([p], "iot:Publish", PREFIX + "topic/a", CTX)
    assert result.allowed and not result.conditional and result.undecided == ()
    only = evaluate([p], "iot:Publish", PREFIX + "topic/b", CTX)
    assert only.allowed and only.conditional
    assert [(u.statement, u.effect) for u in only.undecided] == [("p #0", "Allow")]


SENSOR = Context(
    client_id="pi-42",
    thing_name="pi-42",
    thing_attached=True,
    thing=ThingRecord("sensor", (("env", "prod"), ("floor", "3"))),
    region="eu-west-1",
    account="123456789012",
)
NO_TYPE = Context(client_id="pi-42", thing_name="pi-42", thing_attached=True, thing=ThingRecord())
UNDESCRIBED = Context(client_id="pi-42", thing_name="pi-42", thing_attached=True)
DETACHED = Context(
    client_id="pi-42", thing_name="pi-42", thing_attached=False, thing=ThingRecord("sensor")
)


@pytest.mark.parametrize(
    ("condition", "ctx", "decision", "undecided_keys"),
    [
        # thing type and attributes: decided once DescribeThing told them
        ({"StringEquals": {"iot:Connection.Thing.ThingTypeName": "sensor"}}, SENSOR, True, ()),
        ({"StringEquals": {"iot:Connection.Thing.ThingTypeName": "camera"}}, SENSOR, False, ()),
        (
            {"StringEquals": {"iot:Connection.Thing.ThingTypeName": "sensor"}},
            UNDESCRIBED,
            None,
            ("iot:Connection.Thing.ThingTypeName",),
        ),
        ({"StringEquals": {"iot:Connection.Thing.Attributes[env]": "prod"}}, SENSOR, True, ()),
        ({"StringLike": {"iot:Connection.Thing.Attributes[env]": "pr*"}}, SENSOR, True, ()),
        (
            {"StringEquals": {"iot:Connection.Thing.Attributes[env]": ["dev", "test"]}},
            SENSOR,
            False,
            (),
        ),
        (
            {"StringEquals": {"iot:Connection.Thing.Attributes[env]": "prod"}},
            UNDESCRIBED,
            None,
            ("iot:Connection.Thing.Attributes[env]",),
        ),
        # an absent key (no such attribute, no thing type, a detached thing): a positive
        # operator fails, a negated one holds, IfExists passes, Null says "absent"
        ({"StringEquals": {"iot:Connection.Thing.Attributes[room]": "1"}}, SENSOR, False, ()),
        ({"StringNotEquals": {"iot:Connection.Thing.Attributes[room]": "1"}}, SENSOR, True, ()),
        (
            {"StringEqualsIfExists": {"iot:Connection.Thing.Attributes[room]": "1"}},
            SENSOR,
            True,
            (),
        ),
        ({"Null": {"iot:Connection.Thing.Attributes[room]": "true"}}, SENSOR, True, ()),
        ({"Null": {"iot:Connection.Thing.Attributes[env]": "true"}}, SENSOR, False, ()),
        ({"StringLike": {"iot:Connection.Thing.ThingTypeName": "*"}}, NO_TYPE, False, ()),
        ({"StringEquals": {"iot:Connection.Thing.Attributes[env]": "x"}}, DETACHED, False, ()),
        # ForAnyValue / ForAllValues on a known key (a set of one here)
        (
            {"ForAnyValue:StringEquals": {"iot:Connection.Thing.Attributes[env]": ["a", "prod"]}},
            SENSOR,
            True,
            (),
        ),
        (
            {"ForAllValues:StringEquals": {"iot:Connection.Thing.Attributes[env]": ["a", "b"]}},
            SENSOR,
            False,
            (),
        ),
        (
            {"ForAllValues:StringEquals": {"iot:Connection.Thing.Attributes[room]": ["a"]}},
            SENSOR,
            True,
            (),
        ),
        (
            {"ForAnyValue:StringEquals": {"iot:Connection.Thing.Attributes[room]": ["a"]}},
            SENSOR,
            False,
            (),
        ),
        (
            {"ForAnyValue:StringEquals": {"iot:ConnectAttributes": ["PersistentConnect"]}},
            SENSOR,
            None,
            ("iot:ConnectAttributes",),
        ),
        # an operator not modelled is undecided, even on a known key
        (
            {"NumericLessThan": {"iot:Connection.Thing.Attributes[floor]": "5"}},
            SENSOR,
            None,
            ("iot:Connection.Thing.Attributes[floor]",),
        ),
        ({"Bogus:StringEquals": {"iot:ClientId": "pi-42"}}, SENSOR, None, ("iot:ClientId",)),
        # IsAttached unknown without the registry: undecided
        (
            {"Bool": {"iot:Connection.Thing.IsAttached": True}},
            Context(client_id="pi-42", thing_name="pi-42"),
            None,
            ("iot:Connection.Thing.IsAttached",),
        ),
        ({"Bool": {"iot:Connection.Thing.IsAttached": True}}, SENSOR, True, ()),
    ],
)
def test_condition_operators_and_thing_keys(
    condition: dict[str, Any], ctx: Context, decision: bool | None, undecided_keys: tuple[str, ...]
) -> None:
    holds, tests = condition_holds(condition, ctx)
    assert holds is decision
    assert tuple(key for _, key in tests) == undecided_keys


def test_thing_type_and_attribute_variables_resolve_in_resources() -> None:
    p = policy(
        allow(
            "iot:Publish",
            PREFIX + "topic/${iot:Connection.Thing.ThingTypeName}/"
            "${iot:Connection.Thing.Attributes[env]}/*",
        )
    )
    assert evaluate([p], "iot:Publish", PREFIX + "topic/sensor/prod/x", SENSOR).allowed
    assert not evaluate([p], "iot:Publish", PREFIX + "topic/sensor/prod/x", UNDESCRIBED).allowed


def test_several_policies_are_evaluated_together() -> None:
    first = parse_policy("things", {"Statement": [allow("iot:*", "*")]})
    second = parse_policy("guard", {"Statement": [deny("iot:Publish", PREFIX + "topic/x")]})
    result = evaluate([first, second], "iot:Publish", PREFIX + "topic/x", CTX)
    assert result.decision == "explicit_deny"
    assert result.denied_by == ("guard #0",)
    assert result.allowed_by == ("things #0",)


def test_thing_variable_use_is_reported() -> None:
    p = policy(
        {
            "Sid": "own",
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": PREFIX + "topic/${iot:Connection.Thing.ThingName}/x",
        }
    )
    result = evaluate([p], "iot:Publish", PREFIX + "topic/pi-42/x", CTX)
    assert result.thing_variables and result.allowed_by == ("p own",)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ([], "not a JSON object"),
        ({"Version": "2012-10-17"}, "no Statement"),
        ({"Statement": [allow("iot:*", "*") | {"Effect": "allow"}]}, "Effect"),
        (
            {"Statement": [{"Effect": "Allow", "Action": "a", "NotAction": "b", "Resource": "*"}]},
            "exactly one of Action",
        ),
        ({"Statement": [{"Effect": "Allow", "Action": "a"}]}, "exactly one of Resource"),
        ({"Statement": [allow([], "*")]}, "non-empty list"),
        ({"Statement": [allow("a", "*", Condition="x")]}, "Condition"),
        ({"Statement": ["x"]}, "not an object"),
    ],
)
def test_malformed_documents(document: Any, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        parse_policy("p", document)


def test_single_statement_object_is_accepted() -> None:
    p = parse_policy("p", {"Statement": allow("iot:Connect", "*")})
    assert len(p.statements) == 1 and p.statements[0].label == "#0"


# --- property test of the glob against a reference --------------------------------------------


def reference_glob(pattern: str, text: str) -> bool:
    @functools.cache
    def walk(p: int, t: int) -> bool:
        if p == len(pattern):
            return t == len(text)
        if pattern[p] == "*":
            return walk(p + 1, t) or (t < len(text) and walk(p, t + 1))
        if t < len(text) and (pattern[p] == "?" or pattern[p] == text[t]):
            return walk(p + 1, t + 1)
        return False

    return walk(0, 0)


@given(st.text(alphabet="ab*?/.", max_size=8), st.text(alphabet="ab/.*?", max_size=8))
def test_glob_agrees_with_reference(pattern: str, text: str) -> None:
    assert glob_match(pattern, text) is reference_glob(pattern, text)
