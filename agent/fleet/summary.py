"""``gg-health-agent fleet-summary``: one table for many devices, from reports AWS already keeps.

Reads what an IoT rule leaves behind: a directory of report files (an S3 prefix synced locally,
searched recursively, gzip or not), a JSONL file or stream (``-``), CloudWatch Logs exports
(``<timestamp> <message>`` lines, or ``filter-log-events`` JSON whose events carry the report as
``message``) and records concatenated without separators (Firehose). Only the newest report of
each thing is kept (by ``generated_at``, then ``sequence``); chunks of one report are merged.
Memory is bounded by the number of devices, not of reports: files are streamed line by line and
each device keeps a small digest. Input that is not a health report is counted, never fatal.
"""

from __future__ import annotations

import gzip
import heapq
import io
import json
import os
import re
import stat
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TextIO, cast

from agent.errors import AgentError
from agent.fleet.shadow import DeviceCertDays
from agent.printable import printable_lines
from agent.report import Status, worst

MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_IDS_PER_DEVICE = 64
MAX_DEPTH = 3
TOP = 10

NOT_JSON = "not JSON"
NOT_REPORT = "not a health report"
TOO_LONG = "line too long"
TOO_LARGE = "document too large"
UNREADABLE = "unreadable file"
BINARY = "binary file"
NOT_LINES = "no line breaks"
GZIP_BOMB = "gzip expands more than 100-fold"

MAX_GZIP_RATIO = 100
"""Decompressed bytes that held no report, per compressed byte, past the first
:data:`GZIP_GRACE` of them: a decompression bomb (4 GiB of newlines in 4 MiB of gzip) is all
such bytes, a thousandfold; reports, however repetitive, do not count against it."""
GZIP_GRACE = 4 * 1024 * 1024

_STATUSES = {s.value: s for s in Status}
_DECODER = json.JSONDecoder()
# ``aws logs create-export-task`` writes "<RFC 3339 timestamp> <message>" per event.
_EXPORT_PREFIX = re.compile(r"\d{4}-\d\d-\d\dT\S+ ")
_GZIP_MAGIC = b"\x1f\x8b"


class _Counted(io.RawIOBase):
    """A raw stream that counts the bytes read through it (the compressed size of a gzip)."""

    def __init__(self, raw: IO[bytes]) -> None:
        # read1 where there is one: a pipe's bytes are taken as they come, not waited for.
        self._read = getattr(raw, "read1", raw.read)
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


class FleetInputError(AgentError):
    """The source itself cannot be read (missing path, permission)."""


@dataclass
class _Device:
    """Digest of the newest report of one thing (all its chunks)."""

    key: tuple[float, int]
    generated_at: str
    sequence: int
    status: Status
    failing: dict[str, Status] = field(default_factory=dict)
    cert: DeviceCertDays | None = field(default_factory=DeviceCertDays)
    cert_days: int | None = None


def _when(text: Any) -> float | None:
    if not isinstance(text, str) or len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _status(value: Any) -> Status | None:
    return _STATUSES.get(value) if isinstance(value, str) else None


def _decode_all(text: str) -> Iterator[Any]:
    """Every JSON value in ``text``, also back-to-back ones; JSONDecodeError at the first bad."""
    index, end = 0, len(text)
    while True:
        while index < end and text[index] in " \t\r\n":
            index += 1
        if index >= end:
            return
        value, index = _DECODER.raw_decode(text, index)
        yield value


