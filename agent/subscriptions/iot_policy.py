"""An AWS IoT policy evaluator: does a set of policies allow an action on a resource?

Semantics (https://docs.aws.amazon.com/iot/latest/developerguide/iot-policies.html and the IAM
policy evaluation logic it follows): an explicit ``Deny`` beats any ``Allow``, which beats the
implicit deny; ``Action``/``NotAction`` match case-insensitively and ``Resource``/``NotResource``
case-sensitively, each with the ``*`` and ``?`` globs; a field may be a string or a list. AWS IoT
treats ``+`` and ``#`` in resources as literal characters. Policy variables ``${iot:ClientId}``,
``${iot:Connection.Thing.*}`` ... are replaced from the request context before matching; one that
cannot be resolved makes its resource match nothing, and ``${*}``, ``${?}``, ``${$}`` are the
literal characters.

Conditions (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
are decided on the keys the request context knows: ``iot:ClientId`` and the thing keys
``iot:Connection.Thing.{ThingName, IsAttached, ThingTypeName, Attributes[name]}``
(https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html); the last two
only once DescribeThing has told them. Any other key, or an operator not modelled here, makes the
condition *undecided*, and the statement can neither grant nor deny for certain:

- an ``Allow`` under an undecided condition still allows, flagged ``conditional`` (the grant is
  uncertain);
- a ``Deny`` under an undecided condition makes every request it matches ``uncertain`` — it is
  neither allowed (the Deny may apply: an explicit deny wins, see
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html) nor
  proven denied. It is never dropped.

``Evaluation.undecided`` names the statements and condition keys behind an uncertain answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

THING_VARIABLE_PREFIX = "iot:Connection.Thing."
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class PolicyError(ValueError):
    """A policy document is not one AWS IoT would accept."""


@dataclass(frozen=True)
class Statement:
    """One statement of a policy document."""

    label: str
    """``Sid`` when given, else the statement's position (``#0``)."""
    effect: Literal["Allow", "Deny"]
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    condition: Mapping[str, Any] | None


@dataclass(frozen=True)
class IotPolicy:
    """A named, parsed policy document."""

    name: str
    statements: tuple[Statement, ...]
    arn: str | None = None
    """``policyArn`` when the document came from AWS IoT (it names region and account)."""


@dataclass(frozen=True)
class ThingRecord:
    """What AWS IoT's registry holds about the connection's thing (DescribeThing)."""

    type_name: str | None = None
    """``thingTypeName``; None: the thing has no type (the key is absent from the context)."""
    attributes: tuple[tuple[str, str], ...] = ()
    """``attributes`` as (name, value) pairs; a name not listed is absent from the context."""

    def attribute(self, name: str) -> str | None:
        """The value of attribute ``name``; None when the thing does not have it."""
        return next((value for key, value in self.attributes if key == name), None)


@dataclass(frozen=True)
class Context:
    """What the policy variables and condition keys of one request resolve to."""

    client_id: str | None = None
    thing_name: str | None = None
    """``iot:Connection.Thing.ThingName``; None when thing variables do not resolve."""
    thing_attached: bool | None = None
    """``iot:Connection.Thing.IsAttached``; None when unknown."""
    thing: ThingRecord | None = None
    """The thing's type and attributes; None when unknown (DescribeThing not asked or failed)."""
    region: str | None = None
    account: str | None = None
    """None: the ARN field is unknown and matches whatever the policy names."""


