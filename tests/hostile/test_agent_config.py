"""The agent's own configuration, broken every way we know: each ``--config`` file and each bad
Greengrass configuration ends in exit 3 with a one-paragraph message that names the problem
(the key path, the file, the limit) — never a traceback, a hang or a report."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SHARED_FIXTURES
from tests.hostile import inputs
from tests.hostile.conftest import Device, assert_clean_exit_3, cli_env, run_cli

Writer = Callable[[Path], Path]


@dataclass(frozen=True)
class ConfigCase:
    """One broken ``--config`` file and a fragment the error message must contain."""

    name: str
    write: Writer
    fragment: str


def text(content: str | bytes, suffix: str = ".yaml") -> Writer:
    """A writer of a file holding ``content``."""

    def write(directory: Path) -> Path:
        path = directory / f"agent-config{suffix}"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write


def data(value: object) -> Writer:
    """A writer of a JSON ``--config`` file."""
    return text(json.dumps(value), ".json")


def special(build: Callable[[Path], Path]) -> Writer:
    """A writer of a special file (FIFO, sparse, symlink, directory)."""
    return lambda directory: build(directory / "agent-config.yaml")


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


def _shared(relative: str) -> Writer:
    return lambda directory: Path(shutil.copy(SHARED_FIXTURES / relative, directory))


CONFIG_CASES = [
    # --- safe parsing -------------------------------------------------------------------------
    ConfigCase("billion_laughs", text(inputs.billion_laughs()), "aliases that expand"),
    ConfigCase("recursive_alias", text("certificates: &c {x: *c}\n"), "recursive"),
    ConfigCase("too_many_aliases", text(inputs.many_aliases()), "aliases"),
    ConfigCase("json_nested_100k_deep", text(inputs.deep_json(), ".json"), "nesting depth"),
    ConfigCase("yaml_nested_100k_deep", text(inputs.deep_yaml_flow()), "nesting depth"),
    # Within libyaml's 1000 levels, beyond what merging and validation can recurse through.
    ConfigCase(
        "access_control_990_deep",
        text("accessControl: " + inputs.deep_yaml_flow(990)),
        "nesting depth",
    ),
    # No alias, 1 MiB: half a million nodes (once 258 MB and 4.4 s).
    ConfigCase("yaml_node_bomb_1_mib", text(inputs.node_bomb()), "YAML nodes"),
    ConfigCase("non_utf8_bytes", text(inputs.NON_UTF8), "not UTF-8"),
    ConfigCase("nul_byte_in_the_text", text(b"intervalSeconds: 5\x00\n"), "not valid YAML"),
    ConfigCase(
        "python_object_tag",
        text("healthTopic: !!python/object/apply:os.system ['id']\n"),
        "not valid YAML",
    ),
    ConfigCase("truncated_flow_mapping", text("s3: {buckets: [{name: a"), "not valid YAML at line"),
    ConfigCase("top_level_list", text("- intervalSeconds: 5\n"), "top level must be a mapping"),
    ConfigCase("top_level_scalar", text("just words\n"), "top level must be a mapping"),
    # --- reading ------------------------------------------------------------------------------
    ConfigCase("missing_file", lambda d: d / "nowhere.yaml", "does not exist"),
    ConfigCase("directory", special(_directory), "is a directory"),
    ConfigCase("fifo", special(inputs.fifo), "not a regular file"),
    ConfigCase("dev_zero_symlink", special(lambda p: inputs.symlink(p, "/dev/zero")), "regular"),
    ConfigCase("sparse_2_gib", special(inputs.sparse_file), "larger than"),
    # --- shape and real limits ----------------------------------------------------------------
    ConfigCase("typo_in_a_key", data({"certificates": {"warnDayz": 3}}), "certificates.warnDayz"),
    ConfigCase(
        "effective_config_passed_as_config",
        _shared("effective-config/greengrass-lite-sample-nucleus-config.yaml"),
        "this is a Greengrass configuration",
    ),
    ConfigCase("topic_with_plus", data({"healthTopic": "dt/+/health"}), "healthTopic"),
    ConfigCase("topic_with_hash", data({"healthTopic": "dt/gghealth/#"}), "wildcards"),
    ConfigCase("topic_257_bytes", data({"healthTopic": "t" * 257}), "256 bytes"),
    ConfigCase("topic_258_utf8_bytes", data({"healthTopic": "é" * 129}), "256 bytes"),
    ConfigCase("topic_8_slashes", data({"healthTopic": "a/b/c/d/e/f/g/h/i"}), "7 slashes"),
    ConfigCase("topic_with_nul", data({"healthTopic": "dt/gg\u0000/health"}), "NUL"),
    ConfigCase("topic_empty", data({"healthTopic": ""}), "empty"),
    ConfigCase("topic_reserved_dollar", data({"healthTopic": "$aws/things/x/shadow"}), "reserved"),
    ConfigCase("interval_zero", data({"intervalSeconds": 0}), "intervalSeconds"),
    ConfigCase("interval_negative", data({"intervalSeconds": -300}), "intervalSeconds"),
    ConfigCase("interval_yaml_yes", text("intervalSeconds: yes\n"), "true/false"),
    ConfigCase("interval_words", data({"intervalSeconds": "every hour"}), "intervalSeconds"),
    ConfigCase("interval_fraction", data({"intervalSeconds": 1.5}), "fractional"),
    ConfigCase("interval_infinite", text("intervalSeconds: .inf\n"), "intervalSeconds"),
    ConfigCase("interval_a_year", data({"intervalSeconds": 31_536_000}), "intervalSeconds"),
    ConfigCase("warn_days_negative", data({"certificates": {"warnDays": -1}}), "warnDays"),
    ConfigCase("transport_unknown", data({"transport": "carrier-pigeon"}), "'transport'"),
    ConfigCase(
        "bucket_access_unknown",
        data({"s3": {"buckets": [{"name": "my-bucket", "access": "delete"}]}}),
        "s3.buckets.0.access",
    ),
    ConfigCase(
        "bucket_name_path_traversal",
        data({"s3": {"buckets": [{"name": "../../etc"}]}}),
        "s3.buckets.0.name",
    ),
    ConfigCase("probe_prefix_empty", data({"s3": {"probePrefix": ""}}), "s3.probePrefix"),
    ConfigCase("probe_prefix_root", data({"s3": {"probePrefix": "/"}}), "s3.probePrefix"),
    ConfigCase(
        "request_timeout_zero", data({"s3": {"requestTimeoutSeconds": 0}}), "requestTimeoutSeconds"
    ),
    ConfigCase(
        "extra_path_with_nul",
        data({"certificates": {"extraPaths": ["/etc/ssl/a\u0000b"]}}),
        "certificates.extraPaths",
    ),
    ConfigCase(
        "extra_paths_a_mapping",
        data({"certificates": {"extraPaths": {"a": 1}}}),
        "certificates.extraPaths",
    ),
    ConfigCase("port_out_of_range", data({"mqtt": {"port": 70000}}), "mqtt.port"),
    ConfigCase("component_name_a_list", data({"componentName": ["a"]}), "componentName"),
    ConfigCase(
        "access_control_not_a_mapping", data({"accessControl": "allow all"}), "accessControl"
    ),
]


@pytest.mark.parametrize("case", CONFIG_CASES, ids=lambda c: c.name)
def test_broken_config_file_exits_3_naming_the_problem(
    case: ConfigCase, healthy: Device, tmp_path: Path
) -> None:
    work = tmp_path / "case"
    work.mkdir()
    config = case.write(work)
    proc = run_cli(
        ["check", "--only", "certificate", "--greengrass-root", str(healthy.root),
         "--config", str(config)],
        cli_env(tmp_path),
    )  # fmt: skip
    assert_clean_exit_3(proc, case.fragment)


def test_the_harness_accepts_a_valid_config(healthy: Device, tmp_path: Path) -> None:
    """Control: the same command with a good file and a BOM is not refused."""
    config = tmp_path / "good.yaml"
    config.write_bytes(b"\xef\xbb\xbfintervalSeconds: 60\nhealthTopic: $aws/rules/Health/dt/x\n")
    proc = run_cli(
        ["check", "--only", "certificate", "--greengrass-root", str(healthy.root),
         "--config", str(config), "--format", "json"],
        cli_env(tmp_path),
    )  # fmt: skip
    assert proc.returncode in (0, 1, 2), proc.stderr
    assert json.loads(proc.stdout)["checks"]


# --- the Greengrass configuration the agent's settings come from ---------------------------------


@dataclass(frozen=True)
class RootCase:
    """A broken Greengrass configuration that leaves the agent without valid settings."""

    name: str
    breaks: Callable[[Device], None]
    fragment: str


def _write_config(content: str | bytes) -> Callable[[Device], None]:
    def breaks(dev: Device) -> None:
        raw = content.encode() if isinstance(content, str) else content
        dev.config_path.write_bytes(raw)

    return breaks


def _agent_value(**values: object) -> Callable[[Device], None]:
    def breaks(dev: Device) -> None:
        dev.edit(lambda d: d["services"]["gghealth.HealthAgent"]["configuration"].update(values))

    return breaks


def _deep_agent_access_control(dev: Device) -> None:
    """The agent's own accessControl nested 990 levels (within libyaml's 1000)."""
    dev.edit(
        lambda d: d["services"]["gghealth.HealthAgent"]["configuration"].update(
            accessControl="DEEP-PLACEHOLDER"
        )
    )
    text = dev.config_path.read_text()
    dev.config_path.write_text(text.replace("DEEP-PLACEHOLDER", inputs.deep_yaml_flow(990)))


def _lite(extra: str) -> Callable[[Device], None]:
    """Turn the root into a nucleus-lite config dir whose ``config.d`` holds ``extra``."""

    def breaks(dev: Device) -> None:
        lite = SHARED_FIXTURES / "effective-config" / "greengrass-lite-sample-nucleus-config.yaml"
        dev.config_path.unlink()
        (dev.root / "config.yaml").write_text(lite.read_text())
        (dev.root / "config.d").mkdir()
        (dev.root / "config.d" / "50-deploy.yaml").write_text(extra)

    return breaks


def _sparse_config(dev: Device) -> None:
    dev.config_path.unlink()
    inputs.sparse_file(dev.config_path)


def _special_config(build: Callable[[Path], Path]) -> Callable[[Device], None]:
    def breaks(dev: Device) -> None:
        dev.config_path.unlink()
        build(dev.config_path)

    return breaks


ROOT_CASES = [
    RootCase("billion_laughs", _write_config(inputs.billion_laughs()), "aliases that expand"),
    RootCase("recursive_alias", _write_config(inputs.RECURSIVE_ALIAS), "recursive"),
    RootCase("nested_100k_deep", _write_config(inputs.deep_yaml_flow()), "nesting depth"),
    RootCase("agent_access_control_990_deep", _deep_agent_access_control, "nesting depth"),
    RootCase("node_bomb_1_mib", _write_config(inputs.node_bomb()), "YAML nodes"),
    RootCase("non_utf8", _write_config(b"system:\n  thingName: \xe9t\xe9\n"), "not UTF-8"),
    RootCase("top_level_list", _write_config("- system\n- services\n"), "mapping"),
    RootCase("sparse_2_gib", _sparse_config, "larger than"),
    RootCase("fifo", _special_config(inputs.fifo), "no Greengrass configuration"),
    RootCase(
        "dev_zero_symlink",
        _special_config(lambda p: inputs.symlink(p, "/dev/zero")),
        "no Greengrass configuration",
    ),
    RootCase("agent_interval_words", _agent_value(intervalSeconds="soon"), "intervalSeconds"),
    RootCase(
        "agent_topic_wildcard",
        _agent_value(healthTopic="dt/#"),
        "services.gghealth.HealthAgent.configuration",
    ),
    RootCase("agent_unknown_key", _agent_value(warnDays=3), "unknown key 'warnDays'"),
    RootCase("lite_config_d_not_yaml", _lite("services: [unclosed\n"), "50-deploy.yaml"),
    RootCase(
        "lite_config_d_services_a_list", _lite("services: [1, 2]\n"), "sets services to a list"
    ),
    RootCase("lite_config_d_bomb", _lite(inputs.billion_laughs()), "aliases that expand"),
]


@pytest.mark.parametrize("case", ROOT_CASES, ids=lambda c: c.name)
def test_broken_greengrass_configuration_exits_3_naming_the_problem(
    case: RootCase, healthy: Device, tmp_path: Path
) -> None:
    case.breaks(healthy)
    proc = run_cli(
        ["check", "--only", "certificate", "--greengrass-root", str(healthy.root)],
        cli_env(tmp_path),
    )
    assert_clean_exit_3(proc, case.fragment)
