"""The durable spool: FIFO, bounds, crash safety, and clean errors on a full or read-only disk."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.transports.spool import Spool, SpoolError, spool_file
from tests.peers.base import unavailable

KB = 1024


def test_fifo_peek_and_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", 64 * KB)
    for i in range(5):
        spool.put(f"report-{i}".encode())
    batch = spool.peek_batch(3)
    assert [e.payload for e in batch] == [b"report-0", b"report-1", b"report-2"]
    assert spool.depth == 5  # peeking does not remove
    spool.ack([batch[0].id, batch[1].id])
    assert [e.payload for e in spool.peek_batch(10)] == [b"report-2", b"report-3", b"report-4"]
    assert spool.depth == 3
    assert spool.size == len(b"report-2") * 3
    assert spool.dropped == 0
    spool.ack([])  # nothing to do, no error
    spool.ack([batch[0].id])  # acknowledging twice is harmless
    assert spool.depth == 3


def test_put_many_is_one_report_and_discard_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", 64 * KB)
    spool.put_many([b"chunk-1", b"chunk-2"])
    spool.put(b"next")
    first = spool.peek_batch(1)[0]
    spool.discard([first.id])
    assert [e.payload for e in spool.peek_batch(10)] == [b"chunk-2", b"next"]
    assert spool.dropped == 1


def test_bounded_by_max_bytes_oldest_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite3", 64 * KB)
    payloads = [bytes([65 + i]) * (10 * KB) for i in range(10)]  # 10 x 10 KB into 64 KB
    for p in payloads:
        spool.put(p)
    kept = [e.payload for e in spool.peek_batch(100)]
    assert kept == payloads[4:]  # the six newest fit, the four oldest went first
    assert spool.dropped == 4
    assert spool.size == 60 * KB <= spool.max_bytes
    # A report bigger than the whole bound cannot be kept: everything older goes, and it too.
    spool.put(b"x" * (65 * KB))
    assert spool.depth == 0
    assert spool.dropped == 4 + 6 + 1


def test_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    spool = Spool(path, 64 * KB)
    for i in range(8):
        spool.put(bytes([i]) * (10 * KB))
    spool.ack([spool.peek_batch(1)[0].id])
    spool.close()
    again = Spool(path, 64 * KB)
    assert again.depth == 5  # 8 x 10 KB into 64 KB kept 6, one acknowledged
    assert again.dropped == 2
    assert [e.payload[0] for e in again.peek_batch(10)] == [3, 4, 5, 6, 7]


def test_spool_file_is_under_the_configured_directory(tmp_path: Path) -> None:
    assert spool_file(tmp_path / "spool") == tmp_path / "spool" / "spool.sqlite3"
    assert spool_file(None) == Path("gghealth-spool") / "spool.sqlite3"
    spool = Spool(spool_file(tmp_path / "a" / "b"), 64 * KB)
    spool.put(b"x")
    assert (tmp_path / "a" / "b" / "spool.sqlite3").is_file()
    mode = (tmp_path / "a" / "b").stat().st_mode & 0o777
    assert mode & 0o007 == 0  # not world-accessible


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from agent.transports.spool import Spool
    spool = Spool(Path(sys.argv[1]), 1 << 20)
    i = 0
    while True:
        spool.put_many([f"{i}-a".encode(), f"{i}-b".encode()])
        print(i, flush=True)
        i += 1
    """
)


def test_every_committed_report_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    acknowledged = -1
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= 200:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    entries = [e.payload.decode() for e in Spool(path, 1 << 20).peek_batch(100_000)]
    # Everything put() returned for is there, in order; a report is never half there.
    expected = [f"{i}-{part}" for i in range(acknowledged + 1) for part in "ab"]
    assert entries[: len(expected)] == expected
    assert len(entries) % 2 == 0
    assert entries == [f"{i}-{part}" for i in range(len(entries) // 2) for part in "ab"]


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (mounted as root), unmounted afterwards."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_is_a_clear_error_not_a_crash(tiny_tmpfs: Path) -> None:
    spool = Spool(tiny_tmpfs / "spool.sqlite3", 16 * 1024 * KB)  # bound larger than the disk
    with pytest.raises(SpoolError) as caught:
        for _ in range(64):
            spool.put(os.urandom(8 * KB))
    assert caught.value.reason == "disk_full"
    assert "no space left" in str(caught.value)
    assert "free space" in caught.value.remediation
    # What was committed before the disk filled is still there and readable.
    depth = spool.depth
    assert depth >= 1
    assert len(spool.peek_batch(100)) == depth


def test_read_only_file_system_is_a_clear_error(tiny_tmpfs: Path) -> None:
    spool = Spool(tiny_tmpfs / "spool.sqlite3", 64 * KB)
    spool.put(b"before")
    spool.close()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    with pytest.raises(SpoolError) as caught:
        Spool(tiny_tmpfs / "spool.sqlite3", 64 * KB).put(b"after")
    assert caught.value.reason in {"read_only", "cannot_open"}
    assert "writable" in caught.value.remediation
    # A spool directory that cannot even be created is the same kind of error.
    with pytest.raises(SpoolError) as nested:
        Spool(tiny_tmpfs / "new" / "spool.sqlite3", 64 * KB).put(b"x")
    assert nested.value.reason in {"read_only", "cannot_open"}


def test_a_corrupt_file_is_moved_aside_and_a_new_spool_started(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    spool = Spool(path, 64 * KB)
    spool.put(b"fresh")
    assert [e.payload for e in spool.peek_batch(5)] == [b"fresh"]
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")


def test_the_file_is_wal_mode_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    Spool(path, 64 * KB).put(b"x")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_spool_never_written_reads_empty_without_loading_sqlite(tmp_path: Path) -> None:
    # A device whose reports are always delivered must not pay for SQLite (docs/benchmarks.md).
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from agent.transports.spool import Spool
        spool = Spool(Path(sys.argv[1]), 1024)
        print(spool.peek_batch(5), spool.depth, spool.dropped, spool.size)
        spool.ack([])
        spool.close()
        print("sqlite3" in sys.modules)
        spool.put(b"kept")
        print("sqlite3" in sys.modules, spool.depth)
        """
    )
    path = tmp_path / "spool" / "spool.sqlite3"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert proc.stdout.splitlines() == ["[] 0 0 0", "False", "True 1"]
    assert path.is_file()


def test_a_spool_path_that_cannot_be_checked_still_fails_with_a_reason(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(SpoolError) as err:
        Spool(not_a_dir / "spool.sqlite3", 1024).peek_batch(1)
    assert err.value.reason == "cannot_open"
