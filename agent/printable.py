"""One escaper for every string the agent shows to a person on a terminal.

File names, topics, policy ids and thing names come from the device, its configuration and AWS;
printed raw, an ESC or OSC sequence in one of them recolours the operator's terminal, rewrites its
title or hides text, and a newline forges a table row. Text output (the report table, the fleet
summary, ``authorize`` answers, error messages) passes every line through :func:`printable`,
which writes C0 and C1 control characters, DEL and the bidirectional overrides of "Trojan
Source" (https://trojansource.codes/, CVE-2021-42574) as visible escapes. JSON output needs
none: its encoder escapes control characters itself.
"""

from __future__ import annotations

import functools
import re

_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]
_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


@functools.cache
def _table() -> dict[int, str]:
    codes = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *_BIDI]
    return {c: _NAMED.get(c, f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in codes}


@functools.cache
def _unsafe() -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(chr(c)) for c in _table()) + "]")


def printable(text: str) -> str:
    """``text`` with every control and bidi-override character written as an escape."""
    # Searching is ~20x cheaper than translating, and nearly every line has nothing to escape
    # (300,000 rows for 100,000 certificates).
    if _unsafe().search(text) is None:
        return text
    return text.translate(_table())


def printable_lines(lines: list[str]) -> str:
    """Each of ``lines`` made printable, one per line (a newline inside one is escaped)."""
    return "".join(printable(line) + "\n" for line in lines)
