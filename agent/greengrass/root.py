"""Read a Greengrass root: ``config/effectiveConfig.yaml`` (Java nucleus), or for nucleus lite its
initial ``config.yaml`` + ``config.d/`` under ``/etc/greengrass`` and its runtime store
``{kernel:rootPath}/config.db`` (agent/greengrass/lite_store.py), and expose the few facts the
checks build on.

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
LITE_CONFIG_DIR = Path("/etc/greengrass")
"""Where ggconfigd reads lite's initial configuration: ``config.yaml`` then every regular file of
``config.d/`` (aws-greengrass-lite modules/ggconfigd/bin/ggconfigd.c, ``config_path`` and
``config_dir``; modules/ggconfigd/src/config_load.c, ``ggconfig_load_dir``)."""
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
    store_path: Path | None = None
    """Nucleus lite: the ggconfigd store read (read-only) for the runtime configuration."""

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

        Java nucleus: only with ``interpolateComponentConfiguration: true`` (v2.6.0+).
        https://docs.aws.amazon.com/greengrass/v2/developerguide/greengrass-nucleus-component.html#greengrass-nucleus-component-configuration-interpolate-component-configuration
        Nucleus lite: never, "Recipe variable interpolation for component configuration is not
        supported" (aws-greengrass-lite docs/RECIPE_SUPPORT_CHANGES.md); its deployment writes
        DefaultConfiguration to the store as written. (How lite's IPC authorization treats a
        ``{iot:thingName}`` in a policy resource is agent/subscriptions/lite_authz.py's matter.)
        """
        if self.lite:
            return False
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


def load_root(
    root: Path = DEFAULT_ROOT, *, lite_config_dir: Path = LITE_CONFIG_DIR
) -> GreengrassRoot:
    """Find and read the configuration of the Greengrass root at ``root``.

    ``root`` may be a Java-nucleus root (``config/effectiveConfig.yaml``), a nucleus-lite config
    directory such as ``/etc/greengrass`` (``config.yaml`` + ``config.d/``), a nucleus-lite root
    path such as ``/var/lib/greengrass`` (what ``{kernel:rootPath}`` is on lite: it holds
    ggconfigd's ``config.db``, the YAML stays in ``lite_config_dir``), or a config file.
    """
    candidates = [root / "config" / "effectiveConfig.yaml", root / "config.yaml"]
    if root.is_file():
        candidates.insert(0, root)
    for candidate in candidates:
        if _is_file(candidate):
            return _read(candidate, root if candidate != root else candidate.parent)
        if candidate.parent.exists() and not _listable(candidate.parent):
            raise _denied(candidate.parent)
    from agent.greengrass.lite_store import STORE_NAME

    if _is_file(root / STORE_NAME):
        return _read_lite_root(root, lite_config_dir)
    raise GreengrassRootError(
        f"no Greengrass configuration under {root}: expected config/effectiveConfig.yaml "
        f"(nucleus), config.yaml (nucleus lite's {LITE_CONFIG_DIR}) or {STORE_NAME} (nucleus "
        "lite's root path); pass --greengrass-root DIR"
    )


def _is_file(path: Path) -> bool:
    """``path.is_file()``, where a directory the agent may not search means "run privileged"
    (a stat of a file under a mode-700 config/ fails with EACCES, not "no such file")."""
    try:
        return path.is_file()
    except PermissionError:
        raise _denied(path.parent) from None


