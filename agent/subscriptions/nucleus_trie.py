"""The nucleus's IPC resource matcher, reproduced step for step: what the device really answers.

The Greengrass nucleus (v2.8.0 and later: ``WildcardTrie`` has not changed since) stores every
resource a component is granted for one operation in one trie and walks it for each request.
The walk does not always implement the documented semantics, and the device obeys the walk:

- a wildcard node collects its candidate continuations in a map keyed by the rest of the
  request, so two children that leave the same rest overwrite each other and a match is lost
  (``dt/*/health`` beside ``dt/*th*/x`` refuses ``dt/pi-42/health``);
- an escaped ``${*}`` is unescaped into the node text and parsed again when a later wildcard
  splits the pattern, so it becomes a wildcard (``a/${*}/#`` allows ``a/x/y``);
- a literal ``*``, ``+`` or ``#`` node is the same map entry as another pattern's wildcard node,
  and takes its wildcard flag (``["${*}", "*/x"]`` allows anything).

Which child overwrites which depends on the order the trie's ``ConcurrentHashMap`` iterates, so
that order is reproduced too (:mod:`agent.subscriptions.java_order`), as are Java's UTF-16
string indexes.
Source: aws-greengrass-nucleus ``WildcardTrie`` and ``AuthorizationModule`` (Apache-2.0),
https://github.com/aws-greengrass/aws-greengrass-nucleus/blob/main/src/main/java/com/aws/greengrass/authorization/WildcardTrie.java
The suite holds this module to 4,000 answers of the real classes (tests/subscriptions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.subscriptions.ipc_services import LookupStyle
from agent.subscriptions.java_order import ConcurrentMapOrder, java_text

_GLOB = "*"
_MULTI = "#"
_SINGLE = "+"
_SEPARATOR = "/"


@dataclass(eq=False)
class WildcardTrie:
    """One node of the nucleus's resource trie (field names as in ``WildcardTrie.java``)."""

    is_terminal: bool = False
    is_terminal_level: bool = False
    """The level before a valid ``#``: ``abc/#`` also matches ``abc``."""
    is_wildcard: bool = False
    is_mqtt_wildcard: bool = False
    match_all: bool = False
    children: ConcurrentMapOrder[WildcardTrie] = field(
        default_factory=lambda: ConcurrentMapOrder(WildcardTrie), repr=False
    )

    @classmethod
    def of(cls, resources: Iterable[str]) -> WildcardTrie:
        """The trie of ``resources`` added in order (each valid: see ``resource_problem``)."""
        root = cls()
        for resource in resources:
            root.add(java_text(resource))
        return root

    def add(self, subject: str) -> None:
        """``WildcardTrie.add(String)``: the whole-pattern shortcuts, then the general walk."""
        if subject in (_GLOB, _MULTI):
            node = self.children.get(subject)
            node.match_all = node.is_terminal = True
            if subject == _GLOB:
                node.is_wildcard = True
            else:
                node.is_mqtt_wildcard = True
            return
        if subject == _SINGLE:
            node = self.children.get(_SINGLE)
            node.is_terminal = node.is_mqtt_wildcard = True
            return
        if subject.startswith(_SINGLE + _SEPARATOR):
            node = self.children.get(_SINGLE)
            node.is_mqtt_wildcard = True
            node._add(subject[1:], True)
        self._add(subject, True)

    def _add(self, subject: str, is_terminal: bool) -> WildcardTrie:
        if not subject:
            self.is_terminal |= is_terminal
            return self
        current = self
        text: list[str] = []
        length = len(subject)
        i = 0
        while i < length:
            char = subject[i]
            if char == _GLOB:
                # The text so far is parsed again (escapes already undone: the nucleus quirk).
                current = current._add("".join(text), False).children.get(_GLOB)
                current.is_wildcard = True
                if i == length - 1:
                    current.is_terminal = is_terminal
                    return current
                return current._add(subject[i + 1 :], True)
            if char == _MULTI:
                level = current._add("".join(text), False)
                current = level.children.get(_MULTI)
                if i == length - 1:
                    current.is_terminal = True
                    if i > 0 and subject[i - 1] == _SEPARATOR:
                        current.is_mqtt_wildcard = current.match_all = True
                        level.is_terminal_level = True
                    return current
                return current._add(subject[i + 1 :], True)
            if char == _SINGLE:
                current = current._add("".join(text), False).children.get(_SINGLE)
                after_separator = i > 0 and subject[i - 1] == _SEPARATOR
                if i == length - 1:
                    current.is_terminal = True
                    if after_separator:
                        current.is_mqtt_wildcard = True
                    return current
                if after_separator and subject[i + 1] == _SEPARATOR:
                    current.is_mqtt_wildcard = True
                return current._add(subject[i + 1 :], True)
            if char == "$":
                escaped = escaped_char(subject[i:])
                if escaped is not None:
                    text.append(escaped)
                    i += 4
                    continue
            text.append(char)
            i += 1
        current = current.children.get("".join(text))
        current.is_terminal |= is_terminal
        return current

    def matches(self, resource: str, style: LookupStyle) -> bool:
        """``WildcardTrie.matches``: whether the request ``resource`` is granted."""
        request = java_text(resource)
        return self._mqtt(request) if style is LookupStyle.MQTT else self._standard(request)

    def _standard(self, text: str) -> bool:
        if (self.is_wildcard and self.is_terminal) or (self.is_terminal and not text):
            return True
        later: dict[str, WildcardTrie] = {}
        for key, child in self.children.items():
            if child.is_wildcard and key == _GLOB:
                if child._standard(text):
                    return True
                continue
            if text.startswith(key) and child._standard(text[len(key) :]):
                return True
            if self.is_wildcard:
                # Keyed by the rest of the request: a later child leaving the same rest
                # replaces an earlier one (the lost matches of shared nodes).
                found = text.find(key)
                while found >= 0:
                    later[text[found + len(key) :]] = child
                    found = text.find(key, found + 1)
        return self.is_wildcard and any(child._standard(rest) for rest, child in later.items())

    def _mqtt(self, text: str) -> bool:
        if (self.is_wildcard and self.is_terminal) or (self.is_terminal and not text):
            return True
        if self.is_mqtt_wildcard and (
            self.match_all or (self.is_terminal and _SEPARATOR not in text)
        ):
            return True
        later: dict[str, WildcardTrie] = {}
        for key, child in self.children.items():
            if (child.is_wildcard and key == _GLOB) or (
                child.is_mqtt_wildcard and key in (_SINGLE, _MULTI)
            ):
                if child._mqtt(text):
                    return True
                continue
            if text.startswith(key) and child._mqtt(text[len(key) :]):
                return True
            if child.is_terminal_level:
                # "abc/#" also matches "abc": the key without its trailing '/'.
                trimmed = key[:-1]
                if text == trimmed:
                    return True
                if text.endswith(trimmed):
                    key = trimmed
            if self.is_wildcard:
                found = text.find(key)
                while 0 <= found < len(text):
                    later[text[found + len(key) :]] = child
                    found = text.find(key, found + 1)
            if self.is_mqtt_wildcard:
                # What '+' swallows holds no '/'.
                found = text.find(key)
                while 0 <= found < len(text) and _SEPARATOR not in text[:found]:
                    later[text[found + len(key) :]] = child
                    found = text.find(key, found + 1)
        return (self.is_wildcard or self.is_mqtt_wildcard) and any(
            child._mqtt(rest) for rest, child in later.items()
        )


def escaped_char(text: str) -> str | None:
    """``getActualChar``: ``c`` when ``text`` starts with ``${c}`` (any ``c``), else None."""
    if len(text) >= 4 and text[0] == "$" and text[1] == "{" and text[3] == "}":
        return text[2]
    return None
