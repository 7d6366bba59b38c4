"""The durable spool: reports that could not be delivered yet, in order, on disk.

SQLite from the standard library in WAL mode with ``synchronous=FULL``: a committed ``put``
survives a ``kill -9`` and a power cut (https://www.sqlite.org/wal.html,
https://www.sqlite.org/pragma.html#pragma_synchronous). One transaction per report, so a report
split into chunks is spooled whole or not at all. The total payload size is bounded by
``spool.maxBytes``: the oldest entries are dropped first and the drops are counted (persisted,
so ``agent.publish`` can say how much history an outage cost). Delivery is FIFO and
at-least-once: an entry leaves the spool only when the transport acknowledges it.

A full disk, a read-only file system or an unreadable file raise :class:`SpoolError` with a
reason and a remediation — the caller reports it as a CRITICAL ``agent.publish``, never a crash.

Removing a delivered entry must not need space the disk no longer has: in WAL mode a DELETE
appends pages to the log. So the spool keeps a small reserve file beside the database, given up
when an acknowledgement meets a full disk; if the removal still fails, the delivered ids are
remembered in memory and never handed out again by this process (after a restart on a disk that
stayed full they may be sent once more: delivery is at-least-once). The log is truncated once
the spool is empty (``wal_checkpoint(TRUNCATE)``), so it cannot keep the disk full either.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from errno import EACCES, EEXIST, EISDIR, ENOENT, ENOSPC, ENOTDIR, EPERM, EROFS
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import AgentError
from agent.log import get_logger

if TYPE_CHECKING:
    import sqlite3

log = get_logger(__name__)

DEFAULT_DIRECTORY = Path("gghealth-spool")
"""Relative to the working directory: ``/greengrass/v2/work/<component>`` for a component."""
FILE_NAME = "spool.sqlite3"
RESERVE_BYTES = 64 * 1024
"""Room kept beside the database for removing delivered entries on a full disk (a batch of 16
deletions appends about 30 pages of 4 KiB to the write-ahead log)."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL, size INTEGER NOT NULL,"
    " spooled_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO meta VALUES ('bytes', 0), ('dropped', 0)",
)


