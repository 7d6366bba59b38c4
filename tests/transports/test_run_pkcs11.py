"""``run --once --transport mqtt`` with the device key on a SoftHSM2 token (``pkcs11:`` URI).

Each case runs in a fresh process: PKCS#11 login state is per process (an earlier login in
the test process would hide a wrong PIN), and this is how the agent meets the token for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.peers.mosquitto import Mosquitto, Subscriber
from tests.peers.softhsm import SoftHsm
from tests.pki import THING
from tests.transports.helpers import TOPIC, cert_for_token_key, greengrass_root, wait_for

PROVIDER = "aws.greengrass.crypto.Pkcs11Provider"


def run_once(root: Path, tmp_path: Path, hsm: SoftHsm) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"spool": {"path": str(tmp_path / "spool")}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "SVCUID"}
    env.update(hsm.env)
    return subprocess.run(
        [
            sys.executable,
            *("-m", "agent", "run", "--once", "--transport", "mqtt"),
            *("--greengrass-root", str(root), "--config", str(config), "--only", "agent"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def hsm_root(tmp_path: Path, broker: Mosquitto, hsm: SoftHsm, kind: str, pin: str) -> Path:
    obj = hsm.rsa if kind == "rsa" else hsm.ec
    cert = cert_for_token_key(broker, obj.private_key(), tmp_path)
    provider = {
        "version": "2.0.10",
        "configuration": {
            "name": "softhsm_pkcs11",
            "library": hsm.library,
            "slot": hsm.slot,
            "userPin": pin,
        },
    }
    return greengrass_root(
        tmp_path,
        broker,
        cert_pem=cert.read_bytes(),
        key_pem=b"unused",
        system={"privateKeyPath": obj.greengrass_uri},
        services={PROVIDER: provider},
    ).root


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_an_hsm_held_key_connects_and_delivers(
    mosquitto: Mosquitto, softhsm: SoftHsm, tmp_path: Path, kind: str
) -> None:
    mosquitto.allow(THING, publish=[TOPIC])
    sub = Subscriber(mosquitto, "watcher", "dt/#")
    mosquitto.start()
    sub.start()
    try:
        root = hsm_root(tmp_path, mosquitto, softhsm, kind, softhsm.user_pin)
        done = run_once(root, tmp_path, softhsm)
        assert done.returncode == 0, done.stderr[-3000:]
        assert wait_for(lambda: len(sub.payloads()) >= 1)
        (report,) = [json.loads(p) for p in sub.payloads()]
        assert report["thing_name"] == THING and report["sequence"] == 1
    finally:
        sub.stop()
    assert softhsm.user_pin not in done.stderr


def test_a_wrong_pin_is_a_clear_error_not_a_crash(
    mosquitto: Mosquitto, softhsm: SoftHsm, tmp_path: Path
) -> None:
    mosquitto.allow(THING, publish=[TOPIC])
    mosquitto.start()
    root = hsm_root(tmp_path, mosquitto, softhsm, "ec", "86420")
    done = run_once(root, tmp_path, softhsm)
    assert done.returncode == 4, done.stderr[-3000:]  # neither delivered nor left connectable
    assert "Traceback" not in done.stderr
    assert "CKR_PIN_INCORRECT" in done.stderr
    assert "object=device-ec" in done.stderr
    assert "86420" not in done.stderr
    assert "Sending CONNACK" not in mosquitto.log_tail(200)  # it never got as far as TLS


def test_an_unknown_key_label_is_a_clear_error(
    mosquitto: Mosquitto, softhsm: SoftHsm, tmp_path: Path
) -> None:
    mosquitto.allow(THING, publish=[TOPIC])
    mosquitto.start()
    root = hsm_root(tmp_path, mosquitto, softhsm, "ec", softhsm.user_pin)
    doc = yaml.safe_load((root / "config" / "effectiveConfig.yaml").read_text())
    doc["system"]["privateKeyPath"] = "pkcs11:object=no-such-key;type=private"
    (root / "config" / "effectiveConfig.yaml").write_text(yaml.safe_dump(doc))
    done = run_once(root, tmp_path, softhsm)
    assert done.returncode == 4
    assert "Traceback" not in done.stderr
    assert "AWS_ERROR_PKCS11_KEY_NOT_FOUND" in done.stderr, done.stderr
    assert "object=no-such-key" in done.stderr


LIVE_SESSION_SCRIPT = """
import json, sys
from pathlib import Path
from cryptography import x509
from agent.transports.mqtt_settings import MqttSettings
from agent.pkcs11 import TokenKey, parse_uri, token_public_key
from agent.report import HealthReport
from agent.transports.spool import Spool
from agent.transports.mqtt import MqttPublisher

port, ca, cert, library, uri, pin, spool = sys.argv[1:]
token = TokenKey(library, parse_uri(uri), None, pin)
settings = MqttSettings("127.0.0.1", int(port), "pi-42", cert, None, token, ca, 60)
pub = MqttPublisher(settings, "dt/gghealth/pi-42/health", Spool(Path(spool), 1 << 20),
                    thing_name="pi-42")
report = HealthReport.build([], agent_version="t", thing_name="pi-42",
                            generated_at="2026-11-29T18:00:00Z", sequence=11, duration_ms=0)
outcome = pub.publish(report)
# The TLS session is live on the token: key_match must still read the public key.
public = token_public_key(uri, library, pin)
certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
print("RESULT", json.dumps({"delivery": outcome.delivery.value, "message": outcome.message,
                  "match": public == certificate.public_key()}))
pub.close()
"""


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_key_match_reads_the_token_beside_a_live_pkcs11_tls_session(
    mosquitto: Mosquitto, softhsm: SoftHsm, tmp_path: Path, kind: str
) -> None:
    mosquitto.allow(THING, publish=[TOPIC])
    mosquitto.start()
    obj = softhsm.rsa if kind == "rsa" else softhsm.ec
    cert = cert_for_token_key(mosquitto, obj.private_key(), tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            *("-c", LIVE_SESSION_SCRIPT, str(mosquitto.port), str(mosquitto.ca.cert_path)),
            *(str(cert), softhsm.library, obj.uri, softhsm.user_pin),
            str(tmp_path / "spool.sqlite3"),
        ],
        cwd=REPO,
        env={**os.environ, **softhsm.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["delivery"] == "delivered", result["message"]
    assert result["match"] is True