@dataclass(frozen=True)
class Undecided:
    """A statement whose condition this evaluator could not decide for one request."""

    statement: str
    """``<policy name> <Sid or #position>``."""
    effect: Literal["Allow", "Deny"]
    tests: tuple[tuple[str, str], ...]
    """The (operator, condition key) pairs that could not be decided."""

    @property
    def keys(self) -> tuple[str, ...]:
        """The condition keys that could not be decided, in policy order, each once."""
        return tuple(dict.fromkeys(key for _, key in self.tests))


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one request against a set of policies."""

    decision: Literal["allow", "explicit_deny", "implicit_deny", "uncertain"]
    """``uncertain``: allowed unless a Deny whose condition is undecided applies."""
    allowed_by: tuple[str, ...] = ()
    denied_by: tuple[str, ...] = ()
    conditional: bool = False
    """Allowed only by statements whose condition this evaluator cannot decide."""
    thing_variables: bool = False
    """An allowing statement matched through an ``iot:Connection.Thing.*`` variable."""
    undecided: tuple[Undecided, ...] = ()
    """The statements whose undecided conditions could change this answer."""

    @property
    def allowed(self) -> bool:
        """True when the request is allowed."""
        return self.decision == "allow"


def _strings(value: Any, what: str, label: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise PolicyError(
            f"statement {label}: {what} must be a string or a non-empty list of strings"
        )
    return tuple(items)


def parse_policy(name: str, document: Any, policy_arn: str | None = None) -> IotPolicy:
    """Parse a policy document (a mapping with ``Statement``); raises PolicyError."""
    if not isinstance(document, Mapping):
        raise PolicyError("the policy document is not a JSON object")
    raw = document.get("Statement")
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list) or not items:
        raise PolicyError("the policy document has no Statement")
    statements = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise PolicyError(f"statement #{position} is not an object")
        label = str(item.get("Sid") or f"#{position}")
        effect = item.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"statement {label}: Effect must be Allow or Deny, not {effect!r}")
        if ("Action" in item) == ("NotAction" in item):
            raise PolicyError(f"statement {label}: needs exactly one of Action and NotAction")
        if ("Resource" in item) == ("NotResource" in item):
            raise PolicyError(f"statement {label}: needs exactly one of Resource and NotResource")
        not_action, not_resource = "NotAction" in item, "NotResource" in item
        condition = item.get("Condition")
        if condition is not None and not isinstance(condition, Mapping):
            raise PolicyError(f"statement {label}: Condition must be an object")
        statements.append(
            Statement(
                label,
                effect,
                _strings(item["NotAction" if not_action else "Action"], "Action", label),
                not_action,
                _strings(item["NotResource" if not_resource else "Resource"], "Resource", label),
                not_resource,
                condition,
            )
        )
    return IotPolicy(name, tuple(statements), policy_arn)


_STAR, _ONE = "*", "?"
"""Wildcard tokens; every other token is a regex-escaped literal character."""


def _compile_glob(tokens: list[str], flags: int = 0) -> re.Pattern[str]:
    """A regex for the glob ``tokens`` whose matching time stays polynomial.

    ``.*a.*a.*a.*b`` backtracks exponentially in the number of stars; as in CPython's fnmatch
    (bpo-40480), every star but the last is matched lazily inside a lookahead that is then
    consumed by a backreference, which the engine never re-enters: each fixed piece between
    stars is found once, leftmost, which is enough for a glob.
    """
    pieces: list[list[str]] = [[]]
    for token in tokens:
        if token == _STAR:
            if pieces[-1] or len(pieces) == 1:
                pieces.append([])
            continue  # "**" is "*"
        pieces[-1].append("." if token == _ONE else token)
    head, *middle = ("".join(piece) for piece in pieces)
    if not middle:
        return re.compile(head, re.DOTALL | flags)
    *between, tail = middle
    out = [head]
    for index, fixed in enumerate(between):
        out.append(f"(?=(?P<g{index}>.*?{fixed}))(?P=g{index})")
    out.append(f".*{tail}")
    return re.compile("".join(out), re.DOTALL | flags)


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    tokens = [c if c in (_STAR, _ONE) else re.escape(c) for c in pattern]
    return _compile_glob(tokens, re.IGNORECASE if ignore_case else 0)


def glob_match(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """IAM-style glob: ``*`` any run of characters, ``?`` exactly one character."""
    return _glob(pattern, ignore_case).fullmatch(text) is not None


_THING_KEYS = frozenset(
    THING_VARIABLE_PREFIX + key for key in ("ThingName", "IsAttached", "ThingTypeName")
)
_ATTRIBUTE = re.compile(re.escape(THING_VARIABLE_PREFIX) + r"Attributes\[(.+)\]")


def condition_values(name: str, ctx: Context) -> tuple[str, ...] | None:
    """The values of condition key ``name`` in ``ctx``: ``()`` when the key is known to be absent
    from the request context, None when this evaluator does not know it.

    Thing keys exist only for a connection whose client id is a thing's name
    (https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html): without a
    ``thing_name`` they are absent.
    """
    if name == "iot:ClientId":
        return None if ctx.client_id is None else (ctx.client_id,)
    attribute = _ATTRIBUTE.fullmatch(name)
    if name not in _THING_KEYS and attribute is None:
        return None
    if ctx.thing_name is None:
        return ()
    if name == THING_VARIABLE_PREFIX + "ThingName":
        return (ctx.thing_name,)
    if name == THING_VARIABLE_PREFIX + "IsAttached":
        return None if ctx.thing_attached is None else (str(ctx.thing_attached).lower(),)
    if ctx.thing_attached is False:
        # "If the device certificate is not associated with the thing, this variable won't be
        # resolved" (https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-examples.html)
        return ()
    if ctx.thing is None:
        return None
    value = ctx.thing.type_name if attribute is None else ctx.thing.attribute(attribute.group(1))
    return () if value is None else (value,)


def resolve_variable(name: str, ctx: Context) -> str | None:
    """The value of policy variable or condition key ``name`` in ``ctx``; None if unresolved."""
    values = condition_values(name, ctx)
    return values[0] if values else None


@dataclass(frozen=True)
class _Resolved:
    pattern: str | None
    """Glob with variables replaced (their values escaped); None when one does not resolve."""
    thing_variables: bool = False


def resolve_resource(resource: str, ctx: Context) -> _Resolved:
    """Replace the policy variables of ``resource`` (values are literal, never globs)."""
    uses_thing = False
    unresolved = False

    def replace(match: re.Match[str]) -> str:
        nonlocal uses_thing, unresolved
        name = match.group(1)
        if name in ("*", "?", "$"):
            return "\x00" + name  # a literal special character, marked for the glob below
        uses_thing = uses_thing or name.startswith(THING_VARIABLE_PREFIX)
        value = resolve_variable(name, ctx)
        if value is None:
            unresolved = True
            return ""
        return "".join("\x00" + c if c in "*?" else c for c in value)

    text = _VARIABLE.sub(replace, resource)
    return _Resolved(None if unresolved else text, uses_thing)


def _resource_match(pattern: str, resource: str) -> bool:
    """Glob-match a resolved pattern; ARN fields left empty in ``resource`` match anything."""
    if pattern.startswith("arn:") and resource.startswith("arn:"):
        wanted, have = pattern.split(":", 5), resource.split(":", 5)
        if len(wanted) == 6 and len(have) == 6:
            return all(
                (position in (3, 4) and got == "") or _escaped_glob(want).fullmatch(got) is not None
                for position, (want, got) in enumerate(zip(wanted, have, strict=True))
            )
    return _escaped_glob(pattern).fullmatch(resource) is not None


@functools.lru_cache(maxsize=4096)
def _escaped_glob(pattern: str) -> re.Pattern[str]:
    tokens, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\x00" and index + 1 < len(pattern):
            tokens.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        tokens.append(char if char in (_STAR, _ONE) else re.escape(char))
        index += 1
    return _compile_glob(tokens)


def arn(service: str, resource: str, ctx: Context, account: str | None = None) -> str:
    """The ARN of ``resource``; an unknown region or account is left empty (matches any)."""
    region = ctx.region or ""
    partition = (
        "aws-cn"
        if region.startswith("cn-")
        else "aws-us-gov"
        if region.startswith("us-gov-")
        else "aws"
    )
    return f"arn:{partition}:{service}:{region}:{account or ctx.account or ''}:{resource}"


def _equals_ignore_case(want: str, have: str) -> bool:
    return have.lower() == want.lower()


# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
_CONDITION_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda want, have: have == want,
    "StringNotEquals": lambda want, have: have != want,
    "StringEqualsIgnoreCase": _equals_ignore_case,
    "StringNotEqualsIgnoreCase": lambda want, have: not _equals_ignore_case(want, have),
    "StringLike": lambda want, have: glob_match(want, have),
    "StringNotLike": lambda want, have: not glob_match(want, have),
    "Bool": _equals_ignore_case,
}
_NEGATED = frozenset({"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike"})
"""Operators that hold when the value matches *none* of the policy's values."""
_SET_QUALIFIERS = ("ForAnyValue:", "ForAllValues:")


