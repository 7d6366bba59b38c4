"""``system.clock`` against an HTTP server whose ``Date`` is hours off, and the kernel's NTP
state read through the real ``adjtimex`` syscall."""

from __future__ import annotations

import ctypes
import ctypes.util
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from agent.aws.endpoints import parse_endpoint
from agent.aws.http import HttpClient
from agent.checks.base import Kept
from agent.report import CheckResult, Status
from agent.system.clock import STA_UNSYNC, TIME_ERROR, KernelClock, read_kernel_clock
from tests.system.conftest import DatePeer, Pki, results, run_system, write_root

SYNCED = KernelClock(state=0, status=0, maxerror_us=1000, esterror_us=10)
UNSYNCED = KernelClock(state=TIME_ERROR, status=STA_UNSYNC, maxerror_us=16_000_000, esterror_us=0)


def http_date(offset: timedelta) -> str:
    return format_datetime(datetime.now(timezone.utc) + offset, usegmt=True)


def clock_of(
    tmp_path: Path, pki: Pki, peer: DatePeer, *, kernel: KernelClock = SYNCED, **kw: object
) -> CheckResult:
    root = write_root(tmp_path, pki, {})
    report = run_system(
        root, {"AWS_ENDPOINT_URL_STS": peer.url}, only="system.clock",
        kernel_clock=lambda: kernel, **kw,
    )  # fmt: skip
    [found] = results(report, "system.clock")
    return found


@pytest.mark.parametrize(
    ("offset", "direction"), [(timedelta(hours=-3), "ahead of"), (timedelta(hours=5), "behind")]
)
def test_hours_of_skew_are_critical_with_the_skew_and_its_direction(
    tmp_path: Path, pki: Pki, date_peer: DatePeer, offset: timedelta, direction: str
) -> None:
    date_peer.date = http_date(offset)
    found = clock_of(tmp_path, pki, date_peer)
    assert found.status is Status.CRITICAL and found.details["reason"] == "clock_skew"
    assert f"{int(abs(offset).total_seconds() // 3600)} h" in found.message
    assert f"{direction} AWS's time" in found.message
    assert "SigV4's 5-minute limit" in found.message
    assert found.details["skew_seconds"] == pytest.approx(-offset.total_seconds(), abs=3)
    assert found.details["direction"] == direction.split()[0]
    assert "timedatectl" in (found.remediation or "") and "RTC" in (found.remediation or "")
    assert date_peer.requests == ["HEAD /"]


def test_a_minute_and_a_half_is_a_warning(tmp_path: Path, pki: Pki, date_peer: DatePeer) -> None:
    date_peer.date = http_date(timedelta(seconds=-90))
    found = clock_of(tmp_path, pki, date_peer)
    assert found.status is Status.WARNING and found.details["reason"] == "clock_skew"
    assert "ahead of" in found.message


def test_a_right_clock_is_ok(tmp_path: Path, pki: Pki, date_peer: DatePeer) -> None:
    date_peer.date = http_date(timedelta(0))
    found = clock_of(tmp_path, pki, date_peer)
    assert found.status is Status.OK, found.message
    assert "synchronised" in found.message


def test_garbage_date_gets_a_specific_message(
    tmp_path: Path, pki: Pki, date_peer: DatePeer
) -> None:
    date_peer.date = "yesterday at teatime"
    found = clock_of(tmp_path, pki, date_peer)
    assert found.status is Status.UNKNOWN and found.details["reason"] == "bad_date"
    assert "'yesterday at teatime' is not an HTTP date" in found.message


def test_unsynchronised_kernel_clock_is_a_warning_naming_the_fixes(
    tmp_path: Path, pki: Pki, date_peer: DatePeer
) -> None:
    date_peer.date = http_date(timedelta(0))
    found = clock_of(tmp_path, pki, date_peer, kernel=UNSYNCED)
    assert found.status is Status.WARNING and found.details["reason"] == "clock_unsynchronised"
    assert "TIME_ERROR" in found.message
    fix = found.remediation or ""
    for hint in ("timedatectl", "systemd-timesyncd", "UDP 123", "RTC HAT"):
        assert hint in fix


def test_a_date_the_cycle_already_got_is_used_without_a_request(
    tmp_path: Path, pki: Pki, date_peer: DatePeer
) -> None:
    date_peer.date = http_date(timedelta(hours=2))
    http = HttpClient()
    # What an earlier area of the cycle did (an S3 or STS call) on the shared client.
    http.request("GET", parse_endpoint(date_peer.url, what="test"), "/", [], None, timeout=5)
    assert len(date_peer.requests) == 1
    root = write_root(tmp_path, pki, {})
    report = run_system(
        root, {"AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9"}, only="system.clock", http=http,
        kernel_clock=lambda: SYNCED,
    )  # fmt: skip
    [found] = results(report, "system.clock")
    assert found.status is Status.CRITICAL and "behind AWS's time" in found.message
    assert date_peer.requests == ["GET /"]  # nothing more was asked


