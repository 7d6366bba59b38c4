"""Bounded, safe reading of the YAML and JSON files the agent is given.

Every file is read with a size cap (an attacker or a runaway log must not make the agent read
gigabytes), parsed with PyYAML's safe loader (the C one when present: effectiveConfig.yaml files
of real devices run to megabytes), and refused when it uses more aliases than a real config does,
so a "billion laughs" document cannot blow up whoever walks the tree afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from agent.errors import AgentError

MAX_CONFIG_BYTES = 32 * 1024 * 1024
MAX_ALIASES = 100

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


def read_text_bounded(path: Path, limit: int = MAX_CONFIG_BYTES) -> str:
    """Read at most ``limit`` bytes of a UTF-8 text file, refusing anything larger."""
    try:
        with open(path, "rb") as fh:
            if not os.path.isfile(path):
                raise InputError(f"{path} is not a regular file")
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except PermissionError:
        raise InputError(f"{path} is not readable by this user (permission denied)") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(f"{path} is larger than {limit} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    return text.removeprefix("\ufeff")  # a BOM some Windows editors write


def load_yaml_text(text: str, *, origin: str) -> Any:
    """Parse one YAML (or JSON) document safely; errors name ``origin`` and the line."""
    try:
        loader = _BoundedLoader(text)
        try:
            return loader.get_single_data()
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


def load_yaml_file(path: Path, limit: int = MAX_CONFIG_BYTES) -> Any:
    """Read and parse a YAML or JSON file with the size cap and alias limit."""
    return load_yaml_text(read_text_bounded(path, limit), origin=str(path))
