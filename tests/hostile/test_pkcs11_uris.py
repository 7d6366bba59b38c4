"""``pkcs11:`` URIs wherever the nucleus takes a certificate path (issue 19 item 5): the PIN in
them never reaches a report - JSON, text, the file transport's report and history - and a token
object is not audited as a missing file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.hostile.conftest import Device, cli_env, run_cli

PIN = "pin-value=73519"
CERT_URI = f"pkcs11:token=greengrass;object=iotkey;type=cert?{PIN}"
CA_URI = f"pkcs11:token=greengrass;object=amazonroot;type=cert;{PIN}"


def test_token_certificates_are_named_without_their_pin(healthy: Device, tmp_path: Path) -> None:
    healthy.set_system(certificateFilePath=CERT_URI, rootCaPath=CA_URI)
    args = ["check", "--only", "certificate", "--greengrass-root", str(healthy.root)]
    as_json = run_cli([*args, "--format", "json"], cli_env(tmp_path))
    as_text = run_cli(args, cli_env(tmp_path))
    for proc in (as_json, as_text):
        assert proc.returncode in (0, 1, 2, 3), proc.stderr
        assert "73519" not in proc.stdout + proc.stderr
    checks = json.loads(as_json.stdout)["checks"]
    on_token = {c["target"]: c for c in checks if c["details"].get("reason") == "on_token"}
    assert set(on_token) == {"system.certificateFilePath", "system.rootCaPath"}
    assert all(c["status"] == "UNKNOWN" for c in on_token.values())
    assert "object=iotkey" in on_token["system.certificateFilePath"]["message"]
    assert not [c for c in checks if c["details"].get("reason") == "not_found"]


def test_the_file_transport_keeps_no_pin(healthy: Device, tmp_path: Path) -> None:
    """A URI the checks do not know as a token object (an extra path) is scrubbed on the way
    out, in the report file and in its history."""
    healthy.set_system(certificateFilePath=CERT_URI)
    report = tmp_path / "out" / "report.json"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "transport": "file",
                "file": {"path": str(report), "historyMaxBytes": 1_000_000},
                "certificates": {"extraPaths": [f"pkcs11:object=x;{PIN}"]},
            }
        )
    )
    args = ["run", "--once", "--only", "certificate", "--greengrass-root", str(healthy.root)]
    proc = run_cli([*args, "--config", str(config)], cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    written = [p for p in report.parent.iterdir() if p.is_file()]
    assert len(written) >= 2  # the report and its history
    for path in written:
        text = path.read_text()
        assert "73519" not in text and "pin-value=[REDACTED]" in text
