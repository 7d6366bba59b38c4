"""The certificate files of one cycle: which files play which role, each parsed once.

Parsed outcomes are cached across cycles keyed by path, kind and the file's stamp
(device, inode, size, mtime, ctime), so an unchanged file costs one ``stat`` per cycle.
The cache is rebuilt every cycle from the entries still in use, so it never outgrows the
current set of files. An unchanged file also gives back last cycle's very ``FileEntry``
object, so "the same files as last cycle" is a comparison of pointers (see
:attr:`Inventory.generation`).
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.x509.files import (
    MAX_PEM_BYTES,
    NOT_CONFIGURED,
    NOT_FOUND,
    TOO_LARGE,
    Problem,
    os_problem,
    peek,
    read_bounded,
    stamp_of,
    stat_file,
)
from agent.x509.parse import (
    CERT_MARKER,
    PemCertificates,
    PrivateKeyFacts,
    parse_certificates,
    parse_private_key,
)
from agent.x509.walk import walk_files

_PEEK_BYTES = 64 * 1024
_PIN_ATTRIBUTE = re.compile(r"[;?&]?pin-(?:value|source)=[^;?&]*", re.IGNORECASE)


class Role(str, enum.Enum):
    """What a file is for."""

    DEVICE_CERT = "device_cert"
    PRIVATE_KEY = "private_key"
    ROOT_CA = "root_ca"
    CA_BUNDLE = "ca_bundle"
    EXTRA = "extra"


class _Ignored:
    """A directory member without any certificate in it (not reported)."""


IGNORED = _Ignored()
Outcome = PemCertificates | PrivateKeyFacts | Problem


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the inventory and what reading it gave."""

    path: str
    """The path as configured or found (the result target)."""
    role: Role
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Unconfigured:
    """A system setting the audit needs that is not set at all."""

    setting: str
    """e.g. ``system.rootCaPath``."""
    message: str
    remediation: str
    reason: str = NOT_CONFIGURED
    """``not_configured``, or ``on_token`` for a ``pkcs11:`` URI."""


@dataclass(frozen=True)
class Sources:
    """Where the identity files are, as the configuration names them."""

    device_cert: str | None
    private_key: str | None
    """A path or a ``pkcs11:`` URI."""
    root_ca: str | None
    ca_bundle: str | None = None
    extra_paths: tuple[str, ...] = ()


@dataclass
class Inventory:
    """Every file of the cycle, plus the settings that were missing."""

    entries: list[FileEntry] = field(default_factory=list)
    unconfigured: list[Unconfigured] = field(default_factory=list)
    device_cert: FileEntry | None = None
    private_key: FileEntry | None = None
    root_ca: FileEntry | None = None
    ca_bundle: FileEntry | None = None
    pkcs11_key: str | None = None
    """The ``pkcs11:`` key URI with any PIN attribute removed."""
    generation: object = field(default_factory=object)
    """Identifies this set of entries: an inventory equal to the previous cycle's takes over its
    generation (:meth:`continues`), so a result list made from one generation stands for every
    later inventory of the same generation, whatever cycles ran in between."""

    def certificates(self) -> Iterator[tuple[FileEntry, PemCertificates, int]]:
        """Every parsed certificate file with the index of each certificate in it."""
        for entry in self.entries:
            if isinstance(entry.outcome, PemCertificates):
                for index in range(len(entry.outcome.certs)):
                    yield entry, entry.outcome, index

    def continues(self, previous: Inventory | None) -> None:
        """Take over ``previous``'s generation when it holds the same files and settings."""
        if previous is not None and self.same_files_as(previous):
            self.generation = previous.generation

    def same_files_as(self, previous: Inventory) -> bool:
        """Whether this inventory holds the same entries and missing settings as ``previous``."""
        # FileEntry objects of unchanged files are shared between cycles, so list equality
        # is mostly identity checks; a re-created entry still compares by value.
        return (
            self.entries == previous.entries
            and self.unconfigured == previous.unconfigured
            and self.pkcs11_key == previous.pkcs11_key
        )


