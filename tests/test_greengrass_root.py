"""Discovery of a Greengrass root from real nucleus and nucleus-lite configuration files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from agent.greengrass.root import GreengrassRootError, load_root


def _install(tmp_path: Path, fixture: Path) -> Path:
    (tmp_path / "config").mkdir()
    shutil.copy(fixture, tmp_path / "config" / "effectiveConfig.yaml")
    return tmp_path


def test_java_nucleus_integ_config(tmp_path: Path, shared_fixtures: Path) -> None:
    gg = load_root(_install(tmp_path, shared_fixtures / "effective-config/nucleus-integ-ipc.yaml"))
    assert not gg.lite
    assert gg.nucleus_name == "aws.greengrass.Nucleus"
    assert gg.path("certificateFilePath") == "/greengrass/v2/device.pem.crt"
    assert gg.path("rootCaPath") is None  # this real config has none
    assert gg.thing_name is None
    assert gg.nucleus["runWithDefault"]["posixUser"] == "nobody"
    assert "ServiceName" in gg.services
    assert gg.service_configuration("mqtt") == {}  # null lifecycle, no configuration


def test_access_control_of_real_integ_config(tmp_path: Path, shared_fixtures: Path) -> None:
    fixture = shared_fixtures / "effective-config/nucleus-integ-mqttproxy-accesscontrol.yaml"
    gg = load_root(_install(tmp_path, fixture))
    policy = gg.service_configuration("ServiceName")["accessControl"][
        "aws.greengrass.ipc.mqttproxy"
    ]
    assert policy["policyId1"]["resources"] == ["A/+/C/D*", "X/Y*Z/#"]


def test_nucleus_lite_config_dir_with_config_d(tmp_path: Path, shared_fixtures: Path) -> None:
    shutil.copy(
        shared_fixtures / "effective-config/greengrass-lite-sample-nucleus-config.yaml",
        tmp_path / "config.yaml",
    )
    (tmp_path / "config.d").mkdir()
    (tmp_path / "config.d" / "10-thing.yaml").write_text("system:\n  thingName: lite-7\n")
    gg = load_root(tmp_path)
    assert gg.lite
    assert gg.nucleus_name == "aws.greengrass.NucleusLite"
    assert gg.root == Path("/var/lib/greengrass")  # lite spells it rootPath
    assert gg.thing_name == "lite-7"  # config.d overrides config.yaml
    assert gg.path("privateKeyPath") == "/var/lib/greengrass/device.key"
    assert gg.region == "us-west-2"


def test_relative_system_paths_resolve_against_the_root(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "effectiveConfig.yaml").write_text(
        "system:\n  certificateFilePath: thingCert.crt\n  privateKeyPath: "
        "'pkcs11:object=iotkey;type=private'\n"
    )
    gg = load_root(tmp_path)
    assert gg.path("certificateFilePath") == str(tmp_path / "thingCert.crt")
    assert gg.path("privateKeyPath") == "pkcs11:object=iotkey;type=private"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("- a\n- list\n", "does not hold a mapping"),
        ("system: [\n", "not valid YAML"),
        ("a: &x [1]\n" + "".join(f"k{i}: *x\n" for i in range(200)), "aliases"),
    ],
)
def test_broken_effective_config(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "effectiveConfig.yaml").write_text(content)
    with pytest.raises(GreengrassRootError, match=re.escape(expected)):
        load_root(tmp_path)


def test_missing_root_says_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(GreengrassRootError, match=r"effectiveConfig\.yaml"):
        load_root(tmp_path / "nothing-here")


def test_device_facts_have_one_accessor_each(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "effectiveConfig.yaml").write_text(
        "services:\n  aws.greengrass.Nucleus:\n    configuration:\n"
        "      iotRoleAlias: ' GreengrassV2TokenExchangeRoleAlias '\n"
        "      iotCredEndpoint: abc.credentials.iot.eu-west-1.amazonaws.com\n"
    )
    gg = load_root(tmp_path)
    assert gg.role_alias == "GreengrassV2TokenExchangeRoleAlias"
    assert gg.credentials_endpoint == "abc.credentials.iot.eu-west-1.amazonaws.com"
    # No system.thingName: the component environment, else "unknown-thing" in reports.
    assert gg.device_thing_name({"AWS_IOT_THING_NAME": "pi-42"}) == "pi-42"
    assert gg.device_thing_name({"AWS_IOT_THING_NAME": ""}) is None
    assert gg.reported_thing_name({}) == "unknown-thing"
