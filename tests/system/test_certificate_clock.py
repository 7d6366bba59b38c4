"""A certificate "not yet valid" while the clock is known to be behind blames the clock."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

from agent.report import Status
from agent.runner import check_once, load_settings
from agent.system.clock import KernelClock
from tests.pki import make_ca, make_device_cert
from tests.system.conftest import DatePeer, Pki, write_root

SYNCED = KernelClock(state=0, status=0, maxerror_us=1000, esterror_us=10)


def _not_yet_valid(tmp_path: Path) -> tuple[Path, Path]:
    now = dt.datetime.now(dt.timezone.utc)
    ca = make_ca("Device CA")
    issued = make_device_cert(
        ca, not_before=now + timedelta(hours=3), not_after=now + timedelta(days=365)
    )
    cert, key = tmp_path / "device.crt", tmp_path / "device.key"
    cert.write_bytes(issued.pem())
    key.write_bytes(issued.key_pem())
    key.chmod(0o600)
    return cert, key


def _validity(tmp_path: Path, pki: Pki, peer: DatePeer, offset: timedelta) -> tuple[str, object]:
    peer.date = format_datetime(dt.datetime.now(dt.timezone.utc) + offset, usegmt=True)
    device = _not_yet_valid(tmp_path)
    root = write_root(tmp_path / "root", pki, {}, device=device)
    report = check_once(
        load_settings(root), ["certificate"], env={"AWS_ENDPOINT_URL_STS": peer.url},
        kernel_clock=lambda: SYNCED,
    )  # fmt: skip
    [found] = [
        r for r in report.checks if r.id == "certificate.validity" and r.target == str(device[0])
    ]
    assert found.status is Status.CRITICAL and found.details["reason"] == "not_yet_valid"
    return found.message, found.details.get("clock_suspect")


def test_not_yet_valid_with_a_clock_behind_blames_the_clock(
    tmp_path: Path, pki: Pki, date_peer: DatePeer
) -> None:
    message, suspect = _validity(tmp_path, pki, date_peer, timedelta(hours=4))
    assert "the device clock is 4 h 0 min behind AWS's time" in message
    assert "the clock, not the certificate, is wrong" in message
    assert suspect is True


def test_not_yet_valid_with_a_right_clock_blames_the_certificate(
    tmp_path: Path, pki: Pki, date_peer: DatePeer
) -> None:
    message, suspect = _validity(tmp_path, pki, date_peer, timedelta(0))
    assert "clock, not the certificate" not in message
    assert suspect is None
    assert date_peer.requests == ["HEAD /"]  # the clock was asked, and found right