def _denied(directory: Path) -> GreengrassRootError:
    return GreengrassRootError(
        f"cannot read {directory}: permission denied. The Greengrass config directory is "
        "root-only (mode 700); run the agent privileged (RequiresPrivilege: true) or pass "
        "--greengrass-root to a readable copy"
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

    lite = config_path.name == "config.yaml"
    if lite:
        raw = _lite_yaml(config_path.parent)
    else:
        try:
            raw = load_yaml_file(config_path)
        except InputError as exc:
            raise GreengrassRootError(f"cannot read the Greengrass configuration: {exc}") from None
    if not isinstance(raw, Mapping):
        raise GreengrassRootError(f"{config_path} does not hold a mapping of system/services")
    if not lite:
        return GreengrassRoot(root=root, config_path=config_path, lite=False, raw=raw)
    declared = _text(_mapping(raw.get("system")).get("rootPath"))
    if declared:
        root = Path(declared)
    store = _lite_store(root)
    if store is None:
        return GreengrassRoot(root=root, config_path=config_path, lite=True, raw=raw)
    return _with_store(root, config_path, raw, store)


def _read_lite_root(root: Path, config_dir: Path) -> GreengrassRoot:
    """``root`` is lite's root path: its store, over the initial YAML where that is readable."""
    store = _lite_store(root)
    assert store is not None  # load_root saw the file
    raw: Mapping[str, Any] = {}
    config_path = store[0]
    if (config_dir / "config.yaml").is_file():
        try:
            raw = _lite_yaml(config_dir)
            config_path = config_dir / "config.yaml"
        except GreengrassRootError:
            # The store holds everything ggconfigd loaded from these files at its start
            # (ggconfigd.c: ggconfig_load_file, ggconfig_load_dir), so a fragment broken since
            # then changes nothing the agent reads; the store is the device's truth.
            raw = {}
    return _with_store(root, config_path, raw, store)


def _with_store(
    root: Path, config_path: Path, raw: Mapping[str, Any], store: tuple[Path, Mapping[str, Any]]
) -> GreengrassRoot:
    """A lite root: the store's values over the initial YAML."""
    return GreengrassRoot(
        root=root,
        config_path=config_path,
        lite=True,
        raw=_overlay(raw, store[1]),
        store_path=store[0],
    )


def _lite_yaml(config_dir: Path) -> Mapping[str, Any]:
    """``config.yaml``, then every regular file of ``config.d/`` merged over it, as ggconfigd
    loads them (modules/ggconfigd/src/config_load.c: every DT_REG entry, whatever its name, in
    readdir order; sorted here so that a run is reproducible)."""
    from agent.config.files import InputError, load_yaml_file
    from agent.config.layering import deep_merge

    config_path = config_dir / "config.yaml"
    try:
        raw = load_yaml_file(config_path)
        fragments = config_dir / "config.d"
        if fragments.is_dir():
            for extra in sorted(p for p in fragments.iterdir() if p.is_file()):
                fragment = load_yaml_file(extra)
                if not isinstance(fragment, Mapping):
                    raise InputError(f"{extra} does not hold a mapping of system/services")
                for key in ("system", "services"):
                    if key in fragment and not isinstance(fragment[key], Mapping):
                        # Merged as it stands it would replace every component's configuration
                        # (the agent's own included) without a word.
                        raise InputError(
                            f"{extra} sets {key} to a {type(fragment[key]).__name__}, not a "
                            "mapping; it would replace the whole block"
                        )
                raw = deep_merge(_mapping(raw), fragment)
    except InputError as exc:
        raise GreengrassRootError(f"cannot read the Greengrass configuration: {exc}") from None
    except OSError as exc:
        raise GreengrassRootError(
            f"cannot read the Greengrass configuration in {config_dir}: {exc.strerror}"
        ) from None
    if not isinstance(raw, Mapping):
        raise GreengrassRootError(f"{config_path} does not hold a mapping of system/services")
    return raw


def _lite_store(root: Path) -> tuple[Path, Mapping[str, Any]] | None:
    """ggconfigd's store under lite's root path, read-only; None when there is none."""
    from agent.greengrass.lite_store import STORE_NAME, LiteStoreError, read_store

    path = root / STORE_NAME
    if not path.exists():
        return None
    try:
        return path, read_store(path)
    except LiteStoreError as exc:
        raise GreengrassRootError(str(exc)) from None


def _overlay(initial: Mapping[str, Any], store: Mapping[str, Any]) -> Mapping[str, Any]:
    """The store over the initial YAML: ggconfigd loads the files with timestamp 2 at each start
    and a deployment's writes carry the current time, so the store's values win
    (modules/ggconfigd/src/config_load.c, "merge to key ... with timestamp 2")."""
    from agent.config.layering import deep_merge

    return deep_merge(_mapping(initial), _mapping(store))
