"""The one way the agent writes a file a configuration names: never through anything but a
regular file it owns, in a directory nobody else may change.

The component runs as root. A configured path that is a device node (``/dev/null``), a FIFO, a
symlink planted beside the report, or a file in a world-writable directory would otherwise turn
a report write into replacing a device node or appending to whatever the link points at. So a
target must be absent or a regular file owned by the agent's user with one link; its directory
a real directory owned by that user or root and not writable by others (where anyone may plant
names). An existing file is replaced or appended to only when it is empty or already starts as
the agent's own output does (a report, a history line, a SQLite spool): a mistyped
``file.path: /etc/passwd`` is refused, not overwritten with a report. The check runs when the
transport is built (a configuration error, exit 3) and again on every write (the file system may
change in between). Appends open with ``O_NOFOLLOW``.
https://cwe.mitre.org/data/definitions/59.html (link following), CWE-377 (insecure temp files)
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from agent.errors import ConfigError

_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_PEEK_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
OWN_CACHE = b'{"gghealth_cache":'
"""How the certificate cache (``agent/x509/disk_cache.py``) begins."""
OWN_OUTPUT = (b'{"schema_version":', b"SQLite format 3\x00", OWN_CACHE)
"""How every file the agent writes begins: a report or history line, its SQLite spool, or its
certificate cache."""


class UnsafeTarget(OSError):
    """A path the agent refuses to write (the message says why and what to do)."""


def check_target(path: Path) -> None:
    """Raise UnsafeTarget unless writing ``path`` can only ever change a file the agent owns."""
    me = os.geteuid()
    directory = path.parent
    try:
        dst = os.stat(directory)
    except FileNotFoundError:
        dst = None  # created below by the writer, owned by the agent
    # A parent that is not a directory cannot be written into: the write fails on its own.
    if dst is not None and stat.S_ISDIR(dst.st_mode):
        if dst.st_uid not in (me, 0):
            raise UnsafeTarget(f"{directory} belongs to another user (uid {dst.st_uid})")
        if dst.st_mode & stat.S_IWOTH:
            raise UnsafeTarget(
                f"{directory} is writable by every user, who could plant links or files there"
            )
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there to be misled by; the write itself reports what is wrong
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeTarget(f"{path} is a symbolic link; the agent writes only regular files")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeTarget(f"{path} is not a regular file (a device, FIFO or socket)")
    if st.st_uid != me:
        raise UnsafeTarget(f"{path} belongs to another user (uid {st.st_uid})")
    if st.st_nlink > 1:
        raise UnsafeTarget(f"{path} has {st.st_nlink} hard links; the agent writes only its own")
    if st.st_size and not _begins_as_ours(path):
        raise UnsafeTarget(
            f"{path} already holds something that is not the agent's output; the agent replaces "
            "only files it wrote"
        )


def _begins_as_ours(path: Path) -> bool:
    try:
        fd = os.open(path, _PEEK_FLAGS)
    except OSError:
        return False
    try:
        head = os.read(fd, 32)
    finally:
        os.close(fd)
    return head.startswith(OWN_OUTPUT)


def config_problem(path: Path, setting: str) -> ConfigError | None:
    """The configuration error for writing ``path`` (named by ``setting``), or None when safe."""
    try:
        check_target(path)
    except UnsafeTarget as exc:
        return ConfigError(
            f"{setting} {path}: {exc}; choose a path in a directory the agent owns, e.g. "
            "the component's work directory"
        )
    return None


def write_atomically(
    path: Path, data: bytes | Iterable[bytes], *, mode: int = 0o644, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` (bytes, or pieces of them) so readers see the old or the
    new file, never a mix.

    Temp file in the same directory, fsync, rename: rename(2) is atomic within a file system,
    the scheme of prometheus/client_python's textfile writer. ``durable=False`` skips the
    fsync, for a file whose loss only costs time (a cache; it is checked when read back).
    """
    check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for piece in [data] if isinstance(data, bytes) else data:
                fh.write(piece)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        check_target(path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created 0644), refusing links and anything not our own file."""
    check_target(path)
    try:
        fd = os.open(path, _APPEND_FLAGS, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link planted after the check
            raise UnsafeTarget(
                f"{path} is a symbolic link; the agent writes only regular files"
            ) from None
        raise
    with os.fdopen(fd, "ab") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
            raise UnsafeTarget(f"{path} is not a regular file of the agent's own")
        fh.write(data)


def rotate(path: Path, to: Path) -> None:
    """Rename ``path`` to ``to`` (the previous generation), both checked."""
    check_target(path)
    check_target(to)
    os.replace(path, to)
