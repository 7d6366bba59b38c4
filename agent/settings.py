"""Assemble the configuration from its layers and find the Greengrass root it applies to.

Layers, later wins (SPEC, Configuration): defaults < ``services.<componentName>.configuration``
in the Greengrass configuration < ``--config FILE`` < command-line flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import DEFAULT_COMPONENT_NAME, AgentConfig, build_config, load_config_file
from agent.greengrass.root import GreengrassRoot, load_root


@dataclass(frozen=True)
class Settings:
    """A validated configuration together with the Greengrass root it was read from."""

    config: AgentConfig
    greengrass: GreengrassRoot


def load_settings(
    greengrass_root: Path,
    config_file: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    component_configuration: Mapping[str, Any] | None = None,
) -> Settings:
    """Read every layer and validate; raises ConfigError or GreengrassRootError.

    ``component_configuration`` replaces the component layer of ``effectiveConfig.yaml`` when the
    agent runs as a component and reads its own configuration over IPC (``GetConfiguration``).
    """
    file_layer = load_config_file(config_file) if config_file else {}
    flag_layer = dict(flags or {})
    component = str(
        flag_layer.get("componentName") or file_layer.get("componentName") or DEFAULT_COMPONENT_NAME
    )
    gg = load_root(greengrass_root)
    if component_configuration is None:
        component_layer = (
            dict(gg.service_configuration(component)),
            f"services.{component}.configuration in {gg.config_path}",
        )
    else:
        component_layer = (dict(component_configuration), f"IPC configuration of {component}")
    layers = [
        component_layer,
        (file_layer, f"--config {config_file}"),
        (flag_layer, "command-line flags"),
    ]
    # Each layer is valid on its own (every key has a default), so validating them one by one
    # names the file to fix; the merge is then validated once more as a whole.
    for data, source in layers:
        if data:
            build_config(data, source=source)
    config = build_config(*(data for data, _ in layers))
    return Settings(config=config, greengrass=gg)