class FileCache:
    """Outcomes of the previous cycle, and those used in this one (which become the next).

    Values are ``(stamp, outcome, entry)``: the file version, what parsing it gave, and the
    last FileEntry made for it (None until one is).
    """

    def __init__(self, previous: dict[Any, Any] | None, *, keep: bool = True) -> None:
        self._previous = previous if previous is not None else {}
        self._keep = keep
        self.current: dict[Any, Any] = {}
        self.parsed: list[tuple[str, str]] = []
        """The keys whose outcome this cycle made anew (not taken from the previous one)."""

    def dropped(self) -> bool:
        """Whether an outcome of the previous cycle was not used in this one (a file gone)."""
        current = self.current
        if len(current) - len(self.parsed) == len(self._previous):
            return False  # as many taken over as there were: every one of them
        return any(key not in current for key in self._previous)

    def get(self, key: tuple[str, str], stamp: tuple[int, ...]) -> Any:
        """The cached outcome for this exact file version, else None."""
        hit = self._previous.get(key)
        if hit is not None and hit[0] == stamp:
            self.current[key] = hit
            return hit[1]
        return None

    def knows(self, key: tuple[str, str]) -> bool:
        """Whether the previous cycle had an outcome for ``key`` (some version of the file)."""
        return key in self._previous

    def put(self, key: tuple[str, str], stamp: tuple[int, ...], outcome: Any) -> None:
        """Remember an outcome for this file version (unless nothing is kept: no next cycle)."""
        if self._keep:
            self.current[key] = (stamp, outcome, None)
            self.parsed.append(key)

    def entry(self, key: tuple[str, str], path: str, role: Role, outcome: Outcome) -> FileEntry:
        """A FileEntry for ``outcome``: last cycle's object when it holds the same outcome."""
        hit = self.current.get(key)
        made = hit[2] if hit is not None else None
        if made is not None and made.outcome is outcome and made.role is role:
            return made  # type: ignore[no-any-return]
        made = FileEntry(path, role, outcome)
        if hit is not None:
            self.current[key] = (hit[0], hit[1], made)
        return made


def redact_pkcs11(uri: str) -> str:
    """A ``pkcs11:`` URI (RFC 7512) without ``pin-value``/``pin-source`` attributes."""
    return _PIN_ATTRIBUTE.sub("", uri)


def collect(
    sources: Sources, previous: dict[Any, Any] | None, *, keep: bool = True
) -> tuple[Inventory, FileCache]:
    """Read and parse every configured file; returns the inventory and the cache for the next
    cycle (its ``current`` entries; empty without ``keep``: a one-shot check of 100,000 files
    saves a stamp and a key per file it would never look up)."""
    cache = FileCache(previous, keep=keep)
    inv = Inventory()
    seen: set[str] = set()

    def add(path: str, role: Role, kind: str) -> FileEntry:
        entry = cache.entry((path, kind), path, role, load(path, kind, cache))
        inv.entries.append(entry)
        seen.add(path)
        return entry

    if sources.device_cert is None:
        inv.unconfigured.append(_unset("certificateFilePath", "the device certificate"))
    elif _is_pkcs11(sources.device_cert):
        inv.unconfigured.append(_on_token("certificateFilePath", sources.device_cert))
    else:
        inv.device_cert = add(sources.device_cert, Role.DEVICE_CERT, "cert+objects")
    if sources.private_key is None:
        inv.unconfigured.append(_unset("privateKeyPath", "the device private key"))
    elif _is_pkcs11(sources.private_key):
        inv.pkcs11_key = redact_pkcs11(sources.private_key)
    else:
        inv.private_key = add(sources.private_key, Role.PRIVATE_KEY, "key")
    if sources.root_ca is None:
        inv.unconfigured.append(
            _unset("rootCaPath", "the root CA bundle (nor is GG_ROOT_CA_PATH set)")
        )
    elif _is_pkcs11(sources.root_ca):
        inv.unconfigured.append(_on_token("rootCaPath", sources.root_ca))
    else:
        inv.root_ca = add(sources.root_ca, Role.ROOT_CA, "cert")
    if sources.ca_bundle is not None:
        inv.ca_bundle = (
            add(sources.ca_bundle, Role.CA_BUNDLE, "cert+objects")
            if sources.ca_bundle not in seen
            else FileEntry(
                sources.ca_bundle, Role.CA_BUNDLE, load(sources.ca_bundle, "cert+objects", cache)
            )
        )
    for extra in sources.extra_paths:
        if extra in seen:
            continue
        if os.path.isdir(extra):
            for path, st in walk_files(extra):
                if path in seen:
                    continue
                outcome = st if isinstance(st, Problem) else load_member(path, st, cache)
                if not isinstance(outcome, _Ignored):
                    inv.entries.append(cache.entry((path, "member"), path, Role.EXTRA, outcome))
                    seen.add(path)
        else:
            add(extra, Role.EXTRA, "cert")
    return inv, cache