class FleetReader:
    """Accumulates the newest report per thing from any number of sources."""

    def __init__(self) -> None:
        self.devices: dict[str, _Device] = {}
        self.reports = 0
        self.skipped: Counter[str] = Counter()

    # -- sources -----------------------------------------------------------------------------
    def read(self, source: str | Path) -> None:
        """Read a directory (recursively), a file, or ``-`` for stdin."""
        if str(source) == "-":
            self._read_stream(sys.stdin.buffer)
            return
        path = Path(source)
        if path.is_dir():
            for directory, dirs, files in os.walk(path, onerror=self._walk_error):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        self._read_member(Path(directory, name))
            return
        self._read_file(path, top_level=True)

    def _read_member(self, path: Path) -> None:
        # Only regular files: opening a FIFO or a device found in the tree could block forever.
        try:
            regular = stat.S_ISREG(path.stat().st_mode)
        except OSError:
            regular = False
        if regular:
            self._read_file(path, top_level=False)
        else:
            self.skipped[UNREADABLE] += 1

    def _walk_error(self, _exc: OSError) -> None:
        self.skipped[UNREADABLE] += 1

    def _read_file(self, path: Path, *, top_level: bool) -> None:
        try:
            # O_NONBLOCK: opening a FIFO named on the command line must not wait for a writer.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, ValueError) as exc:
            if top_level:
                why = exc.strerror if isinstance(exc, OSError) else "a NUL byte in the path"
                raise FleetInputError(
                    f"cannot read {path}: {why or exc}; give a directory of report "
                    "files, a JSONL file, or - for stdin"
                ) from None
            self.skipped[UNREADABLE] += 1
            return
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                if top_level:
                    raise FleetInputError(
                        f"{path} is not a regular file (a FIFO or a device); to read a stream, "
                        "give - and redirect it to stdin"
                    )
                self.skipped[UNREADABLE] += 1
                return
            self._read_stream(fh)

    def _read_stream(self, raw: IO[bytes]) -> None:
        compressed = _Counted(raw)
        stream: IO[bytes] = io.BufferedReader(compressed)
        try:
            zipped = cast(io.BufferedReader, stream).peek(2)[:2] == _GZIP_MAGIC
            if zipped:
                # Logs export tasks and Firehose write gzip objects.
                stream = cast(IO[bytes], io.BufferedReader(gzip.GzipFile(fileobj=stream)))
            # JSON text never holds NUL: a source that does is not ours (one count).
            if b"\0" in cast(io.BufferedReader, stream).peek(1024)[:1024]:
                self.skipped[BINARY] += 1
                return
            self._read_lines(stream, compressed if zipped else None)
        except (OSError, EOFError):  # an I/O error mid-file, a corrupt or truncated gzip
            self.skipped[UNREADABLE] += 1

    def _read_lines(self, stream: IO[bytes], compressed: _Counted | None) -> None:
        first = True
        wasted = 0
        while line := stream.readline(MAX_LINE_BYTES + 1):
            if compressed and wasted > GZIP_GRACE and wasted > MAX_GZIP_RATIO * compressed.count:
                self.skipped[GZIP_BOMB] += 1
                return
            reports = self.reports
            wasted += len(line)  # given back below if the line was a report
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                dropped = len(line)
                while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    # Drop the rest of an oversized line without holding it - up to a bound: a
                    # stream without line breaks (/dev/zero on stdin) would never end.
                    dropped += len(rest)
                    if dropped > MAX_DOCUMENT_BYTES:
                        self.skipped[NOT_LINES] += 1
                        return
                self.skipped[TOO_LONG] += 1
                continue
            stripped = line.strip()
            if not stripped:
                continue
            if first and stripped in (b"{", b"["):
                # Pretty-printed JSON (``aws logs filter-log-events``, ``jq .``): one document.
                rest = stream.read(MAX_DOCUMENT_BYTES + 1 - len(line))
                if len(line) + len(rest) > MAX_DOCUMENT_BYTES:
                    self.skipped[TOO_LARGE] += 1
                    return
                self._text(line + rest)
                return
            first = False
            self._text(line)
            if self.reports > reports:
                wasted -= len(line)

    # -- records -----------------------------------------------------------------------------
    def _text(self, data: bytes) -> None:
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            self.skipped[NOT_JSON] += 1
            return
        if match := _EXPORT_PREFIX.match(text):
            text = text[match.end() :]
        try:
            for value in _decode_all(text):
                self._take(value, 0)
        except (ValueError, RecursionError):  # JSONDecodeError, or absurdly deep nesting
            self.skipped[NOT_JSON] += 1

    def _take(self, value: Any, depth: int) -> None:
        if isinstance(value, list) and depth < MAX_DEPTH:
            for item in value:
                self._take(item, depth + 1)
        elif not isinstance(value, dict) or depth > MAX_DEPTH:
            self.skipped[NOT_REPORT] += 1
        elif "checks" in value or "schema_version" in value:
            if not self._report(value):
                self.skipped[NOT_REPORT] += 1
        elif isinstance(value.get("message"), str):  # a CloudWatch Logs event
            self._text(value["message"].encode())
        elif isinstance(value.get("message"), dict):
            self._take(value["message"], depth + 1)
        elif isinstance(events := value.get("events", value.get("logEvents")), list):
            self._take(events, depth)
        else:
            self.skipped[NOT_REPORT] += 1

    def _report(self, doc: dict[str, Any]) -> bool:
        thing, checks, sequence = doc.get("thing_name"), doc.get("checks"), doc.get("sequence")
        status = _status(doc.get("status"))
        when = _when(doc.get("generated_at"))
        if (
            not isinstance(thing, str)
            or not 0 < len(thing) <= 256
            or status is None
            or not isinstance(checks, list)
            or not isinstance(sequence, int)
            or isinstance(sequence, bool)
            or when is None
        ):
            return False
        chunk = doc.get("chunk")
        index = chunk.get("index") if isinstance(chunk, dict) else None
        if index in (None, 1):
            self.reports += 1
        key = (when, sequence)
        device = self.devices.get(thing)
        if device is None or key > device.key:
            device = _Device(key, str(doc["generated_at"]), sequence, status)
            self.devices[thing] = device
        elif key < device.key:
            return True  # an older report: read, but not the newest
        self._digest(device, checks, chunked=index is not None)
        return True

    @staticmethod
    def _digest(device: _Device, checks: list[Any], *, chunked: bool) -> None:
        cert = device.cert
        for c in checks:
            if not isinstance(c, dict) or not isinstance(c.get("id"), str):
                continue
            status = _status(c.get("status"))
            target, details = c.get("target"), c.get("details")
            if cert is not None and isinstance(target, str):
                cert.add(c["id"], target, details if isinstance(details, dict) else {})
            if status is None or status is Status.OK:
                continue
            seen = device.failing.get(c["id"])
            room = seen is not None or len(device.failing) < MAX_IDS_PER_DEVICE
            if room and (seen is None or status.severity > seen.severity):
                device.failing[c["id"]] = status
        if cert is not None and not chunked:  # complete: keep the number, drop the tracker
            device.cert_days, device.cert = cert.days_left(), None

    # -- the summary -------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The fleet table as plain data (what ``--format json`` prints)."""
        by_status = Counter(d.status for d in self.devices.values())
        failing: dict[str, Counter[Status]] = {}
        expiry: list[tuple[int, str]] = []
        for thing, d in self.devices.items():
            for check_id, status in d.failing.items():
                failing.setdefault(check_id, Counter())[status] += 1
            days = d.cert.days_left() if d.cert is not None else d.cert_days
            if days is not None:
                expiry.append((days, thing))
        ranked = sorted(failing.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        nearest = heapq.nsmallest(TOP, expiry)
        order = sorted(Status, key=lambda s: -s.severity)
        return {
            "devices": len(self.devices),
            "reports": self.reports,
            "status": worst(d.status for d in self.devices.values()).value,
            "by_status": {s.value: by_status.get(s, 0) for s in order},
            "failing_checks": [
                {
                    "id": check_id,
                    "devices": sum(counts.values()),
                    "by_status": {s.value: counts[s] for s in order if s is not Status.OK},
                }
                for check_id, counts in ranked[: TOP * 5]
            ],
            "nearest_cert_expiry": [
                {
                    "thing_name": thing,
                    "days_left": days,
                    "status": self.devices[thing].status.value,
                    "generated_at": self.devices[thing].generated_at,
                }
                for days, thing in nearest
            ],
            "cert_unknown_devices": len(self.devices) - len(expiry),
            "skipped": {"lines": sum(self.skipped.values()), "reasons": dict(self.skipped)},
        }


def read_fleet(source: str | Path) -> dict[str, Any]:
    """The fleet summary of ``source`` as plain data; FleetInputError if it cannot be read."""
    reader = FleetReader()
    reader.read(source)
    return reader.summary()


def render_text(summary: dict[str, Any]) -> str:
    """The fleet table for people."""
    n = summary["devices"]
    out = [f"Fleet: {n} device(s), newest report of each ({summary['reports']} report(s) read)"]
    skipped = summary["skipped"]
    if skipped["lines"]:
        reasons = sorted(skipped["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
        why = (
            reasons[0][0]
            if len(reasons) == 1
            else ", ".join(f"{reason} ({count})" for reason, count in reasons)
        )
        out.append(f"{skipped['lines']} line(s) skipped: {why}")
    out += ["", "Devices per status"]
    for status, count in summary["by_status"].items():
        share = f"{100 * count / n:5.1f}%" if n else ""
        out.append(f"  {status:<9} {count:>7}  {share}")
    out += ["", "Most common failing checks (devices)"]
    for row in summary["failing_checks"][:TOP]:
        parts = ", ".join(f"{s} {c}" for s, c in row["by_status"].items() if c)
        out.append(f"  {row['id']:<34} {row['devices']:>7}  {parts}")
    if not summary["failing_checks"]:
        out.append("  (none)")
    out += ["", "Nearest device-certificate expiry"]
    for row in summary["nearest_cert_expiry"]:
        out.append(
            f"  {row['thing_name']:<34} {row['days_left']:>6} days  {row['status']:<8} "
            f"(report {row['generated_at']})"
        )
    if summary["cert_unknown_devices"]:
        out.append(f"  (not reported by {summary['cert_unknown_devices']} device(s))")
    out += ["", f"Overall: {summary['status']}"]
    return printable_lines(out)


def fleet_summary(source: str | Path) -> str:
    """The fleet table of ``source`` as text."""
    return render_text(read_fleet(source))


def fleet_summary_json(source: str | Path) -> str:
    """The fleet summary of ``source`` as one JSON object."""
    return json.dumps(read_fleet(source), separators=(",", ":"))


def run_fleet_summary(source: str, fmt: str = "text", out: TextIO | None = None) -> int:
    """Print the summary; the exit status is the worst device status (3 when there is none)."""
    summary = read_fleet(source)
    text = (
        json.dumps(summary, separators=(",", ":")) + "\n" if fmt == "json" else render_text(summary)
    )
    (out or sys.stdout).write(text)
    return Status(summary["status"]).exit_code
