"""Configuration layering: effectiveConfig.yaml < --config FILE < flags; errors name the source."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config.layering import build_config, load_config_file
from agent.errors import ConfigError
from agent.runner import load_settings


def _root(tmp_path: Path, component_config: dict | None = None) -> Path:
    services = {"aws.greengrass.Nucleus": {"configuration": {"awsRegion": "eu-west-1"}}}
    if component_config is not None:
        services["gghealth.HealthAgent"] = {"configuration": component_config}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "effectiveConfig.yaml").write_text(
        yaml.safe_dump({"system": {"thingName": "t1"}, "services": services})
    )
    return tmp_path


def test_layers_later_wins(tmp_path: Path) -> None:
    root = _root(tmp_path, {"intervalSeconds": 60, "certificates": {"warnDays": 45}})
    cfg_file = tmp_path / "agent.yaml"
    cfg_file.write_text("certificates:\n  criticalDays: 3\nintervalSeconds: 120\n")
    settings = load_settings(root, cfg_file, {"intervalSeconds": 10})
    c = settings.config
    assert c.interval_seconds == 10  # flag beats file beats effectiveConfig
    assert c.certificates.warn_days == 45  # from effectiveConfig, merged key by key
    assert c.certificates.critical_days == 3  # from the file
    assert settings.greengrass.thing_name == "t1"


def test_json_config_file_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text('{"s3": {"buckets": [{"name": "my-bucket", "access": "readwrite"}]}}')
    c = build_config(load_config_file(f))
    assert c.s3.buckets[0].name == "my-bucket"
    assert c.s3.buckets[0].access.value == "readwrite"


def test_error_names_the_file_it_came_from(tmp_path: Path) -> None:
    root = _root(tmp_path, {"intervalSeconds": "soon"})
    with pytest.raises(ConfigError) as err:
        load_settings(root)
    assert "effectiveConfig.yaml" in str(err.value)
    assert "intervalSeconds" in str(err.value)


def test_access_control_is_part_of_the_component_configuration(tmp_path: Path) -> None:
    acl = {"aws.greengrass.ipc.mqttproxy": {"p1": {"operations": ["*"], "resources": ["a"]}}}
    c = load_settings(_root(tmp_path, {"accessControl": acl})).config
    assert c.access_control == acl


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"- just\n- a list\n", "must be a mapping"),
        (b"a: [1, 2\n", "line 2"),
        (b"a: \xff\xfe\n", "not UTF-8"),
    ],
)
def test_config_file_garbage_gets_a_clear_message(
    tmp_path: Path, text: bytes, expected: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_bytes(text)
    with pytest.raises(ConfigError) as err:
        load_config_file(f)
    assert expected in str(err.value)
    assert str(f) in str(err.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "nope.yaml")
