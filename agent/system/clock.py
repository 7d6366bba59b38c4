"""Is the device clock right? Skew against AWS's ``Date`` headers, and the kernel's NTP state.

A core device with a wrong clock fails in ways that do not say "clock": AWS rejects a SigV4
request signed more than 5 minutes off its own time (``RequestTimeTooSkewed``, ``Signature
expired``; https://docs.aws.amazon.com/IAM/latest/UserGuide/signing-elements.html), so the token
exchange service, S3 artifact downloads and deployments fail; TLS sees certificates as not yet
valid or expired. A Raspberry Pi has no real-time clock: after a boot without network (or with
``fake-hwclock``'s saved time) it is hours or days off until NTP syncs - if UDP 123 is open.

Every AWS answer carries ``Date`` (RFC 9110 section 6.6.1, one-second resolution), so the skew is
measured on answers the agent receives anyway. The kernel's own view comes from ``adjtimex(2)``
with ``modes = 0`` (read only, no privilege): ``STA_UNSYNC`` in ``status``, or the return value
``TIME_ERROR``, means no time service has disciplined the clock
(https://man7.org/linux/man-pages/man2/adjtimex.2.html).
"""

from __future__ import annotations

import ctypes
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from agent.report import Finding, Status, Verdict

CHECK_ID = "system.clock"
TARGET = "the device clock"
SIGV4_LIMIT_S = 300
"""SigV4: a request whose signature time is more than 5 minutes from AWS's is rejected."""
WARN_S = 60
"""Beyond a minute the clock is clearly not synchronised, though still inside SigV4's limit."""

STA_UNSYNC = 0x0040
"""``status`` bit: the clock is not synchronised (include/uapi/linux/timex.h)."""
TIME_ERROR = 5
"""``adjtimex`` return value: the clock is not synchronised."""

FIX_CLOCK = (
    "synchronise the clock: `timedatectl set-ntp true` (systemd-timesyncd, or chrony/ntpd), "
    "allow outbound UDP 123 to the NTP servers (`timedatectl timesync-status` shows whether "
    "they answer), and on a board without a real-time clock such as a Raspberry Pi fit a "
    "battery-backed RTC HAT so the time survives a boot without network"
)


class _Timex(ctypes.Structure):
    """``struct timex`` (include/uapi/linux/timex.h); only the leading fields are read, the
    trailing reserved ints leave room for every kernel's layout."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("reserved", ctypes.c_int * 11),
    ]


@dataclass(frozen=True)
class KernelClock:
    """What ``adjtimex(2)`` says about the system clock."""

    state: int
    """The return value: 0 TIME_OK ... 5 TIME_ERROR."""
    status: int
    """The ``status`` bits (STA_*)."""
    maxerror_us: int
    esterror_us: int

    @property
    def synchronised(self) -> bool:
        """Not ``TIME_ERROR`` and no ``STA_UNSYNC``: what ``timedatectl``'s "System clock
        synchronized" reports."""
        return self.state != TIME_ERROR and not self.status & STA_UNSYNC


_ADJTIMEX: list[Any] = []
"""libc's ``adjtimex``, looked up once (every cycle of ``run`` reads the clock state)."""


def _adjtimex() -> Any:
    if not _ADJTIMEX:
        # The running interpreter is linked against libc: no find_library (it runs ldconfig).
        function = ctypes.CDLL(None, use_errno=True).adjtimex
        function.argtypes = [ctypes.POINTER(_Timex)]
        function.restype = ctypes.c_int
        _ADJTIMEX.append(function)
    return _ADJTIMEX[0]