def load(path: str, kind: str, cache: FileCache) -> Outcome:
    """The outcome of one explicitly named file (``cert``, ``cert+objects`` or ``key``)."""
    st = stat_file(path)
    if isinstance(st, Problem):
        return st
    key = (path, kind)
    hit = cache.get(key, stamp_of(st))
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    read = read_bounded(path)
    if isinstance(read, Problem):
        return read  # not cached: depends on privileges, and is cheap to find again
    data, opened = read
    outcome: Outcome
    if kind == "key":
        outcome = parse_private_key(data)
    else:
        outcome = parse_certificates(data, keep_objects=kind == "cert+objects")
    cache.put(key, stamp_of(opened), outcome)
    return outcome


def load_member(path: str, found: os.DirEntry[str], cache: FileCache) -> Outcome | _Ignored:
    """A file found in a directory: reported only if it holds a certificate.

    A file the cache knows costs one ``stat`` to prove it unchanged; a new one is read at once,
    the ``fstat`` of the read giving its stamp (a first check of 10,000 files saves 10,000
    ``stat`` calls).
    """
    key = (path, "member")
    if cache.knows(key):
        try:
            st = found.stat()
        except FileNotFoundError:
            return IGNORED  # removed since the directory was listed
        except OSError as exc:
            return os_problem(exc)
        hit = cache.get(key, stamp_of(st))
        if hit is not None:
            return hit  # type: ignore[no-any-return]
    read = read_bounded(path, MAX_PEM_BYTES)
    if isinstance(read, Problem):
        return _unread_member(path, key, read, cache)
    data, opened = read
    outcome = parse_certificates(data) if CERT_MARKER in data else IGNORED
    cache.put(key, stamp_of(opened), outcome)
    return outcome


def _unread_member(
    path: str, key: tuple[str, str], problem: Problem, cache: FileCache
) -> Outcome | _Ignored:
    if problem.reason == NOT_FOUND:
        return IGNORED  # removed since the directory was listed
    if problem.reason != TOO_LARGE:
        return problem  # not cached: depends on privileges, and is cheap to find again
    try:
        st = os.stat(path)
    except OSError:
        return problem
    # Only a too-large file that starts like a certificate store is worth reporting; the
    # verdict is cached by version so a big unrelated file is not peeked at every cycle.
    outcome: Outcome | _Ignored = problem if CERT_MARKER in peek(path, _PEEK_BYTES) else IGNORED
    cache.put(key, stamp_of(st), outcome)
    return outcome


def _is_pkcs11(path: str) -> bool:
    return path[:7].lower() == "pkcs11:"


def _on_token(key: str, uri: str) -> Unconfigured:
    """A certificate the nucleus reads from a PKCS#11 token (``aws.greengrass.crypto.
    Pkcs11Provider``): not a file to audit, and its URI may carry a PIN."""
    return Unconfigured(
        setting=f"system.{key}",
        message=(
            f"{key} names a PKCS#11 token object ({redact_pkcs11(uri)}); the agent audits "
            "certificates in files only, so this one is not audited"
        ),
        remediation=(
            "audit the certificate on the token with the vendor's tools, or keep a copy of the "
            "certificate as a file and list it in certificates.extraPaths"
        ),
        reason="on_token",
    )


def _unset(key: str, what: str) -> Unconfigured:
    return Unconfigured(
        setting=f"system.{key}",
        message=f"{key} is not set in the Greengrass configuration: {what} cannot be audited",
        remediation=f"set system.{key} in the nucleus configuration (effectiveConfig.yaml)",
    )
