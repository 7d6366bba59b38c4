"""``system.endpoint`` against real TLS servers on loopback: every verdict, the ALPN 443
alternative, the time bound with a hanging endpoint, the cache, and no MQTT CONNECT ever."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from agent.checks.base import Kept
from agent.report import Status
from tests.peers.mosquitto import Mosquitto
from tests.peers.silent import Blackhole
from tests.peers.softhsm import SoftHsm
from tests.pki import make_ca, make_device_cert
from tests.system.conftest import (
    Pki,
    by_role,
    loopback,
    results,
    run_system,
    tls_server,
    write_root,
)

FAST = {"system": {"timeoutSeconds": 2}}


def test_verified_server_and_accepted_certificate_is_ok(tmp_path: Path, pki: Pki) -> None:
    with tls_server(pki.server, client_ca=pki.device_ca) as peer:
        root = write_root(tmp_path, pki, loopback(peer.port, peer.port, peer.port), agent=FAST)
        report = run_system(root)
        found = by_role(report)
        assert set(found) == {"iot_data", "iot_credentials", "greengrass_data_plane"}
        for result in found.values():
            assert result.status is Status.OK, result.message
            assert "TLS verified by" in result.message and "no MQTT CONNECT" in result.message
        # Two handshakes per endpoint: the verified one with the device certificate (accepted),
        # the unverified comparison without one (refused by this mTLS server); not one byte
        # sent after any of them.
        seen = peer.settled(6)
        assert len(seen) == 6
        assert sum(h["ok"] for h in seen) == 3
        assert sum(h["received"] for h in seen) == 0


def test_server_the_bundle_does_not_verify_is_critical(tmp_path: Path, pki: Pki) -> None:
    # Both demand a client certificate, as AWS IoT does (awscrt's mutual TLS requires the
    # server's CertificateRequest).
    with (
        tls_server(pki.rogue, client_ca=pki.device_ca) as rogue,
        tls_server(pki.server, client_ca=pki.device_ca) as good,
    ):
        root = write_root(tmp_path, pki, loopback(rogue.port, good.port, good.port), agent=FAST)
        started = time.monotonic()
        found = by_role(run_system(root))
        elapsed = time.monotonic() - started
    data = found["iot_data"]
    assert data.status is Status.CRITICAL
    assert data.details["reason"] == "server_not_verified"
    assert str(pki.root) in data.message and "Amazon Root CA 1" in (data.remediation or "")
    assert found["iot_credentials"].status is Status.OK
    # s2n reports the failed verification only after 10-30 s; the comparison decides sooner.
    assert elapsed < 6, elapsed


def test_refused_client_certificate_is_critical(tmp_path: Path, pki: Pki) -> None:
    with tls_server(pki.server, client_ca=pki.device_ca) as peer:
        root = write_root(
            tmp_path, pki, loopback(peer.port, peer.port, peer.port), device=pki.stranger,
            agent=FAST,
        )  # fmt: skip
        found = by_role(run_system(root))
    for result in found.values():
        assert result.status is Status.CRITICAL
        assert result.details["reason"] == "client_cert_refused", result.message
        assert "refused the device certificate" in result.message
        assert "ACTIVE" in (result.remediation or "")


def test_closed_port_is_a_blocked_port(tmp_path: Path, pki: Pki, closed_port: int) -> None:
    with tls_server(pki.server, client_ca=pki.device_ca) as peer:
        root = write_root(tmp_path, pki, loopback(closed_port, peer.port, peer.port), agent=FAST)
        found = by_role(
            run_system(
                root, {"AWS_ENDPOINT_URL_IOT_DATA_PLANE": f"https://localhost:{closed_port}"}
            )
        )
    data = found["iot_data"]
    assert data.status is Status.CRITICAL
    assert data.details["reason"] == "port_blocked"
    assert f"port {closed_port} are refused" in data.message
    assert "alternative" not in data.details  # 443 did not answer either
    assert found["iot_credentials"].status is Status.OK


def test_blocked_8883_with_working_443_alpn_suggests_the_port(
    tmp_path: Path, pki: Pki, closed_port: int
) -> None:
    with (
        tls_server(pki.server, client_ca=pki.device_ca, alpn=["x-amzn-mqtt-ca"]) as alpn,
        tls_server(pki.server, client_ca=pki.device_ca) as good,
    ):
        root = write_root(tmp_path, pki, loopback(closed_port, good.port, good.port), agent=FAST)
        env = {"AWS_ENDPOINT_URL_IOT_DATA_PLANE": f"https://localhost:{alpn.port}"}
        found = by_role(run_system(root, env))
        seen = alpn.settled(2)
    data = found["iot_data"]
    assert data.status is Status.CRITICAL and data.details["reason"] == "port_blocked"
    assert data.details["alternative"] == f"localhost:{alpn.port}"
    assert "with ALPN x-amzn-mqtt-ca works" in data.message
    assert "mqtt.port to 443" in (data.remediation or "")
    # Only the alternative came here, and the server chose the protocol it offered.
    assert len(seen) == 2
    assert [h["alpn"] for h in seen if h["ok"]] == ["x-amzn-mqtt-ca"]


def test_unresolvable_endpoint_is_a_dns_failure(tmp_path: Path, pki: Pki) -> None:
    with tls_server(pki.server, client_ca=pki.device_ca) as peer:
        nucleus = loopback(peer.port, peer.port, peer.port)
        nucleus["iotDataEndpoint"] = "no-such-endpoint-ats.iot.invalid"
        nucleus["greengrassDataPlaneEndpoint"] = ""
        root = write_root(tmp_path, pki, nucleus, agent=FAST)
        found = by_role(run_system(root))
    data = found["iot_data"]
    assert data.status is Status.CRITICAL and data.details["reason"] == "dns_failure"
    assert "does not resolve" in data.message and "iotDataEndpoint" in (data.remediation or "")
    assert found["iot_credentials"].status is Status.OK


def test_no_network_is_unknown_not_a_failure(tmp_path: Path, pki: Pki) -> None:
    nucleus = {
        "iotDataEndpoint": "a1-ats.iot.invalid",
        "iotCredEndpoint": "c1.credentials.iot.invalid",
        "greengrassDataPlaneEndpoint": "iotdata",
    }
    root = write_root(tmp_path, pki, nucleus, agent=FAST)
    found = by_role(run_system(root))
    assert {r.status for r in found.values()} == {Status.UNKNOWN}
    assert {r.details["reason"] for r in found.values()} == {"network_down"}


def test_hanging_endpoint_stays_within_the_budget(
    tmp_path: Path, pki: Pki, blackhole: Blackhole
) -> None:
    with tls_server(pki.server, client_ca=pki.device_ca) as peer:
        root = write_root(
            tmp_path, pki, loopback(blackhole.port, peer.port, peer.port),
            agent={"system": {"timeoutSeconds": 1}},
        )  # fmt: skip
        started = time.monotonic()
        found = by_role(run_system(root))
        elapsed = time.monotonic() - started
    data = found["iot_data"]
    assert data.status is Status.UNKNOWN and data.details["reason"] == "timeout"
    assert blackhole.accepted, "the check did reach the endpoint"
    # timeout + the grace of the handshakes that did complete, run side by side
    assert elapsed < 1 + 2 * 1.0 + 1.0, elapsed
    assert found["iot_credentials"].status is Status.OK


def test_unreadable_bundle_gets_a_message_not_a_traceback(tmp_path: Path, pki: Pki) -> None:
    bad = tmp_path / "rootCA.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    with tls_server(pki.server, client_ca=pki.device_ca) as peer:
        root = write_root(
            tmp_path, pki, loopback(peer.port, peer.port, peer.port), root_ca=bad, agent=FAST
        )
        found = results(run_system(root), "system.endpoint")
    assert len(found) == 3
    for result in found:
        assert result.status is Status.UNKNOWN
        assert result.details["reason"] == "bad_bundle"
        assert str(bad) in result.message and "Traceback" not in result.message


def test_results_are_kept_until_the_certificate_changes(tmp_path: Path, pki: Pki) -> None:
    device = tmp_path / "device"
    device.mkdir()
    cert, key = device / "cert.pem", device / "key.pem"
    cert.write_bytes(pki.device[0].read_bytes())
    key.write_bytes(pki.device[1].read_bytes())
    kept = Kept()
    with tls_server(pki.server, client_ca=pki.device_ca) as peer:
        root = write_root(
            tmp_path, pki, loopback(peer.port, peer.port, peer.port), device=(cert, key),
            agent=FAST,
        )  # fmt: skip
        first = run_system(root, kept=kept)
        assert len(peer.settled(6)) == 6
        second = run_system(root, kept=kept)
        time.sleep(0.3)
        assert len(peer.handshakes) == 6, "reused, not probed again"
        assert results(first, "system.endpoint") == results(second, "system.endpoint")
        # A rotated certificate at the same path: probed again at once.
        cert.write_bytes(pki.stranger[0].read_bytes())
        key.write_bytes(pki.stranger[1].read_bytes())
        os.utime(cert, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
        third = by_role(run_system(root, kept=kept))
        assert len(peer.handshakes) > 6
    assert third["iot_data"].details["reason"] == "client_cert_refused"


def test_no_mqtt_connect_ever_reaches_the_broker(
    tmp_path: Path, pki: Pki, mosquitto: Mosquitto
) -> None:
    mosquitto.allow("pi-42", publish=["#"], subscribe=["#"])
    mosquitto.start()
    device = mosquitto.client_cert("pi-42")
    root = write_root(
        tmp_path, pki, loopback(mosquitto.port, mosquitto.port, mosquitto.port),
        device=(device.cert_path, device.key_path), root_ca=mosquitto.ca.cert_path, agent=FAST,
    )  # fmt: skip
    found = by_role(run_system(root))
    assert found["iot_data"].status is Status.OK, found["iot_data"].message
    time.sleep(0.5)
    log = mosquitto.log_path.read_text(errors="replace")
    assert "New connection from 127.0.0.1" in log  # the handshakes reached the broker
    assert "CONNECT" not in log.replace("CONNECTION", ""), mosquitto.log_tail()
    assert "New client connected" not in log


def test_a_key_on_a_pkcs11_token_does_the_mutual_tls(
    tmp_path: Path, pki: Pki, softhsm: SoftHsm
) -> None:
    """Through the command line, in a process of its own: awscrt's login to the token lasts
    as long as the process (PKCS#11 logins are per application), which would change what the
    PIN tests of the other modules see."""
    ca = make_ca("Token Device CA")
    issued = make_device_cert(ca, "pi-42", key=softhsm.ec.private_key())
    (tmp_path / "token-ca.pem").write_bytes(ca.pem())
    (tmp_path / "device.pem").write_bytes(issued.pem())
    provider = {
        "aws.greengrass.crypto.Pkcs11Provider": {
            "configuration": {
                "library": softhsm.library,
                "slot": softhsm.slot,
                "userPin": softhsm.user_pin,
            }
        }
    }
    with tls_server(pki.server, client_ca=tmp_path / "token-ca.pem") as peer:
        root = write_root(
            tmp_path, pki, loopback(peer.port, peer.port, peer.port),
            device=(tmp_path / "device.pem", tmp_path / "unused"),
            key_uri=softhsm.ec.greengrass_uri, services=provider, agent=FAST,
        )  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "agent", "--log-level", "DEBUG", "check", "--greengrass-root",
             str(root), "--only", "system", "--format", "json"],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, **softhsm.env, "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9"},
        )  # fmt: skip
        seen = peer.settled(3)
    report = json.loads(proc.stdout)
    endpoints = [c for c in report["checks"] if c["id"] == "system.endpoint"]
    assert len(endpoints) == 3
    for result in endpoints:
        assert result["status"] == "OK", result["message"]
    assert sum(h["ok"] for h in seen) == 3  # the token's key signed three handshakes
    # The PIN (digits) nowhere as a number of its own in the report or the DEBUG log.
    pin = re.compile(rf"(?<![0-9]){re.escape(softhsm.user_pin)}(?![0-9])")
    assert not pin.search(proc.stdout + proc.stderr)
