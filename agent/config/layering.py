"""Layer the configuration sources into one validated AgentConfig.

Sources, later wins (SPEC, Configuration): defaults < the agent's own
``services.<componentName>.configuration`` in the Greengrass configuration (or, as a component,
what IPC ``GetConfiguration`` returns) < ``--config FILE`` < command-line flags. Every source is
merged as plain data first and validated once, so an error names the key path whichever source it
came from. Finding the sources (the Greengrass root, the file) is the caller's: see
``agent.runner.load_settings``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config.models import DEFAULT_COMPONENT_NAME, AgentConfig
from agent.errors import ConfigError

Layer = tuple[Mapping[str, Any], str]
"""Plain data and the source it came from, as error messages name it."""


def component_name(file_layer: Mapping[str, Any], flag_layer: Mapping[str, Any]) -> str:
    """The component whose Greengrass configuration is the lowest layer (flags, then the file)."""
    return str(
        flag_layer.get("componentName") or file_layer.get("componentName") or DEFAULT_COMPONENT_NAME
    )


def layered_config(layers: Sequence[Layer]) -> AgentConfig:
    """Validate ``layers`` (lowest first) one by one, then merged; ConfigError names the source.

    Each layer is valid on its own (every key has a default), so validating them one by one names
    the file to fix; the merge is then validated once more as a whole.
    """
    for data, source in layers:
        if data:
            _shallow_enough(data, source)
            build_config(data, source=source)
    return build_config(*(data for data, _ in layers))


def _shallow_enough(data: Mapping[str, Any], source: str) -> None:
    from agent.config.files import MAX_CONFIG_DEPTH, depth_exceeds

    if depth_exceeds(dict(data), MAX_CONFIG_DEPTH):
        raise ConfigError(
            f"invalid {source}: nested deeper than {MAX_CONFIG_DEPTH} levels (nesting depth); "
            "the agent's configuration needs five"
        )


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge two plain-data trees; mappings merge key by key, everything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def build_config(*layers: Mapping[str, Any], source: str = "configuration") -> AgentConfig:
    """Validate the merge of ``layers`` (lowest first); a bad key raises ConfigError naming it."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    try:
        return AgentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """One paragraph naming each bad key path, e.g. ``certificates.warnDays``."""
    problems = []
    unknown: set[str] = set()
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{path}'")
            unknown.add(path)
        else:
            # Not "'key': message": the scrubbing of secrets reads "userPin': X" as a PIN and
            # would redact the message; pydantic's messages never echo a secret's value.
            problems.append(f"'{path}' - {err['msg']}")
    message = f"invalid {source}: " + "; ".join(problems)
    # The agent has a ``system`` block of its own (system.refreshSeconds...), so a nucleus
    # configuration given as --config no longer fails on 'system' alone: say what it is.
    if unknown & _GREENGRASS_KEYS:
        message += (
            " - this is a Greengrass configuration (the nucleus's system and services blocks), "
            "not the agent's: name its root with --greengrass-root instead"
        )
    return message


_GREENGRASS_KEYS = frozenset(
    {
        "services",
        "system.certificateFilePath",
        "system.privateKeyPath",
        "system.rootCaPath",
        "system.rootpath",
        "system.rootPath",
        "system.thingName",
    }
)
"""Keys of a Greengrass ``effectiveConfig.yaml`` / nucleus-lite ``config.yaml``."""


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a ``--config`` file (YAML or JSON, JSON being YAML) as a mapping."""
    from agent.config.files import InputError, load_yaml_file

    try:
        data = load_yaml_file(path)
    except InputError as exc:
        raise ConfigError(f"cannot read --config {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid --config {path}: the top level must be a mapping of keys")
    return data
