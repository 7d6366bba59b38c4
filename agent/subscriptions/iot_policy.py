"""An AWS IoT policy evaluator: does a set of policies allow an action on a resource?

Semantics (https://docs.aws.amazon.com/iot/latest/developerguide/iot-policies.html and the IAM
policy evaluation logic it follows): an explicit ``Deny`` beats any ``Allow``, which beats the
implicit deny; ``Action``/``NotAction`` match case-insensitively and ``Resource``/``NotResource``
case-sensitively, each with the ``*`` and ``?`` globs; a field may be a string or a list. AWS IoT
treats ``+`` and ``#`` in resources as literal characters. Policy variables ``${iot:ClientId}``,
``${iot:Connection.Thing.*}`` ... are replaced from the request context before matching; one that
cannot be resolved makes its resource match nothing, and ``${*}``, ``${?}``, ``${$}`` are the
literal characters. Conditions on the keys below are evaluated; any other condition is unknown: an
``Allow`` under it still counts (flagged ``conditional``), a ``Deny`` under it does not.
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
class Context:
    """What the policy variables and condition keys of one request resolve to."""

    client_id: str | None = None
    thing_name: str | None = None
    """``iot:Connection.Thing.ThingName``; None when thing variables do not resolve."""
    thing_attached: bool | None = None
    region: str | None = None
    account: str | None = None
    """None: the ARN field is unknown and matches whatever the policy names."""


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one request against a set of policies."""

    decision: Literal["allow", "explicit_deny", "implicit_deny"]
    allowed_by: tuple[str, ...] = ()
    denied_by: tuple[str, ...] = ()
    conditional: bool = False
    """An allowing statement has a condition this evaluator cannot check."""
    thing_variables: bool = False
    """An allowing statement matched through an ``iot:Connection.Thing.*`` variable."""

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


def resolve_variable(name: str, ctx: Context) -> str | None:
    """The value of policy variable or condition key ``name`` in ``ctx``; None if unresolved."""
    if name == "iot:ClientId":
        return ctx.client_id
    if name == THING_VARIABLE_PREFIX + "ThingName":
        return ctx.thing_name
    if name == THING_VARIABLE_PREFIX + "IsAttached":
        return None if ctx.thing_attached is None else str(ctx.thing_attached).lower()
    return None


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


_CONDITION_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda want, have: have == want,
    "StringNotEquals": lambda want, have: have != want,
    "StringEqualsIgnoreCase": _equals_ignore_case,
    "StringLike": lambda want, have: glob_match(want, have),
    "StringNotLike": lambda want, have: not glob_match(want, have),
    "Bool": _equals_ignore_case,
}


def _condition_holds(condition: Mapping[str, Any] | None, ctx: Context) -> bool | None:
    """True/False when every test is decidable here, None when one is not."""
    if not condition:
        return True
    verdict: bool | None = True
    for operator, tests in condition.items():
        base = str(operator).removesuffix("IfExists")
        test = _CONDITION_OPERATORS.get(base)
        if test is None or not isinstance(tests, Mapping):
            verdict = None
            continue
        for key, wanted in tests.items():
            have = resolve_variable(str(key), ctx)
            values = wanted if isinstance(wanted, list) else [wanted]
            if have is None:
                if str(operator).endswith("IfExists"):
                    continue
                verdict = None
                continue
            negative = base.startswith("StringNot")
            hits = [test(str(v), have) for v in values]
            if not (all(hits) if negative else any(hits)):
                return False
    return verdict


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
    """Evaluate one request (``resource`` an ARN or ``*``) against every policy together."""
    allowed: list[str] = []
    denied: list[str] = []
    conditional = thing = False
    for policy in policies:
        for statement in policy.statements:
            hit, via_thing = _statement_applies(statement, action, resource, ctx)
            if not hit:
                continue
            holds = _condition_holds(statement.condition, ctx)
            label = f"{policy.name} {statement.label}"
            if statement.effect == "Deny":
                if holds:
                    denied.append(label)
            elif holds is not False:
                allowed.append(label)
                conditional = conditional or holds is None
                thing = thing or via_thing
    if denied:
        return Evaluation("explicit_deny", tuple(allowed), tuple(denied))
    if allowed:
        return Evaluation("allow", tuple(allowed), (), conditional, thing)
    return Evaluation("implicit_deny")
