"""``gg-health-agent authorize``: one IPC request, or many, answered as the device's nucleus would.

The question operators ask when a component logs "not authorized", answered before the
deployment: the root's ``effectiveConfig.yaml`` gives every component's ``accessControl``, the
nucleus version and whether it interpolates ``{iot:thingName}``; the answer comes from the same
code the subscription checks use (:func:`agent.subscriptions.authorization.is_authorized`).

Batch form: one JSON object a line on stdin, one answer a line on stdout in the same order
(blank lines are skipped). A line that is not a request gets an answer saying why, and makes the
exit status 3: it was neither allowed nor refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from agent.config.names import THING_NAME_VARIABLE
from agent.greengrass.root import load_root
from agent.printable import printable
from agent.subscriptions.authorization import (
    AccessControlIndex,
    Decision,
    access_control_of,
    index_services,
    is_authorized,
    nucleus_version,
)
from agent.subscriptions.lite_authz import authorize as lite_authorize

FIELDS = ("component", "service", "operation", "resource")
MAX_LINE = 64 * 1024
"""A request line longer than this is refused unread (resources are short; stdin may not be)."""
MODELLED_SINCE = (2, 8, 0)
"""The nucleus whose matcher (``WildcardTrie``) the answers reproduce; it is unchanged since."""


@dataclass(frozen=True)
class Device:
    """What the answers are computed from: the root's policies, as its nucleus loads them."""

    index: AccessControlIndex
    thing_name: str | None
    """The thing name the nucleus puts in place of ``{iot:thingName}`` (None: it does not)."""
    caveat: str | None
    """Said with every answer when the root's nucleus predates the modelled matcher."""
    literal_thing: str | None = None
    """The thing name, when the nucleus leaves ``{iot:thingName}`` as literal text: a refusal
    that this name would have turned into a grant says so."""
    lite: Mapping[str, Any] | None = None
    """On nucleus lite, every component's ``accessControl``: ggipcd decides with its own walk
    and matchers (:mod:`agent.subscriptions.lite_authz`), not the Java nucleus's trie."""

    @classmethod
    def load(cls, root: Path) -> Device:
        """Read the Greengrass root; raises ``GreengrassRootError`` when it cannot be read."""
        greengrass = load_root(root)
        version = nucleus_version(greengrass.services)
        caveat = None
        if version is not None and version < MODELLED_SINCE:
            caveat = (
                f"nucleus {'.'.join(map(str, version))} predates 2.8.0, whose resource matcher "
                "these answers reproduce; older versions match wildcards differently"
            )
        index = index_services(greengrass.services)
        if greengrass.lite:
            acls = {n: access_control_of(e) for n, e in greengrass.services.items()}
            return cls(index, None, None, greengrass.thing_name, acls)
        if greengrass.interpolates_configuration:
            return cls(index, greengrass.thing_name, caveat)
        return cls(index, None, caveat, greengrass.thing_name)

    def answer(self, component: str, service: str, operation: str, resource: str) -> Answer:
        """The nucleus's answer to one request."""
        if self.lite is not None:
            return self._lite_answer(component, service, operation, resource)
        request = (self.index, component, service, operation, resource)
        decision = is_authorized(*request, self.thing_name)
        notes = [self.caveat] if self.caveat else []
        if (
            not decision.allowed
            and self.literal_thing
            and is_authorized(*request, self.literal_thing).allowed
        ):
            notes.insert(
                0,
                f"it would be granted through {THING_NAME_VARIABLE}, which this nucleus does "
                "not interpolate (interpolateComponentConfiguration is off), so the pattern "
                "matches the variable's text literally",
            )
        return Answer.of(decision, notes)

    def _lite_answer(self, component: str, service: str, operation: str, resource: str) -> Answer:
        assert self.lite is not None
        acl = self.lite.get(component)
        decided = lite_authorize(acl, service, operation, resource)
        why = f"nucleus lite: {decided.why}"
        if (
            not decided.allowed
            and self.literal_thing
            and lite_authorize(
                acl, service, operation, resource, interpolate=True, thing_name=self.literal_thing
            ).allowed
        ):
            why += (
                f"; it would be granted through {THING_NAME_VARIABLE}, which nucleus lite "
                "matches literally"
            )
        return Answer(decided.allowed, decided.policy_id, why)


@dataclass(frozen=True)
class Answer:
    """One answer line: ``{"allowed", "policy", "why"}``."""

    allowed: bool | None
    """None: the request itself was malformed."""
    policy: str | None
    why: str

    @classmethod
    def of(cls, decision: Decision, notes: list[str]) -> Answer:
        quirk = [decision.quirk] if decision.quirk else []
        why = "; ".join([decision.reason, *quirk, *notes])
        return cls(decision.allowed, decision.policy_id, why)

    def to_json(self) -> str:
        return json.dumps(
            {"allowed": bool(self.allowed), "policy": self.policy, "why": self.why},
            ensure_ascii=False,
        )

    def to_text(self) -> str:
        verdict = {True: "ALLOWED", False: "REFUSED", None: "INVALID"}[self.allowed]
        return printable(f"{verdict}: {self.why}") + "\n"


def exit_code(answers: list[Answer]) -> int:
    """0 when every request is allowed, 3 when one was malformed, else 1."""
    if any(a.allowed is None for a in answers):
        return 3
    return 0 if all(a.allowed for a in answers) else 1


def answer_one(device: Device, request: list[str], text: bool, out: TextIO) -> int:
    """The positional form: one request, in text or JSON."""
    answer = device.answer(*request)
    out.write(answer.to_text() if text else answer.to_json() + "\n")
    return exit_code([answer])


def answer_lines(device: Device, stdin: BinaryIO, out: TextIO) -> int:
    """The batch form: every request line of ``stdin``, one JSON answer a line, in order."""
    answers: list[Answer] = []
    for number, request in _requests(stdin):
        if isinstance(request, str):
            answer = Answer(None, None, f"line {number}: {request}")
        else:
            answer = device.answer(*request)
        answers.append(answer)
        out.write(answer.to_json() + "\n")
        out.flush()  # a pipeline sees each answer as soon as it is known
    return exit_code(answers)


def _requests(stdin: BinaryIO) -> Iterator[tuple[int, list[str] | str]]:
    """Each non-blank line's number and its four fields, or why it is not a request."""
    number = 0
    while True:
        raw = stdin.readline(MAX_LINE + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the over-long line
                raw = stdin.readline(MAX_LINE)
            yield number, f"longer than {MAX_LINE} bytes; not read"
            continue
        if not raw.strip():
            continue
        yield number, _parse(raw)


def _parse(raw: bytes) -> list[str] | str:
    try:
        request = json.loads(raw)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except ValueError as exc:
        return f"not JSON ({exc})"
    if not isinstance(request, dict):
        return f"a JSON {type(request).__name__}, not an object with {', '.join(FIELDS)}"
    missing = [f for f in FIELDS if not isinstance(request.get(f), str)]
    if missing:
        return f"{', '.join(missing)} missing or not text (a request has {', '.join(FIELDS)})"
    return [request[f] for f in FIELDS]
