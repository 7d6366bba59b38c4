"""The parsed certificate files on disk, for a re-check in a new process (cacheFile).

A cron job or a Nagios plugin runs ``check`` in a fresh process every few minutes; without this
file each run reads and parses every certificate again, though the in-memory cache of ``run``
would have reused them. The file holds what the in-memory cache holds - each file's stamp
(device, inode, size, mtime, ctime) and its parsed facts - and is used the same way: an entry
counts only for the exact version of the file it was made from. Results are never stored: they
depend on the clock and the thresholds, and are made afresh from the facts.

Trust: the facts decide verdicts, so a file anyone else could have written is never read. It
must be a regular file of the agent's own user, not writable by group or others, in a
directory nobody else may change (the rules of :mod:`agent.safe_write`, which also writes it);
it is used only by the same agent version with the same configuration (a fingerprint of both),
and every value is type-checked before use. Anything else - missing, foreign, stale, corrupt -
means the cache is rebuilt, with one log line saying why. Deleting it is always safe.

Only files whose facts stand alone are stored: certificates, directory members that hold none
(so they are not read again), the private key's facts (the hash of its public half: nothing
secret) and the reasons a file could not be parsed. The device certificate and a CA bundle,
whose certificate objects path validation needs, are read every time.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from agent import __version__
from agent.log import get_logger
from agent.safe_write import OWN_CACHE, UnsafeTarget, check_target, write_atomically
from agent.x509.files import Problem
from agent.x509.inventory import IGNORED, FileCache, Outcome
from agent.x509.parse import CertFacts, KeyFacts, PemCertificates, PrivateKeyFacts

FORMAT = 1
MAX_CACHE_BYTES = 256 * 1024 * 1024
"""Far above what the 200,000 files an inventory lists at most need (~450 bytes each)."""
MAX_LINE_BYTES = 4 * 1024 * 1024
"""One file's entry: a bundle of a thousand certificates is ~400 KiB."""
_KINDS = frozenset({"member", "cert", "key"})
"""The inventory kinds whose outcomes are stored (not ``cert+objects``: path validation needs
the certificate objects themselves)."""
log = get_logger(__name__)
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class CacheUnusable(Exception):
    """Why the cache file was not used (said in one log line; the cache is then rebuilt)."""


def fingerprint(*parts: str) -> str:
    """What the cache is valid for: this agent version, and ``parts`` (the configuration)."""
    digest = hashlib.sha256(f"gghealth-cache {FORMAT} {__version__}".encode())
    for part in parts:
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()


def load(path: Path, expected: str) -> dict[Any, Any]:
    """The stored entries in the shape of :class:`agent.x509.inventory.FileCache`'s, or
    CacheUnusable saying why not. A missing file is an empty cache.

    The file is JSON lines - a header, then one line per file - read a line at a time, so
    what is held is the entries, never the whole text (~45 MB for 100,000 certificates).
    """
    fh = _open_own_file(path)
    if fh is None:
        return {}
    with fh:
        header = _json_line(fh.readline(MAX_LINE_BYTES), "its header")
        if not isinstance(header, dict) or header.get("gghealth_cache") != FORMAT:
            raise CacheUnusable("it is not a cache of this format")
        if header.get("fingerprint") != expected:
            raise CacheUnusable("it was made by another agent version or configuration")
        entries: dict[Any, Any] = {}
        keys: dict[Any, KeyFacts] = {}
        read = 0
        for number, line in enumerate(iter(lambda: fh.readline(MAX_LINE_BYTES), b"")):
            read += len(line)
            if read > MAX_CACHE_BYTES:  # grew since it was opened
                raise CacheUnusable(f"it is larger than {MAX_CACHE_BYTES} bytes")
            try:
                key, stamp, outcome = _entry(_json_line(line, f"entry {number}"), keys)
            except (ValueError, TypeError, IndexError):
                raise CacheUnusable(f"entry {number} is malformed") from None
            entries[key] = (stamp, outcome, None)
    return entries


def _json_line(line: bytes, what: str) -> Any:
    if not line.endswith(b"\n"):  # cut short, or longer than a line may be
        raise CacheUnusable(f"{what} is cut short or too long")
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        raise CacheUnusable(f"{what} is not JSON") from None


def read(path: Path, expected: str) -> dict[Any, Any] | None:
    """:func:`load`, or None when the file cannot be used: one log line says why."""
    try:
        return load(path, expected)
    except CacheUnusable as exc:
        log.warning("certificate_cache_unused", path=str(path), reason=str(exc))
        return None


def write(path: Path, stamp: str, entries: Mapping[Any, Any]) -> bool:
    """:func:`save`; False when the file cannot be written (logged, never fatal)."""
    try:
        save(path, stamp, entries)
    except OSError as exc:  # UnsafeTarget included: its message says what to change
        log.warning("certificate_cache_not_saved", path=str(path), reason=str(exc))
        return False
    return True


def outdated(cache: FileCache) -> bool:
    """Whether the file, had it held ``cache``'s previous entries, would now hold others: a
    file of a stored kind was parsed anew, or one is gone."""
    return any(kind in _KINDS for _path, kind in cache.parsed) or cache.dropped()


