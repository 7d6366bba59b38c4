"""``fleet-summary`` on sources that never end (issue 19 item 11): a FIFO or a device named on the
command line is refused at once, a stream without line breaks and a gzip bomb are read only up
to a bound, each leaving a count of what was skipped - never a hang or minutes of CPU."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

from agent.fleet.summary import GZIP_BOMB, MAX_DOCUMENT_BYTES, NOT_LINES, read_fleet
from tests.hostile import inputs


def fleet_summary(*args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "fleet-summary", *args, "--format", "json"],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_fifo_or_a_device_named_as_the_source_is_refused(tmp_path: Path) -> None:
    fifo = inputs.fifo(tmp_path / "reports.jsonl")
    for source in (str(fifo), "/dev/zero"):
        proc = fleet_summary(source)
        assert proc.returncode == 3
        assert "not a regular file" in proc.stderr and "give -" in proc.stderr


def test_dev_zero_on_stdin_is_a_binary_source() -> None:
    with open("/dev/zero", "rb") as zero:
        proc = fleet_summary("-", stdin=zero.fileno())
    assert proc.returncode == 3, proc.stderr  # no device at all: UNKNOWN
    assert json.loads(proc.stdout)["skipped"]["reasons"] == {"binary file": 1}


def test_a_stream_without_line_breaks_is_read_only_to_a_bound() -> None:
    """An endless pipe of 'a' (no NUL, no newline) stops after MAX_DOCUMENT_BYTES."""
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys\nwhile True: sys.stdout.buffer.write(b'a' * 65536)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert writer.stdout is not None
        proc = fleet_summary("-", stdin=writer.stdout.fileno())
    finally:
        writer.kill()
        writer.wait()
    assert proc.returncode == 3, proc.stderr
    assert json.loads(proc.stdout)["skipped"]["reasons"] == {NOT_LINES: 1}
    assert MAX_DOCUMENT_BYTES < 100 * 1024 * 1024


def test_a_gzip_bomb_is_cut_short(tmp_path: Path) -> None:
    """1 GiB of newlines in about a megabyte of gzip: the ratio gives it away."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    chunk = b"\n" * (1 << 20)
    bomb = tmp_path / "reports.jsonl.gz"
    with bomb.open("wb") as out:
        for _ in range(1024):
            out.write(compressor.compress(chunk))
        out.write(compressor.flush())
    assert bomb.stat().st_size < 2 * 1024 * 1024
    summary = read_fleet(bomb)
    assert summary["skipped"]["reasons"] == {GZIP_BOMB: 1}
    assert summary["devices"] == 0


def test_an_honest_gzip_is_read_whole(tmp_path: Path) -> None:
    """Control: a gzip of real reports, however repetitive, is not mistaken for a bomb."""
    line = json.dumps({
        "schema_version": 1, "agent_version": "0.1.0", "thing_name": "pi-1",
        "generated_at": "2026-12-06T00:00:00Z", "sequence": 1, "duration_ms": 1.0,
        "status": "OK", "summary": {}, "checks": [],
    }).encode() + b"\n"  # fmt: skip
    source = tmp_path / "reports.jsonl.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    with source.open("wb") as out:
        out.write(compressor.compress(line * 200_000))  # ~45 MB of identical reports
        out.write(compressor.flush())
    summary = read_fleet(source)
    assert summary["reports"] == 200_000 and summary["skipped"]["lines"] == 0