class SpoolError(AgentError):
    """The spool cannot be read or written; ``reason`` names why, ``remediation`` what to do."""

    def __init__(self, message: str, reason: str, remediation: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.remediation = remediation


@dataclass(frozen=True)
class Spooled:
    """One spooled payload."""

    id: int
    """Increasing with the order of ``put``; pass it back to :meth:`Spool.ack`."""
    payload: bytes


def spool_file(directory: Path | None) -> Path:
    """The database file for ``spool.path`` (a directory; default ``./gghealth-spool``)."""
    return (directory or DEFAULT_DIRECTORY) / FILE_NAME


class Spool:
    """A bounded FIFO of payloads in one SQLite file, safe to share between threads.

    Nothing touches the disk until the first operation, so a spool on a broken disk can be
    constructed; every operation may raise :class:`SpoolError`. Reading a spool that was never
    written (no file) answers "empty" without loading SQLite: a device whose reports are always
    delivered never pays the ~2 MB of resident memory the module and its library cost.
    """

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._settled: set[int] = set()
        """Delivered or discarded ids the disk had no room to remove: never handed out again."""
        self.reserve = path.with_name(path.name + ".reserve")

    # -- public API ------------------------------------------------------------------------
    def put(self, payload: bytes) -> None:
        """Append one payload (durably, before returning)."""
        self.put_many([payload])

    def put_many(self, payloads: Sequence[bytes]) -> None:
        """Append the payloads of one report in one transaction, dropping the oldest to fit."""
        incoming = sum(len(p) for p in payloads)
        with self._transaction() as db:
            (used,) = db.execute("SELECT value FROM meta WHERE key = 'bytes'").fetchone()
            dropped = 0
            # Oldest first until the new report fits; a report larger than the whole bound
            # empties the spool and is itself dropped below.
            while used and used + incoming > self.max_bytes:
                row = db.execute("SELECT id, size FROM entries ORDER BY id LIMIT 1").fetchone()
                if row is None:
                    used = 0
                    break
                db.execute("DELETE FROM entries WHERE id = ?", (row[0],))
                used -= row[1]
                dropped += 1
            now = time.time()
            if incoming <= self.max_bytes:
                db.executemany(
                    "INSERT INTO entries (payload, size, spooled_at) VALUES (?, ?, ?)",
                    [(p, len(p), now) for p in payloads],
                )
                used += incoming
            else:
                dropped += len(payloads)
            db.execute("UPDATE meta SET value = ? WHERE key = 'bytes'", (used,))
            if dropped:
                db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (dropped,))
        if dropped:
            log.warning("spool_full_dropped_oldest", dropped=dropped, max_bytes=self.max_bytes)

    def peek_batch(self, n: int) -> list[Spooled]:
        """The ``n`` oldest payloads, oldest first; they stay spooled until acknowledged."""
        if self._never_written():
            return []
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, payload FROM entries ORDER BY id LIMIT ?", (n + len(self._settled),)
            ).fetchall()
        return [Spooled(int(i), bytes(p)) for i, p in rows if i not in self._settled][:n]

    def ack(self, ids: Iterable[int]) -> None:
        """Forget delivered payloads."""
        self._remove(ids, count_as_dropped=False)

    def discard(self, ids: Iterable[int]) -> None:
        """Forget payloads the peer will never accept (counted as dropped)."""
        self._remove(ids, count_as_dropped=True)

    @property
    def depth(self) -> int:
        """How many payloads wait."""
        if self._never_written():
            return 0
        with self._transaction() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM entries").fetchone()
        return max(0, int(count) - len(self._settled))

    @property
    def dropped(self) -> int:
        """How many payloads were dropped to respect ``max_bytes`` (ever, for this file)."""
        return self._meta("dropped")

    @property
    def size(self) -> int:
        """Payload bytes spooled."""
        return self._meta("bytes")

    def close(self) -> None:
        """Close the database; a later operation reopens it."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            import sqlite3

            with contextlib.suppress(sqlite3.Error):
                db.close()

    # -- internals -------------------------------------------------------------------------
    def _never_written(self) -> bool:
        if self._db is not None:
            return False
        try:
            os.stat(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False  # let opening it report why, with a reason
        return False

    def _meta(self, key: str) -> int:
        if self._never_written():
            return 0
        with self._transaction() as db:
            (value,) = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(value)

    def _remove(self, ids: Iterable[int], *, count_as_dropped: bool) -> None:
        wanted = [(i,) for i in ids]
        if not wanted:
            return
        try:
            self._delete(wanted, count_as_dropped)
        except SpoolError as exc:
            # A full disk: give up the reserve and try once more. Whatever still fails, this
            # process never hands these entries out again (a delivered report sent every
            # cycle is worse than one the spool forgot to count), and says so loudly.
            try:
                if exc.reason != "disk_full":
                    raise
                self.reserve.unlink(missing_ok=True)
                self._delete(wanted, count_as_dropped)
                log.warning("spool_reserve_used", path=str(self.path))
            except SpoolError:
                self._settled.update(i for (i,) in wanted)
                log.error(
                    "spool_cannot_remove_delivered",
                    path=str(self.path),
                    reason=exc.reason,
                    remembered=len(self._settled),
                )
                raise
        self._settled.difference_update(i for (i,) in wanted)
        self._truncate_log_when_empty()

    def _truncate_log_when_empty(self) -> None:
        """Once nothing waits, copy the log into the database and truncate it; on a full disk
        the reserve makes room for the copy."""
        import sqlite3

        with self._lock:
            db = self._db
            if db is None:
                return
            for attempt in range(2):
                try:
                    if db.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is not None:
                        break
                    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    if not busy:
                        break
                except sqlite3.Error as exc:
                    if attempt or translate(exc, self.path).reason != "disk_full":
                        break  # retried after the next removal
                self.reserve.unlink(missing_ok=True)
        _keep_reserve(self.reserve)

    def _delete(self, wanted: list[tuple[int]], count_as_dropped: bool) -> None:
        with self._transaction() as db:
            freed = 0
            removed = 0
            for (entry_id,) in wanted:
                row = db.execute("SELECT size FROM entries WHERE id = ?", (entry_id,)).fetchone()
                if row is not None:
                    db.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
                    freed += row[0]
                    removed += 1
            db.execute("UPDATE meta SET value = MAX(0, value - ?) WHERE key = 'bytes'", (freed,))
            if count_as_dropped and removed:
                db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (removed,))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None leaves transactions to us: BEGIN IMMEDIATE takes the write lock
        # up front, so a report's chunks and the bookkeeping commit together or not at all.
        import sqlite3

        with self._lock:
            try:
                db = self._open()
                db.execute("BEGIN IMMEDIATE")
            except (sqlite3.Error, OSError) as exc:
                raise self._failed(exc) from None
            try:
                yield db
                db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                if isinstance(exc, (sqlite3.Error, OSError)):
                    raise self._failed(exc) from None
                raise

    def _failed(self, exc: sqlite3.Error | OSError) -> SpoolError:
        import sqlite3

        if self._db is not None and not _code(exc).startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            # Reopen on the next operation: the disk may have been remounted or freed.
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        return translate(exc, self.path)

    def _open(self) -> sqlite3.Connection:
        import sqlite3

        if self._db is not None:
            return self._db
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        _keep_reserve(self.reserve)
        db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        try:
            _configure(db)
        except sqlite3.DatabaseError as exc:
            db.close()
            if _code(exc) not in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
                raise
            db = self._recover_corrupt()
        self._db = db
        return db

    def _recover_corrupt(self) -> sqlite3.Connection:
        # A spool that is not a database any more (a torn SD-card write, a stray file) must not
        # stop reporting forever: keep it aside for inspection and start an empty one.
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        log.error("spool_corrupt_moved_aside", path=str(self.path), moved_to=str(aside))
        import sqlite3

        db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        _configure(db)
        return db


def drain(
    spool: Spool,
    send: Callable[[list[Spooled]], bool],
    *,
    batch: int = 16,
    deadline: float | None = None,
) -> str:
    """The one drain loop of both spooling paths: spooled entries, oldest first, to ``send``.

    ``send`` delivers one batch and settles it (acks what went out); it returns False when the
    drain must stop. The result says why the loop ended: ``"empty"`` (nothing left),
    ``"stopped"`` (``send`` said so) or ``"budget"`` (``deadline``, a ``time.monotonic()``,
    passed). A SpoolError reading the spool propagates.
    """
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            return "budget"
        entries = spool.peek_batch(batch)
        if not entries:
            return "empty"
        if not send(entries):
            return "stopped"


def _keep_reserve(reserve: Path) -> None:
    """Create the reserve file when it is missing and there is room for it (else next time)."""
    if os.path.exists(reserve):
        return
    try:
        fd = os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return
    try:
        os.write(fd, bytes(RESERVE_BYTES))  # real blocks: a sparse file would reserve nothing
        os.fsync(fd)
    except OSError:
        os.close(fd)
        reserve.unlink(missing_ok=True)
        return
    os.close(fd)


def _configure(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    # After a checkpoint the WAL file is truncated to this size instead of keeping its peak.
    db.execute("PRAGMA journal_size_limit=1048576")
    for statement in _SCHEMA:
        db.execute(statement)


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "sqlite_errorname", "") or "")


_CANNOT_OPEN = (ENOENT, EACCES, EPERM, EEXIST, ENOTDIR, EISDIR)


def translate(exc: sqlite3.Error | OSError, path: Path) -> SpoolError:
    """A SpoolError with a specific reason for a SQLite or OS error on the spool file."""
    code = _code(exc)
    text = str(exc)
    errno = getattr(exc, "errno", None)
    if code.startswith("SQLITE_FULL") or errno == ENOSPC or "disk is full" in text:
        return SpoolError(
            f"spool {path}: no space left on the device",
            "disk_full",
            f"free space on the file system of {path.parent} or lower spool.maxBytes",
        )
    if code.startswith("SQLITE_READONLY") or errno == EROFS or "readonly" in text:
        return SpoolError(
            f"spool {path}: the file system or file is read-only",
            "read_only",
            f"point spool.path at a writable directory (now {path.parent})",
        )
    if code.startswith("SQLITE_CANTOPEN") or errno in _CANNOT_OPEN:
        return SpoolError(
            f"spool {path}: cannot open or create the file ({text})",
            "cannot_open",
            f"make {path.parent} a directory writable by the agent's user, or set spool.path",
        )
    if code.startswith("SQLITE_BUSY") or code.startswith("SQLITE_LOCKED"):
        return SpoolError(
            f"spool {path}: locked by another process",
            "locked",
            "run one agent per spool.path",
        )
    return SpoolError(
        f"spool {path}: {code or type(exc).__name__}: {text}",
        "io_error",
        f"check the storage behind {path.parent} (dmesg for I/O errors)",
    )
