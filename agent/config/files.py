"""Bounded, safe reading of the YAML and JSON files the agent is given.

Every file is read with a size cap (an attacker or a runaway log must not make the agent read
gigabytes), parsed with PyYAML's safe loader (the C one when present: effectiveConfig.yaml files
of real devices run to megabytes), and refused when it uses more aliases than a real config does,
when its aliases would expand it by more than :data:`MAX_ALIAS_EXPANSION` nodes, or when an alias
refers to the node holding it, so a "billion laughs" document (or a self-referential one) cannot
blow up whoever walks the tree afterwards. Without any alias, size alone is no bound either: a
megabyte of ``-\n`` lines is half a million nodes, several hundred megabytes once composed, so a
document with more than :data:`MAX_YAML_NODES` nodes is refused from the parser's events, before
a node is built. libyaml itself refuses nesting deeper than 1000 levels; the agent's own
configuration is held to :data:`MAX_CONFIG_DEPTH` where its layers are merged.
Files are opened non-blocking and checked with ``fstat`` before a byte is read: a FIFO cannot
hang the agent and a 2 GiB sparse file costs one ``fstat``.

JSON from the network goes through :func:`loads_json`, which turns nesting too deep for Python's
recursive decoder into a ValueError like any other malformed answer.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from agent.errors import AgentError

MAX_CONFIG_BYTES = 32 * 1024 * 1024
MAX_IDENTITY_FILE_BYTES = 1024 * 1024
"""A certificate, private key, CA bundle or AWS profile file (the largest real ones: ~250 KB)."""
MAX_ALIASES = 100
MAX_ALIAS_EXPANSION = 100_000
"""Nodes that aliases may add to a document when expanded (real configurations add none)."""
MAX_JSON_DEPTH = 128
"""Nesting levels a JSON answer may have (AWS documents use fewer than ten)."""
MAX_YAML_NODES = 200_000
"""Nodes a YAML document may hold: ~80 MB composed; a large real effectiveConfig holds ~20,000."""
MAX_CONFIG_DEPTH = 500
"""Nesting levels of the agent's own configuration: it needs five, and validation names an
unknown key at any depth up to here; deeper is refused before the recursive merge and
validation, which a 990-level ``accessControl`` drove into Python's recursion limit (1000)."""
_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)

_BaseLoader: type[yaml.SafeLoader]
try:
    _BaseLoader = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader


class InputError(AgentError):
    """An input file is missing, too large, unreadable or not well-formed."""


class _BoundedLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader that counts alias uses while constructing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._alias_uses = 0

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.constructed_objects:
            self._alias_uses += 1
            if self._alias_uses > MAX_ALIASES:
                raise InputError(f"uses more than {MAX_ALIASES} YAML aliases; refusing to expand")
        return super().construct_object(node, deep=deep)


def read_bytes_bounded(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """Read at most ``limit`` bytes of a regular file, refusing anything larger or not regular.

    The one way the agent reads a file a configuration or the environment names: opened
    non-blocking (a FIFO cannot hang it), checked with ``fstat`` before a byte is read (a device
    or a 3 GiB sparse file costs one call), read as ``limit + 1`` bytes (a file that grows is
    still refused).
    """
    fd = _open_regular(path, limit)
    try:
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew since fstat
        raise InputError(f"{path} is larger than {limit} bytes")
    return data


def vet_file(path: Path, limit: int) -> None:
    """Check a file that a library will read itself (awscrt's TLS and profile loaders read
    without bound): a regular file of at most ``limit`` bytes; InputError otherwise."""
    os.close(_open_regular(path, limit))


def _open_regular(path: Path, limit: int) -> int:
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except PermissionError:
        raise InputError(f"{path} is not readable by this user (permission denied)") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc}") from None
    except ValueError:  # os.open refuses a path with an embedded NUL byte
        raise InputError(f"{path!r} is not a usable path (it holds a NUL byte)") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{path} is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path} is not a regular file")
        if st.st_size > limit:
            raise InputError(f"{path} is larger than {limit} bytes")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_text_bounded(path: Path, limit: int = MAX_CONFIG_BYTES) -> str:
    """Read at most ``limit`` bytes of a UTF-8 text file, refusing anything larger."""
    data = read_bytes_bounded(path, limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    return text.removeprefix("\ufeff")  # a BOM some Windows editors write


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_expansion(root: yaml.Node, allowance: int = MAX_ALIAS_EXPANSION) -> None:
    """Refuse a node graph whose aliases expand it by more than ``allowance`` nodes or loop.

    Counting alias uses alone is not enough: 10 levels of 10 aliases are 100 uses and expand
    to 10^10 nodes. The expanded size is computed on the composed graph (shared nodes counted
    once per use) without expanding anything, iteratively (libyaml allows 1000 levels).
    """
    weight: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            weight[key] = 1 + sum(weight[id(child)] for child in _children(node))
            continue
        if key in weight:
            continue
        if key in open_nodes:
            raise InputError("holds an alias to the node that contains it (a recursive structure)")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    if weight[id(root)] - len(weight) > allowance:
        raise InputError(
            f"uses aliases that expand it by more than {allowance} nodes; refusing to expand"
        )


def load_yaml_text(text: str, *, origin: str) -> Any:
    """Parse one YAML (or JSON) document safely; errors name ``origin`` and the line."""
    try:
        # Every node takes at least two characters ("-\n"), so a shorter text cannot hold too many.
        if len(text) > 2 * MAX_YAML_NODES:
            check_node_count(text)
        loader = _BoundedLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if "*" in text:  # no alias without an asterisk: skip the walk for plain files
                check_expansion(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except InputError as exc:
        raise InputError(f"{origin} {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{origin} is not valid YAML{where}: {exc.problem}") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise InputError(f"{origin} is not valid YAML: {exc}") from None


def check_node_count(text: str, limit: int = MAX_YAML_NODES) -> None:
    """Refuse a document of more than ``limit`` nodes, counted on the parser's events (no node
    is built: the count costs the parse, not the memory)."""
    parser = _BaseLoader(text)
    try:
        nodes = 0
        while parser.check_event():
            if isinstance(parser.get_event(), _NODE_EVENTS):  # type: ignore[no-untyped-call]
                nodes += 1
                if nodes > limit:
                    raise InputError(f"holds more than {limit} YAML nodes; refusing to build them")
    finally:
        parser.dispose()


def load_yaml_file(path: Path, limit: int = MAX_CONFIG_BYTES) -> Any:
    """Read and parse a YAML or JSON file with the size cap and alias limit."""
    return load_yaml_text(read_text_bounded(path, limit), origin=str(path))


def loads_json(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` whose only failure is ValueError, also for nesting deeper than ``max_depth``.

    Python's decoder recurses once per nesting level; a body of 100,000 ``[`` would otherwise
    surface as a RecursionError from wherever the answer happened to be parsed, and where that
    happens depends on the interpreter's recursion limit. The explicit depth limit makes the
    verdict the same everywhere, and keeps what is returned safe for recursive consumers.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"JSON nested too deeply (more than {max_depth} levels)") from None
    if depth_exceeds(value, max_depth):
        raise ValueError(f"JSON nested too deeply (more than {max_depth} levels)")
    return value


def depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether ``value`` (plain data) nests lists and dicts deeper than ``max_depth`` (walked
    without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
