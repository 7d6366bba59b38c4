"""Bounded, race-aware reading of certificate and key files, with a reason for every failure.

A certificate file is a few KiB; anything over :data:`MAX_PEM_BYTES` is refused from its
``st_size`` alone, and a read never asks for more than cap + 1 bytes (a 10 GiB sparse file
costs one ``stat``). Files are opened non-blocking so a FIFO swapped in after the ``stat``
cannot hang the agent.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

MAX_PEM_BYTES = 1 << 20
"""Largest certificate/key file read (1 MiB; a full Mozilla bundle is ~220 KiB)."""

# Reasons of the SPEC catalogue (``certificate.readable`` ``details.reason``).
NOT_FOUND = "not_found"
PERMISSION_DENIED = "permission_denied"
BROKEN_SYMLINK = "broken_symlink"
NOT_A_FILE = "not_a_file"
TOO_LARGE = "too_large"
BAD_PEM = "bad_pem"
NO_CERTIFICATE_FOUND = "no_certificate_found"
ENCRYPTED_KEY = "encrypted_key"
UNSUPPORTED_KEY_TYPE = "unsupported_key_type"
# Not a proven defect: reported as UNKNOWN.
NOT_CONFIGURED = "not_configured"
IO_ERROR = "io_error"

Stamp = tuple[int, int, int, int, int]
"""(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns): identifies one version of a file.

``st_ctime_ns`` is included because ``chmod``/``chown`` and ``touch -r`` rewrites change it but
not ``st_mtime_ns``; a verdict cached across such a change would be stale.
"""

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a file could not be used: a catalogue reason and a sentence for people."""

    reason: str
    """One of the reason constants of this module."""
    message: str
    """What is wrong, without the path (the result's target carries it)."""


NUL_IN_PATH = Problem(
    NOT_FOUND, "does not exist: the configured path holds a NUL byte, which no file name may hold"
)
"""What a path with an embedded NUL byte (``os`` refuses it with ValueError) comes to."""


def stamp_of(st: os.stat_result) -> Stamp:
    """The cache key of one version of a file."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def stat_file(path: str, cap: int = MAX_PEM_BYTES) -> os.stat_result | Problem:
    """``os.stat`` after symlinks, turned into a Problem unless it is a regular file <= cap."""
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:
        return _access_problem(path, exc, "permission denied on a parent directory")
    return check_regular(st, cap)


def check_regular(st: os.stat_result, cap: int = MAX_PEM_BYTES) -> os.stat_result | Problem:
    """Refuse anything but a regular file of at most ``cap`` bytes."""
    if not stat.S_ISREG(st.st_mode):
        return Problem(NOT_A_FILE, f"is a {_kind(st.st_mode)}, not a regular file")
    if st.st_size > cap:
        return Problem(TOO_LARGE, f"is {st.st_size} bytes; a PEM file above {cap} is refused")
    return st


def read_bounded(path: str, cap: int = MAX_PEM_BYTES) -> tuple[bytes, os.stat_result] | Problem:
    """Read a whole regular file of at most ``cap`` bytes, reading cap + 1 bytes at most.

    Returns the bytes with the ``fstat`` of the opened file (the version actually read).
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError) as exc:
        return _access_problem(path, exc, "permission denied")
    try:
        checked = check_regular(os.fstat(fd), cap)
        if isinstance(checked, Problem):
            return checked
        # One read of the size fstat gave, plus one byte: getting exactly st_size bytes back
        # is the end of the file, so a certificate costs one read call and a buffer of its
        # own size (asking for cap + 1 allocated 256 KiB per file and took a second read to
        # see the end). Anything else - the file grew (the request filled), shrank, or
        # st_size lies as in procfs - is read on to the end, cap + 1 bytes at most, as before.
        want = min(checked.st_size, cap) + 1
        data = os.read(fd, want)
        if len(data) != checked.st_size and 0 < len(data) <= cap:
            data += _read_up_to(fd, cap + 1 - len(data))
    except OSError as exc:
        return os_problem(exc)
    finally:
        os.close(fd)
    if len(data) > cap:  # grew since fstat, or a file whose st_size lies (procfs)
        return Problem(TOO_LARGE, f"is larger than {cap} bytes; refused")
    return data, checked


def peek(path: str, size: int) -> bytes:
    """The first ``size`` bytes of a file, or b"" when it cannot be read."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError):
        return b""
    try:
        return _read_up_to(fd, size)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 256 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _access_problem(path: str, exc: OSError | ValueError, denied: str) -> Problem:
    """Why a stat or open of ``path`` failed; ``denied`` words a permission error."""
    if isinstance(exc, ValueError):  # an embedded NUL byte: the configuration holds a broken path
        return NUL_IN_PATH
    if isinstance(exc, FileNotFoundError):
        return _missing(path)
    if isinstance(exc, PermissionError):
        return Problem(PERMISSION_DENIED, denied)
    return os_problem(exc)


def _missing(path: str) -> Problem:
    try:
        lst = os.lstat(path)
    except OSError:
        return Problem(NOT_FOUND, "does not exist")
    if stat.S_ISLNK(lst.st_mode):
        try:
            dest = os.readlink(path)
        except OSError:
            dest = "?"
        return Problem(BROKEN_SYMLINK, f"is a symlink to {dest}, which does not exist")
    return Problem(NOT_FOUND, "does not exist")


def os_problem(exc: OSError) -> Problem:
    """Map an OSError to a catalogue reason."""
    if exc.errno == errno.ELOOP:
        return Problem(BROKEN_SYMLINK, "is a symlink loop")
    if exc.errno in (errno.ENOTDIR, errno.ENAMETOOLONG, errno.ENOENT):
        return Problem(NOT_FOUND, f"does not exist ({os.strerror(exc.errno)})")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Problem(PERMISSION_DENIED, "permission denied")
    if exc.errno == errno.EISDIR:
        return Problem(NOT_A_FILE, "is a directory, not a regular file")
    return Problem(IO_ERROR, f"cannot be read: {exc.strerror or exc}")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"
