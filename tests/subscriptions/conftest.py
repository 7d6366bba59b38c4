"""Realistic Greengrass roots for the subscription checks, built from the shared fixtures.

``effectiveConfig.yaml`` is written the way the nucleus writes it: the component configurations
that deployments merged (recipe ``DefaultConfiguration`` or a configuration merge document) sit
under ``services.<name>.configuration``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.checks.base import CheckContext
from agent.config import build_config
from agent.greengrass.root import load_root
from tests.conftest import SHARED_FIXTURES
from tests.peers.moto import MotoServer

THING = "pi-42"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE_ALIAS = "GreengrassV2TokenExchangeRoleAlias"
AGENT = "gghealth.HealthAgent"
RECIPES = SHARED_FIXTURES / "recipes"
EFFECTIVE = SHARED_FIXTURES / "effective-config"
POLICIES = SHARED_FIXTURES / "iot-policies"


def load_data(path: Path) -> Any:
    """A fixture file as data (JSON is parsed as JSON so escapes stay exact)."""
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def default_configuration(recipe: str) -> dict[str, Any]:
    """``ComponentConfiguration.DefaultConfiguration`` of a fixture recipe."""
    data = load_data(RECIPES / recipe)
    return dict(data["ComponentConfiguration"]["DefaultConfiguration"])


def fixture_services(name: str) -> dict[str, Any]:
    """``services`` of a fixture effectiveConfig (or of a bridge service config fixture)."""
    folder = EFFECTIVE if (EFFECTIVE / name).exists() else RECIPES
    return dict(load_data(folder / name)["services"])


def agent_grant(resource: str, policy_id: str = f"{AGENT}:mqttproxy:1") -> dict[str, Any]:
    """The agent's own accessControl granting PublishToIoTCore on ``resource``."""
    return {
        "aws.greengrass.ipc.mqttproxy": {
            policy_id: {
                "policyDescription": "publish the health report",
                "operations": ["aws.greengrass#PublishToIoTCore"],
                "resources": [resource],
            }
        }
    }


def nucleus(**extra: Any) -> dict[str, Any]:
    """A Java nucleus service entry as an installer-provisioned device has it."""
    configuration = {
        "awsRegion": REGION,
        "iotRoleAlias": ROLE_ALIAS,
        "iotDataEndpoint": "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com",
        "runWithDefault": {"posixUser": "ggc_user:ggc_group"},
        **extra,
    }
    return {"componentType": "NUCLEUS", "version": "2.14.3", "configuration": configuration}


def write_root(
    root: Path, services: Mapping[str, Any], *, thing: str | None = THING, **nucleus_extra: Any
) -> Path:
    """Write ``config/effectiveConfig.yaml`` under ``root`` with the nucleus and ``services``."""
    system: dict[str, Any] = {
        "certificateFilePath": str(root / "thingCert.crt"),
        "privateKeyPath": str(root / "privKey.key"),
        "rootCaPath": str(root / "rootCA.pem"),
        "rootpath": str(root),
    }
    if thing is not None:
        system["thingName"] = thing
    config = {
        "system": system,
        "services": {"aws.greengrass.Nucleus": nucleus(**nucleus_extra), **services},
    }
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "effectiveConfig.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def make_context(root: Path, **config: Any) -> CheckContext:
    """A CheckContext on ``root``; the agent's layer from effectiveConfig, then ``config``."""
    greengrass = load_root(root)
    layer = dict(greengrass.service_configuration(config.get("componentName", AGENT)))
    return CheckContext(
        config=build_config(layer, config), greengrass=greengrass, env={}, privileged=False
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty directory to build a Greengrass root in."""
    return tmp_path / "greengrass" / "v2"


def substitute(text: str, **values: str) -> str:
    """Replace the documentation placeholders of a fixture policy with a device's values."""
    for placeholder, value in values.items():
        text = text.replace(placeholder.replace("_", "-"), value)
    return text


def minimal_policy_text() -> str:
    """The Greengrass minimal core-device policy with this device's names filled in."""
    return substitute(
        (POLICIES / "greengrass-v2-core-device-minimal-iot-policy.json").read_text(),
        account_id=ACCOUNT,
        core_device_thing_name=THING,
        token_exchange_role_alias_name=ROLE_ALIAS,
    ).replace(":region:", f":{REGION}:")


@pytest.fixture(scope="session")
def moto_iot(moto_server_open: MotoServer) -> MotoServer:
    """moto without IAM enforcement, for AWS IoT policy fetching (see tests.peers.moto)."""
    return moto_server_open


# A thing-attribute Deny, as the AWS IoT thing policy examples write one (issue 16).
QUARANTINE = {
    "Sid": "Quarantine",
    "Effect": "Deny",
    "Action": "iot:*",
    "Resource": "*",
    "Condition": {"StringEquals": {"iot:Connection.Thing.Attributes[stage]": "quarantine"}},
}
