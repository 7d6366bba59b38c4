"""certificate.validity: thresholds against a pinned clock, bundles, real roots."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from agent.greengrass.root import GreengrassRoot
from agent.report import Status
from tests.certificates.conftest import Run, one
from tests.pki import (
    DAY,
    NOW,
    Issued,
    cert_pem,
    make_ca,
    make_context,
    make_device_cert,
    make_greengrass_root,
    openssl_bin,
    write,
)

ID = "certificate.validity"


def _device_result(
    tmp_path: Path,
    device_ca: Issued,
    run: Run,
    not_after: dt.datetime,
    not_before: dt.datetime = NOW - 30 * DAY,
    config: dict | None = None,
):  # type: ignore[type-arg]
    device = make_device_cert(device_ca, not_before=not_before, not_after=not_after)
    root = make_greengrass_root(tmp_path, device=device)
    return one(run(make_context(root, config), ID), root.path("certificateFilePath") or "")


def test_spec_example_twenty_days_is_warning(tmp_path: Path, device_ca: Issued, run: Run) -> None:
    r = _device_result(
        tmp_path, device_ca, run, dt.datetime(2026, 12, 19, 18, 0, tzinfo=dt.timezone.utc)
    )
    assert r.status is Status.WARNING
    assert r.message == "expires in 20 days (2026-12-19)"
    assert r.details["days_left"] == 20
    assert r.details["not_after"] == "2026-12-19T18:00:00Z"
    assert r.details["not_before"] == "2026-10-30T18:00:00Z"
    assert r.details["reason"] == "expires_soon"
    assert r.remediation == "rotate the device certificate before 2026-12-19"


@pytest.mark.parametrize(
    ("days", "status"),
    [
        (400, Status.OK),
        (30, Status.OK),
        (29, Status.WARNING),
        (7, Status.WARNING),
        (6, Status.CRITICAL),
        (0, Status.CRITICAL),
    ],
)
def test_default_thresholds(
    tmp_path: Path, device_ca: Issued, run: Run, days: int, status: Status
) -> None:
    r = _device_result(tmp_path, device_ca, run, NOW + days * DAY + dt.timedelta(hours=1))
    assert (r.status, r.details["days_left"]) == (status, days)


def test_configured_thresholds(tmp_path: Path, device_ca: Issued, run: Run) -> None:
    config = {"certificates": {"warnDays": 90, "criticalDays": 60}}
    r = _device_result(tmp_path / "a", device_ca, run, NOW + 75 * DAY, config=config)
    assert r.status is Status.WARNING
    r = _device_result(tmp_path / "b", device_ca, run, NOW + 45 * DAY, config=config)
    assert r.status is Status.CRITICAL
    r = _device_result(tmp_path / "c", device_ca, run, NOW + 91 * DAY, config=config)
    assert r.status is Status.OK
    assert r.message == "valid for 91 more days (until 2027-02-28)"


def test_expired(tmp_path: Path, device_ca: Issued, run: Run) -> None:
    r = _device_result(
        tmp_path / "a",
        device_ca,
        run,
        NOW - 10 * DAY - dt.timedelta(hours=2),
        not_before=NOW - 400 * DAY,
    )
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "expired")
    assert r.message == "expired 10 days ago (2026-11-19)"
    assert "now" in (r.remediation or "")
    r = _device_result(
        tmp_path / "b", device_ca, run, NOW - dt.timedelta(hours=1), not_before=NOW - 400 * DAY
    )
    assert (r.status, r.message) == (Status.CRITICAL, "expired on 2026-11-29")


def test_not_yet_valid(tmp_path: Path, device_ca: Issued, run: Run) -> None:
    r = _device_result(tmp_path, device_ca, run, NOW + 400 * DAY, not_before=NOW + 2 * DAY)
    assert (r.status, r.details["reason"]) == (Status.CRITICAL, "not_yet_valid")
    assert "2026-12-01" in r.message
    assert "NTP" in (r.remediation or "")


def test_real_amazon_root_expires_in_2038(gg_root: GreengrassRoot, run: Run) -> None:
    ca = gg_root.path("rootCaPath") or ""
    assert one(run(make_context(gg_root), ID), ca).details["not_after"] == "2038-01-17T00:00:00Z"
    late = one(
        run(make_context(gg_root, now=dt.datetime(2038, 1, 1, tzinfo=dt.timezone.utc)), ID), ca
    )
    assert (late.status, late.details["days_left"]) == (Status.WARNING, 16)
    assert "root CA bundle" in (late.remediation or "")
    after = one(
        run(make_context(gg_root, now=dt.datetime(2038, 2, 1, tzinfo=dt.timezone.utc)), ID), ca
    )
    assert after.details["reason"] == "expired"


def test_bundle_reports_each_certificate_with_index_and_subject(
    tmp_path: Path, gg_root: GreengrassRoot, run: Run
) -> None:
    certs = [
        make_ca("Long Root", not_after=NOW + 900 * DAY).cert,
        make_ca("Soon Root", not_after=NOW + 3 * DAY).cert,
        make_ca("Old Root", not_before=NOW - 900 * DAY, not_after=NOW - 5 * DAY).cert,
    ]
    bundle = write(tmp_path / "extra" / "bundle.pem", cert_pem(*certs))
    ctx = make_context(gg_root, {"certificates": {"extraPaths": [str(bundle)]}})
    results = sorted(
        (r for r in run(ctx, ID) if r.target == str(bundle)), key=lambda r: r.details["index"]
    )
    assert [r.details["index"] for r in results] == [0, 1, 2]
    assert [r.status for r in results] == [Status.OK, Status.CRITICAL, Status.CRITICAL]
    assert results[1].details["subject"] == "O=Test PKI,CN=Soon Root"
    assert results[2].details["reason"] == "expired"
    assert "Old Root" in (results[2].remediation or "")


def test_verdict_agrees_with_openssl_checkend(tmp_path: Path, device_ca: Issued, run: Run) -> None:
    """An independent oracle: ``openssl x509 -checkend`` on the same files at real time."""
    openssl = openssl_bin()
    real_now = dt.datetime.now(dt.timezone.utc)
    for days in (3, 20, 45):
        device = make_device_cert(
            device_ca, not_before=real_now - DAY, not_after=real_now + days * DAY
        )
        root = make_greengrass_root(tmp_path / str(days), device=device)
        path = root.path("certificateFilePath") or ""
        r = one(run(make_context(root, now=real_now), ID), path)
        ends_within_warn = (
            subprocess.run(
                [openssl, "x509", "-checkend", str(30 * 86400), "-noout", "-in", path],
                capture_output=True,
            ).returncode
            == 1
        )
        assert (r.status is not Status.OK) == ends_within_warn
        assert r.details["days_left"] == days - 1 or r.details["days_left"] == days