def save(path: Path, stamp: str, entries: Mapping[Any, Any]) -> None:
    """Replace the cache with ``entries`` (a FileCache's), written a thousand lines at a time:
    the text of 100,000 certificates is never held whole. UnsafeTarget or OSError when it
    cannot."""
    write_atomically(path, _document(stamp, entries), mode=0o600, durable=False)


def _document(stamp: str, entries: Mapping[Any, Any]) -> Iterator[bytes]:
    encode = json.JSONEncoder(separators=(",", ":")).encode
    yield OWN_CACHE + b'%d,"fingerprint":%s}\n' % (FORMAT, encode(stamp).encode())
    lines: list[str] = []
    for (file, kind), (file_stamp, outcome, _entry) in entries.items():
        if kind in _KINDS and (stored := _stored(outcome)) is not None:
            lines.append(encode([file, kind, *file_stamp, stored]) + "\n")
        if len(lines) == 1000:
            yield "".join(lines).encode()
            lines = []
    yield "".join(lines).encode()


def _stored(outcome: Any) -> list[Any] | None:
    if outcome is IGNORED:
        return ["ignored"]
    if isinstance(outcome, Problem):
        return ["problem", outcome.reason, outcome.message]
    if isinstance(outcome, PemCertificates) and not outcome.objects:
        return ["certs", *map(_cert_fields, outcome.certs)]
    if isinstance(outcome, PrivateKeyFacts):  # the hash of its public half, nothing secret
        return ["key", outcome.algorithm, outcome.bits, outcome.spki_sha256.hex()]
    return None


def _cert_fields(c: CertFacts) -> list[Any]:
    k = c.key
    return [
        c.subject_der.hex(),
        c.self_issued,
        c.not_before,
        c.not_after,
        c.not_before_text,
        c.not_after_text,
        c.is_ca,
        None if c.eku is None else sorted(c.eku),
        c.signature_hash,
        [k.algorithm, k.bits, k.curve, k.exponent, k.roca],
        c.spki_sha256.hex(),
    ]


def _entry(
    item: list[Any], keys: dict[Any, KeyFacts]
) -> tuple[tuple[str, str], tuple[int, ...], Outcome | object]:
    file, kind, *numbers, stored = item
    stamp = tuple(numbers)
    if type(file) is not str or kind not in _KINDS or tuple(map(type, stamp)) != _STAMP:
        raise ValueError
    tag = stored[0]
    outcome: Outcome | object
    if tag == "certs" and len(stored) > 1:
        outcome = PemCertificates(tuple(_cert(fields, keys) for fields in stored[1:]))
    elif tag == "ignored" and len(stored) == 1:
        outcome = IGNORED
    elif tag == "problem" and tuple(map(type, stored)) == (str, str, str):
        outcome = Problem(stored[1], stored[2])
    elif tag == "key" and tuple(map(type, stored)) == (str, str, int, str):
        outcome = PrivateKeyFacts(stored[1], stored[2], bytes.fromhex(stored[3]))
    else:
        raise ValueError
    return (file, kind), stamp, outcome


_STAMP = (int,) * 5
_NUMBER = (int, float)
_OPTIONAL_TEXT = (str, type(None))
_CERT_FIELDS = frozenset(
    itertools.product(
        [str], [bool], _NUMBER, _NUMBER, [str], [str], [bool], [list, type(None)],
        _OPTIONAL_TEXT, [list], [str],
    )
)  # fmt: skip
"""The JSON types a stored certificate's fields may have, position by position."""
_KEY_FIELDS = frozenset(itertools.product([str], [int], _OPTIONAL_TEXT, [int, type(None)], [bool]))


def _cert(fields: list[Any], keys: dict[Any, KeyFacts]) -> CertFacts:
    # One set lookup checks every field's JSON type: this runs once per stored certificate.
    if tuple(map(type, fields)) not in _CERT_FIELDS:
        raise TypeError
    subject, self_issued, before, after, before_text, after_text, is_ca, eku, sig, key, spki = (
        fields
    )
    known = tuple(key)
    facts = keys.get(known)
    if facts is None:  # one object per kind of key, as a fleet's certificates share them
        if tuple(map(type, known)) not in _KEY_FIELDS:
            raise TypeError
        facts = keys[known] = KeyFacts(*known)
    if eku is not None and tuple(map(type, eku)) != (str,) * len(eku):
        raise TypeError
    return CertFacts(
        bytes.fromhex(subject),
        self_issued,
        float(before),
        float(after),
        before_text,
        after_text,
        is_ca,
        None if eku is None else frozenset(eku),
        sig,
        facts,
        bytes.fromhex(spki),
    )


def _open_own_file(path: Path) -> BinaryIO | None:
    """The cache, open, when it is a file only the agent's user can have written."""
    try:
        check_target(path)  # the directory, links, owner and content rules of every write
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except UnsafeTarget as exc:
        raise CacheUnusable(str(exc)) from None
    except OSError as exc:
        raise CacheUnusable(f"it cannot be opened: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
            raise CacheUnusable("it changed into something that is not the agent's own file")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise CacheUnusable("it is writable by other users, who could forge verdicts")
        if st.st_size > MAX_CACHE_BYTES:
            raise CacheUnusable(f"it is larger than {MAX_CACHE_BYTES} bytes")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")