def read_kernel_clock() -> KernelClock | None:
    """The kernel's clock state through the real ``adjtimex`` syscall; None off Linux or when
    the call fails (a seccomp filter may refuse it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        adjtimex = _adjtimex()
    except (OSError, AttributeError):
        return None
    tx = _Timex()  # modes = 0: read, change nothing
    state = adjtimex(ctypes.byref(tx))
    if state < 0:
        return None
    return KernelClock(state, tx.status, tx.maxerror, tx.esterror)


class BadDate(ValueError):
    """A ``Date`` header that is not an HTTP date."""


_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_TIME = r"(\d{2}):(\d{2}):(\d{2})"
# RFC 9110 section 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient
# must accept. Not email.utils: it loads the email package (~1 MB resident) for one function.
_IMF = re.compile(rf"[A-Z][a-z]{{2}}, (\d{{2}}) ([A-Z][a-z]{{2}}) (\d{{4}}) {_TIME} GMT")
_RFC850 = re.compile(rf"[A-Z][a-z]+day, (\d{{2}})-([A-Z][a-z]{{2}})-(\d{{2}}) {_TIME} GMT")
_ASCTIME = re.compile(rf"[A-Z][a-z]{{2}} ([A-Z][a-z]{{2}}) ([ \d]\d) {_TIME} (\d{{4}})")


def parse_http_date(value: str) -> datetime:
    """An HTTP date (RFC 9110 section 5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime
    forms) as an aware UTC datetime; BadDate for anything else."""
    text = value.strip()
    fields: tuple[str, ...] | None = None
    if m := _IMF.fullmatch(text):
        day, month, year, hh, mm, ss = m.groups()
        fields = (year, month, day, hh, mm, ss)
    elif m := _RFC850.fullmatch(text):
        day, month, yy, hh, mm, ss = m.groups()
        # RFC 9110: a two-digit year more than 50 years in the future is in the past century.
        now = datetime.now(timezone.utc).year
        year = 2000 + int(yy) if 2000 + int(yy) <= now + 50 else 1900 + int(yy)
        fields = (str(year), month, day, hh, mm, ss)
    elif m := _ASCTIME.fullmatch(text):
        month, day, hh, mm, ss, year = m.groups()
        fields = (year, month, day.strip(), hh, mm, ss)
    if fields is None or fields[1] not in _MONTHS:
        raise BadDate(f"the Date header {text[:64]!r} is not an HTTP date (RFC 9110 5.6.7)")
    year, month, day, hh, mm, ss = fields
    try:
        return datetime(
            int(year), _MONTHS[month], int(day), int(hh), int(mm), int(ss), tzinfo=timezone.utc
        )
    except ValueError:
        raise BadDate(f"the Date header {text[:64]!r} is not a real date") from None


def describe_skew(seconds: float) -> str:
    """``2 h 13 min ahead of`` / ``45 s behind`` AWS's time."""
    size = abs(seconds)
    if size < 120:
        amount = f"{size:.0f} s"
    elif size < 2 * 3600:
        amount = f"{size / 60:.0f} min"
    elif size < 3 * 86400:
        hours, minutes = divmod(round(size / 60), 60)
        amount = f"{hours} h {minutes} min"
    else:
        amount = f"{size / 86400:.1f} days"
    return f"{amount} {'ahead of' if seconds > 0 else 'behind'}"


@dataclass(frozen=True)
class Skew:
    """The device clock minus AWS's, measured on one answer."""

    seconds: float
    source: str
    """The URL whose ``Date`` was used."""
    measured_at: datetime
    """The device's time when the answer arrived."""

    @property
    def direction(self) -> str:
        """``ahead`` or ``behind`` (of AWS's time)."""
        return "ahead" if self.seconds > 0 else "behind"

    @property
    def off(self) -> bool:
        """Beyond the WARNING threshold: the clock is known to be wrong."""
        return abs(self.seconds) > WARN_S


def skew_finding(skew: Skew) -> Finding | None:
    """CRITICAL beyond SigV4's 5 minutes, WARNING beyond a minute, else nothing."""
    size = abs(skew.seconds)
    if size <= WARN_S:
        return None
    where = f"(Date of {skew.source})"
    if size > SIGV4_LIMIT_S:
        return Finding(
            Status.CRITICAL,
            "clock_skew",
            f"the device clock is {describe_skew(skew.seconds)} AWS's time {where}: beyond "
            "SigV4's 5-minute limit AWS rejects every signed request (RequestTimeTooSkewed, "
            "Signature expired), so credentials, artifact downloads and deployments fail, and "
            "TLS can see valid certificates as not yet valid or expired",
            FIX_CLOCK,
        )
    return Finding(
        Status.WARNING,
        "clock_skew",
        f"the device clock is {describe_skew(skew.seconds)} AWS's time {where}; at 5 minutes "
        "AWS rejects signed requests (SigV4)",
        FIX_CLOCK,
    )


def kernel_finding(kernel: KernelClock | None) -> Finding | None:
    """WARNING when the kernel reports the clock as not synchronised."""
    if kernel is None or kernel.synchronised:
        return None
    why = "TIME_ERROR" if kernel.state == TIME_ERROR else "STA_UNSYNC"
    return Finding(
        Status.WARNING,
        "clock_unsynchronised",
        f"the kernel reports the clock as not synchronised by NTP (adjtimex: {why}); it drifts "
        "and after a reboot without network it starts from a stale time",
        FIX_CLOCK,
    )


def clock_verdict(
    skew: Skew | None,
    kernel: KernelClock | None,
    unmeasured: Finding | None = None,
) -> Verdict:
    """The one result of ``system.clock``: the skew (or why it is not known) and the kernel."""
    findings = [f for f in (skew_finding(skew) if skew else None, kernel_finding(kernel)) if f]
    if unmeasured is not None:
        findings.append(unmeasured)
    details: dict[str, object] = {}
    if skew is not None:
        details.update(
            skew_seconds=round(skew.seconds, 1),
            direction=skew.direction,
            source=skew.source,
            measured_at=skew.measured_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    if kernel is not None:
        details.update(kernel_synchronised=kernel.synchronised, kernel_status=kernel.status)
    if skew is not None:
        ok = f"within {abs(skew.seconds):.0f} s of AWS's time (Date of {skew.source})"
    else:
        ok = "no AWS answer to compare with"
    if kernel is not None and kernel.synchronised:
        ok += "; the kernel reports it synchronised"
    return Verdict(TARGET, ok, tuple(findings), details)