def test_at_most_one_request_per_refresh(tmp_path: Path, pki: Pki, date_peer: DatePeer) -> None:
    date_peer.date = http_date(timedelta(0))
    kept, http = Kept(), HttpClient()
    for _ in range(3):
        clock_of(tmp_path, pki, date_peer, kept=kept, http=http)
    assert date_peer.requests == ["HEAD /"]
    root = write_root(tmp_path, pki, {}, agent={"system": {"refreshSeconds": 0}})
    for _ in range(2):
        run_system(
            root, {"AWS_ENDPOINT_URL_STS": date_peer.url}, kept=kept, http=http,
            only="system.clock", kernel_clock=lambda: SYNCED,
        )  # fmt: skip
    assert len(date_peer.requests) == 3


def test_the_kernel_state_is_read_through_the_real_syscall() -> None:
    state = read_kernel_clock()
    assert state is not None
    # An independent reading: ntp_adjtime(3) through glibc into a raw buffer, status at the
    # offset of struct timex's sixth member (after modes and four longs).
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    buf = ctypes.create_string_buffer(1024)
    ret = libc.ntp_adjtime(buf)
    long = ctypes.sizeof(ctypes.c_long)
    status = int.from_bytes(buf.raw[5 * long : 5 * long + 4], "little", signed=True)
    assert state.state == ret
    assert state.status == status
    assert state.synchronised == (ret != TIME_ERROR and not status & STA_UNSYNC)


def test_the_real_kernel_state_reaches_the_result(
    tmp_path: Path, pki: Pki, date_peer: DatePeer
) -> None:
    date_peer.date = http_date(timedelta(0))
    root = write_root(tmp_path, pki, {})
    report = run_system(root, {"AWS_ENDPOINT_URL_STS": date_peer.url}, only="system.clock")
    [found] = results(report, "system.clock")
    real = read_kernel_clock()
    assert real is not None
    assert found.details["kernel_synchronised"] is real.synchronised
    assert (found.status is Status.WARNING) is (not real.synchronised)


def test_the_demo_shows_the_system_area_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.demo import run_demo

    assert run_demo(tmp_path / "gg") == 0
    out = capsys.readouterr().out
    assert "[system]" in out
    rows = [line for line in out.splitlines() if "system.endpoint" in line]
    assert len(rows) == 3 and all("UNKNOWN" in r for r in rows)
    assert "the demo does not use the network" in out
    assert "system.clock" in out


def test_the_schema_lists_every_check_id_of_every_area() -> None:
    import importlib

    from agent.checks.registry import AREAS
    from agent.report import json_schema

    listed = json_schema()["$defs"]["CheckResult"]["properties"]["id"]["examples"]
    implemented = [c.id for m in AREAS.values() if m for c in importlib.import_module(m).CHECKS]
    assert {"system.clock", "system.endpoint"} <= set(listed)
    assert sorted(implemented) == sorted(listed)


@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate, what AWS sends
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",  # obsolete asctime
    ],
)
def test_every_http_date_form_is_read(text: str) -> None:
    from agent.system.clock import parse_http_date

    assert parse_http_date(text) == datetime(1994, 11, 6, 8, 49, 37, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Sun, 31 Feb 2026 08:49:37 GMT", "not a real date"),
        ("Sun, 06 Foo 1994 08:49:37 GMT", "not an HTTP date"),
        ("Sun, 06 Nov 1994 08:49:37 +0200", "not an HTTP date"),
        ("", "not an HTTP date"),
    ],
)
def test_bad_http_dates_say_why(text: str, why: str) -> None:
    from agent.system.clock import BadDate, parse_http_date

    with pytest.raises(BadDate, match=why):
        parse_http_date(text)


def test_the_token_exchange_service_on_the_device_is_not_aws_time(date_peer: DatePeer) -> None:
    """The TES container endpoint is the nucleus on the device: its Date is the device's own
    clock, and must not pass for AWS's."""
    from agent.aws.container import from_container
    from agent.errors import AwsError

    date_peer.date = http_date(timedelta(hours=3))
    http = HttpClient()
    env = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{date_peer.url}/2016-11-01/credentialprovider/",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "tes-token",
    }
    with pytest.raises(AwsError):  # the peer answers 403
        from_container(env, http, timeout=5, role_alias=None)
    assert date_peer.requests and http.date_seen is None
    http.request("GET", parse_endpoint(date_peer.url, what="sts"), "/", [], None, timeout=5)
    assert http.date_seen is not None and http.date_seen.value == date_peer.date
