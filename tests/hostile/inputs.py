"""Builders of hostile bytes and hostile files, shared by the corpus tests and the fuzz seeds.

Every builder is deterministic; the special files (FIFO, sparse, symlinks) are made in a
directory the caller owns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

GIB = 1 << 30


def deep_json(depth: int = 100_000) -> str:
    """``[[[...]]]`` nested ``depth`` times: Python's JSON decoder recurses once per level."""
    return "[" * depth + "]" * depth


def deep_json_object(depth: int = 100_000) -> str:
    """``{"a":{"a":...}}`` nested ``depth`` times."""
    return '{"a":' * depth + "1" + "}" * depth


def deep_yaml_flow(depth: int = 100_000) -> str:
    """``{a: {a: ...}}`` in YAML flow style; libyaml stops at 1000 levels."""
    return "{a: " * depth + "1" + "}" * depth


def node_bomb(size: int = 1024 * 1024) -> str:
    """``size`` bytes of ``-\n``: a sequence of ``size / 2`` nulls, no alias, far under the size
    cap, hundreds of megabytes once composed into nodes."""
    return "-\n" * (size // 2)


def nested_mapping_text(depth: int) -> str:
    """A flow mapping nested ``depth`` levels: deep, yet within libyaml's limit when < 1000."""
    return "{a: " * depth + "1" + "}" * depth


def billion_laughs(levels: int = 10, width: int = 10, *, key: str = "lol") -> str:
    """The YAML "billion laughs": ``levels`` anchors, each ``width`` aliases of the one before.

    10 x 10 is 100 alias uses (within any per-document alias count) and 10^10 nodes expanded.
    """
    lines = [f"{key}0: &{key}0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        refs = ", ".join([f"*{key}{level - 1}"] * width)
        lines.append(f"{key}{level}: &{key}{level} [{refs}]")
    return "\n".join(lines) + "\n"


def many_aliases(count: int = 500) -> str:
    """A flat document with ``count`` aliases of one small list (more than a config has)."""
    return "base: &b [1]\n" + "".join(f"k{i}: *b\n" for i in range(count))


RECURSIVE_ALIAS = "system: &s {self: *s}\nservices: {}\n"
"""A mapping that contains itself: walking it never ends."""

XML_ENTITY_BOMB = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b"]>\n<Error><Code>&lol9;</Code><Message>&lol9;</Message></Error>\n"
)
"""The XML billion laughs as an AWS error body: a parser that expands entities dies on it."""


def iot_policy_statements(count: int) -> str:
    """An IoT policy document with ``count`` copies of one statement, as JSON text."""
    statement = {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement] * count})


def aliased_iot_policy(levels: int = 6, width: int = 10) -> str:
    """A YAML IoT policy whose aliases expand to ``width ** levels`` statements (10^6)."""
    lines = ['s0: &s0 {Effect: Allow, Action: "iot:Connect", Resource: "*"}']
    for level in range(1, levels + 1):
        lines.append(f"s{level}: &s{level} [" + ", ".join([f"*s{level - 1}"] * width) + "]")
    lines.append(f"Statement: *s{levels}")
    return "Version: '2012-10-17'\n" + "\n".join(lines) + "\n"


def sparse_file(path: Path, size: int = 2 * GIB) -> Path:
    """A file of ``size`` bytes that occupies (almost) no disk: reading it would be the bug."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def fifo(path: Path) -> Path:
    """A named pipe: opening it for reading blocks until a writer appears."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def symlink(path: Path, target: str | Path) -> Path:
    """``path`` -> ``target`` (replacing whatever was at ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)
    return path


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first ``keep`` fraction of ``data`` (a PEM cut off mid-body)."""
    return data[: int(len(data) * keep)]


def garbage_base64_pem(label: str = "CERTIFICATE") -> bytes:
    """A PEM block whose body is not base64 at all."""
    body = b"this is !!! not *** base64 ###\n" * 20
    return f"-----BEGIN {label}-----\n".encode() + body + f"-----END {label}-----\n".encode()


NON_UTF8 = b"healthTopic: \xff\xfe\xfa\n"
"""Latin-1 / UTF-16 debris where UTF-8 text belongs."""
