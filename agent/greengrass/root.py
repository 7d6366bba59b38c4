"""Read a Greengrass root: ``config/effectiveConfig.yaml`` (Java nucleus) or ``config.yaml`` +
``config.d/`` (nucleus lite), and expose the few facts the checks build on.

Facts: https://docs.aws.amazon.com/greengrass/v2/developerguide/greengrass-nucleus-component.html
and SPEC "Greengrass facts". Paths in ``system`` are used as written (absolute on a real device);
a relative path is taken relative to the root, which is what the demo and tests rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import AgentError

DEFAULT_ROOT = Path("/greengrass/v2")
NUCLEUS_NAMES = ("aws.greengrass.Nucleus", "aws.greengrass.NucleusLite")
PKCS11_PROVIDER = "aws.greengrass.crypto.Pkcs11Provider"
THING_NAME_ENV = "AWS_IOT_THING_NAME"
"""The thing name the nucleus gives every component in its environment."""
UNKNOWN_THING = "unknown-thing"
"""The thing name a report carries when neither the configuration nor the environment has one."""


class GreengrassRootError(AgentError):
    """The Greengrass root cannot be found or its configuration cannot be read."""


@dataclass(frozen=True)
class GreengrassRoot:
    """What the agent knows of one Greengrass installation."""

    root: Path
    config_path: Path
    lite: bool
    raw: Mapping[str, Any]

    @property
    def system(self) -> Mapping[str, Any]:
        """The ``system`` block (device identity paths, thing name)."""
        return _mapping(self.raw.get("system"))

    @property
    def services(self) -> Mapping[str, Any]:
        """Every service (component) entry by name."""
        return _mapping(self.raw.get("services"))

    def service_configuration(self, name: str) -> Mapping[str, Any]:
        """``services.<name>.configuration``, empty when absent or malformed."""
        return _mapping(_mapping(self.services.get(name)).get("configuration"))

    @property
    def nucleus_name(self) -> str:
        """The nucleus component present in this root."""
        for name in NUCLEUS_NAMES:
            if name in self.services:
                return name
        return NUCLEUS_NAMES[1] if self.lite else NUCLEUS_NAMES[0]

    @property
    def nucleus(self) -> Mapping[str, Any]:
        """The nucleus configuration (region, endpoints, role alias...)."""
        return self.service_configuration(self.nucleus_name)

    @property
    def thing_name(self) -> str | None:
        """``system.thingName``."""
        return _text(self.system.get("thingName"))

    def device_thing_name(self, env: Mapping[str, str]) -> str | None:
        """``system.thingName``, else the component environment's ``AWS_IOT_THING_NAME``."""
        return self.thing_name or env.get(THING_NAME_ENV) or None

    def reported_thing_name(self, env: Mapping[str, str]) -> str:
        """The thing name reports and transports use: :meth:`device_thing_name` or
        ``unknown-thing``."""
        return self.device_thing_name(env) or UNKNOWN_THING

    @property
    def region(self) -> str | None:
        """The nucleus ``awsRegion``."""
        return _text(self.nucleus.get("awsRegion"))

    @property
    def iot_data_endpoint(self) -> str | None:
        """The nucleus ``iotDataEndpoint``."""
        return _text(self.nucleus.get("iotDataEndpoint"))

    @property
    def role_alias(self) -> str | None:
        """The nucleus ``iotRoleAlias``: the token exchange role's alias."""
        return _text(self.nucleus.get("iotRoleAlias"))

    @property
    def credentials_endpoint(self) -> str | None:
        """The nucleus ``iotCredEndpoint``: the AWS IoT credentials provider."""
        return _text(self.nucleus.get("iotCredEndpoint"))

    @property
    def interpolates_configuration(self) -> bool:
        """Whether the nucleus replaces recipe variables such as ``{iot:thingName}`` in
        component configuration.

        Java nucleus: only with ``interpolateComponentConfiguration: true`` (v2.6.0+). Nucleus
        lite is given the benefit of the doubt.
        https://docs.aws.amazon.com/greengrass/v2/developerguide/greengrass-nucleus-component.html#greengrass-nucleus-component-configuration-interpolate-component-configuration
        """
        if self.lite:
            return True
        value = self.nucleus.get("interpolateComponentConfiguration")
        return value is True or str(value).strip().lower() == "true"

    def path(self, key: str) -> str | None:
        """A ``system`` path (``certificateFilePath``...), resolved against the root if relative.

        ``pkcs11:`` URIs (RFC 7512) are returned unchanged.
        """
        value = _text(self.system.get(key))
        if value is None or value.startswith("pkcs11:"):
            return value
        p = Path(value)
        return str(p if p.is_absolute() else self.root / p)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def load_root(root: Path = DEFAULT_ROOT) -> GreengrassRoot:
    """Find and read the configuration of the Greengrass root at ``root``.

    ``root`` may be a Java-nucleus root (``config/effectiveConfig.yaml``), a nucleus-lite config
    directory such as ``/etc/greengrass`` (``config.yaml`` + ``config.d/*.yaml``), or a config file.
    """
    candidates = [root / "config" / "effectiveConfig.yaml", root / "config.yaml"]
    if root.is_file():
        candidates.insert(0, root)
    for candidate in candidates:
        if candidate.is_file():
            return _read(candidate, root if candidate != root else candidate.parent)
        if candidate.parent.exists() and not _listable(candidate.parent):
            raise GreengrassRootError(
                f"cannot read {candidate.parent}: permission denied. The Greengrass config "
                "directory is root-only (mode 700); run the agent privileged "
                "(RequiresPrivilege: true) or pass --greengrass-root to a readable copy"
            )
    raise GreengrassRootError(
        f"no Greengrass configuration under {root}: expected config/effectiveConfig.yaml "
        "(nucleus) or config.yaml (nucleus lite); pass --greengrass-root DIR"
    )


def _listable(directory: Path) -> bool:
    try:
        next(iter(directory.iterdir()), None)
    except PermissionError:
        return False
    except OSError:
        return True
    return True


def _read(config_path: Path, root: Path) -> GreengrassRoot:
    # Imported here: the CLI imports this module for DEFAULT_ROOT, and `--version` or a usage
    # error must not pay for PyYAML and pydantic.
    from agent.config.files import InputError, load_yaml_file
    from agent.config.layering import deep_merge

    lite = config_path.name == "config.yaml"
    try:
        raw = load_yaml_file(config_path)
        if lite:
            for extra in sorted((config_path.parent / "config.d").glob("*.yaml")):
                raw = deep_merge(_mapping(raw), _mapping(load_yaml_file(extra)))
    except InputError as exc:
        raise GreengrassRootError(f"cannot read the Greengrass configuration: {exc}") from None
    if not isinstance(raw, Mapping):
        raise GreengrassRootError(f"{config_path} does not hold a mapping of system/services")
    declared = _text(_mapping(raw.get("system")).get("rootpath" if not lite else "rootPath"))
    if lite and declared:
        root = Path(declared)
    return GreengrassRoot(root=root, config_path=config_path, lite=lite, raw=raw)
