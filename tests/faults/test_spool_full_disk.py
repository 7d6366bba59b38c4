"""The spool on a file system that fills up (issue 19 item 4): on a 200 KiB tmpfs, with the
peer down, reports were spooled until SQLite's log filled the disk; once the peer was back,
removing the delivered rows needed space there was none of, so every cycle resent the same
reports (17 copies each in 16 cycles). Now each spooled report is handed out once, the log is
truncated once the spool is empty, and entries whose removal cannot be recorded are never handed
out again by this process. A real tmpfs, mounted for the test (root, as CI runs)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.transports.spool import RESERVE_BYTES, Spool, Spooled, SpoolError, drain


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(spool: Spool) -> int:
    """Spool 20 KB reports until the disk refuses one; how many were taken."""
    for taken in range(50):
        try:
            spool.put(os.urandom(20_000))
        except SpoolError as exc:
            assert exc.reason == "disk_full"
            return taken
    raise AssertionError("a 200 KiB file system took 1 MB")


def test_a_full_disk_hands_every_spooled_report_out_once(small_fs: Path) -> None:
    spool = Spool(small_fs / "spool" / "spool.sqlite3", 16 * 1024 * 1024)
    taken = fill(spool)
    assert taken >= 1
    reserve = spool.reserve.stat()
    assert reserve.st_blocks * 512 >= RESERVE_BYTES  # real blocks, not a sparse promise
    handed: list[bytes] = []

    def send(batch: list[Spooled]) -> bool:
        handed.extend(e.payload for e in batch)
        spool.ack(e.id for e in batch)
        return True

    for _ in range(5):  # five cycles after the peer came back
        drain(spool, send)
    assert len(handed) == taken and len(set(handed)) == taken
    assert spool.depth == 0
    wal = Path(f"{spool.path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    spool.put(b"after the outage")  # the space came back
    assert [e.payload for e in spool.peek_batch(5)] == [b"after the outage"]


def test_acks_that_cannot_be_recorded_are_not_resent(tmp_path: Path) -> None:
    """A database that refuses every deletion as a full disk would (a trigger raising SQLite's
    own "database or disk is full" - the storage boundary, not our code): the removal fails,
    loudly, and the delivered entry is not handed out again by this process."""
    spool = Spool(tmp_path / "spool" / "spool.sqlite3", 16 * 1024 * 1024)
    spool.put(b"one")
    spool.put(b"two")
    with sqlite3.connect(spool.path) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE DELETE ON entries "
            "BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END"
        )
    first, _ = spool.peek_batch(5)
    with pytest.raises(SpoolError) as failed:
        spool.ack([first.id])
    assert failed.value.reason == "disk_full"
    assert [e.payload for e in spool.peek_batch(5)] == [b"two"]
    assert spool.depth == 1
