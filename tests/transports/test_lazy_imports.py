"""The MQTT stack and python-pkcs11 load only on the paths that use them (a Pi's RSS budget)."""

from __future__ import annotations

from tests.conftest import modules_loaded_by


def test_importing_the_transport_modules_loads_no_mqtt_stack() -> None:
    code = (
        "import agent.service, agent.checks.probe, agent.transports.mqtt, agent.transports.spool\n"
        "import agent.pkcs11, agent.transports.spooling, agent.transports.will\n"
    )
    assert modules_loaded_by(code, ["awscrt", "awsiot", "pkcs11"]) == []