def _test_holds(operator: str, wanted: Any, have: tuple[str, ...]) -> bool | None:
    """One (operator, key) test against the key's values ``have`` (``()``: absent from the
    request); None when the operator is not one this evaluator models."""
    qualifier, _, name = operator.rpartition(":")
    if qualifier and f"{qualifier}:" not in _SET_QUALIFIERS:
        return None
    base = name.removesuffix("IfExists")
    if_exists = base != name
    # JSON true/false are written "true"/"false" (the policy language is text).
    values = [
        str(v).lower() if isinstance(v, bool) else str(v)
        for v in (wanted if isinstance(wanted, list) else [wanted])
    ]
    if base == "Null":
        # Null tests presence only; it takes no IfExists and no set qualifier.
        if qualifier or if_exists or not all(v.lower() in ("true", "false") for v in values):
            return None
        return any((v.lower() == "true") is (not have) for v in values)
    test = _CONDITION_OPERATORS.get(base)
    if test is None:
        return None
    negated = base in _NEGATED

    def one(value: str) -> bool:
        hits = [test(v, value) for v in values]
        return all(hits) if negated else any(hits)

    if not have and if_exists:
        return True  # "...IfExists": a key absent from the request context passes
    if qualifier == "ForAllValues":
        return all(one(v) for v in have)  # true for an empty set, as IAM documents
    if qualifier == "ForAnyValue":
        return any(one(v) for v in have)  # false for an empty set
    if not have:
        # An absent key does not match, so a negated operator holds and a positive one fails.
        return negated
    return all(one(v) for v in have)


