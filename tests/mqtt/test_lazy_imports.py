"""The MQTT stack and python-pkcs11 load only on the paths that use them (a Pi's RSS budget)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_importing_the_transport_modules_loads_no_mqtt_stack() -> None:
    code = (
        "import sys\n"
        "import agent.service, agent.mqtt.probe, agent.transports.mqtt, agent.spool\n"
        "import agent.pkcs11, agent.transports.spooling, agent.mqtt.will\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'awscrt', 'awsiot', 'pkcs11'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