def condition_holds(
    condition: Mapping[str, Any] | None, ctx: Context
) -> tuple[bool | None, tuple[tuple[str, str], ...]]:
    """(verdict, undecided tests): True/False when the condition is decided here, else None with
    the (operator, key) pairs that could not be decided.

    Every operator and every key must hold (a logical AND); one that is proven false decides the
    whole condition false even when another is undecided.
    """
    if not condition:
        return True, ()
    undecided: list[tuple[str, str]] = []
    for operator, tests in condition.items():
        if not isinstance(tests, Mapping):
            undecided.append((str(operator), ""))
            continue
        for key, wanted in tests.items():
            have = condition_values(str(key), ctx)
            verdict = None if have is None else _test_holds(str(operator), wanted, have)
            if verdict is None:
                undecided.append((str(operator), str(key)))
            elif not verdict:
                return False, ()
    return (None, tuple(undecided)) if undecided else (True, ())


def _statement_applies(
    statement: Statement, action: str, resource: str, ctx: Context
) -> tuple[bool, bool]:
    """(matches action and resource, matched through a thing variable)."""
    action_hit = any(glob_match(a, action, ignore_case=True) for a in statement.actions)
    if action_hit == statement.not_action:
        return False, False
    thing = False
    resource_hit = False
    for raw in statement.resources:
        resolved = resolve_resource(raw, ctx)
        if resolved.pattern is not None and _resource_match(resolved.pattern, resource):
            resource_hit = True
            thing = thing or resolved.thing_variables
            if not resolved.thing_variables:
                break
    if resource_hit == statement.not_resource:
        return False, False
    return True, thing and not statement.not_resource


def evaluate(policies: Iterable[IotPolicy], action: str, resource: str, ctx: Context) -> Evaluation:
    """Evaluate one request (``resource`` an ARN or ``*``) against every policy together.

    IAM's order (reference_policies_evaluation-logic.html): a Deny that applies wins; else an
    Allow that applies allows; else the implicit deny. A statement whose condition is undecided
    may or may not apply, which makes the answer uncertain exactly when it could change it.
    """
    allowed: list[str] = []
    denied: list[str] = []
    sure_allow = thing = False
    maybe_allow: list[Undecided] = []
    maybe_deny: list[Undecided] = []
    for policy in policies:
        for statement in policy.statements:
            hit, via_thing = _statement_applies(statement, action, resource, ctx)
            if not hit:
                continue
            holds, tests = condition_holds(statement.condition, ctx)
            if holds is False:
                continue
            label = f"{policy.name} {statement.label}"
            if statement.effect == "Deny":
                if holds:
                    denied.append(label)
                else:
                    maybe_deny.append(Undecided(label, "Deny", tests))
                continue
            allowed.append(label)
            thing = thing or via_thing
            if holds:
                sure_allow = True
            else:
                maybe_allow.append(Undecided(label, "Allow", tests))
    if denied:
        return Evaluation("explicit_deny", tuple(allowed), tuple(denied))
    if not allowed:
        # Denied whether or not an undecided Deny applies: nothing allows it.
        return Evaluation("implicit_deny")
    undecided = tuple(maybe_deny) + (() if sure_allow else tuple(maybe_allow))
    if maybe_deny:
        return Evaluation("uncertain", tuple(allowed), (), not sure_allow, thing, undecided)
    return Evaluation("allow", tuple(allowed), (), not sure_allow, thing, undecided)
