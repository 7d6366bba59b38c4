"""Facts to results for the per-file and per-certificate checks, reusing last cycle's result
objects whenever their inputs are unchanged.

With 10,000 certificates a cycle yields 30,000 results; building them is most of the cost of
an unchanged re-check, and a result's inputs rarely change (validity only when the day count
does). When no file changed at all, a check hands back last cycle's whole list
(:class:`ListMemo`). Reused results and lists are shared between cycles and must not be mutated.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from agent.report import CheckResult, Status, fold
from agent.x509 import files as reasons
from agent.x509.inventory import FileEntry, Role
from agent.x509.parse import CertFacts, KeyFacts, PemCertificates, PrivateKeyFacts
from agent.x509.quality import describe_public_key, key_problems
from agent.x509.walk import TOO_DEEP, TOO_MANY_FILES

_DAY = 86400.0
PRIVILEGE_HINT = (
    "give the component RequiresPrivilege: true in its recipe so the agent can audit root-only "
    "files (https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html)"
)
SETTING = {
    Role.DEVICE_CERT: "system.certificateFilePath",
    Role.PRIVATE_KEY: "system.privateKeyPath",
    Role.ROOT_CA: "system.rootCaPath",
    Role.CA_BUNDLE: "certificates.caBundle",
    Role.EXTRA: "certificates.extraPaths",
}
_FIX = {
    reasons.NOT_FOUND: "restore the file or correct {setting}",
    reasons.BROKEN_SYMLINK: "repoint the symlink at the real file or correct {setting}",
    reasons.NOT_A_FILE: "point {setting} at a PEM file",
    reasons.TOO_LARGE: "point {setting} at the PEM file itself (certificate files are a few KiB)",
    reasons.BAD_PEM: "replace it with a valid PEM file (DER converts with "
    "`openssl x509 -inform DER -in FILE -out FILE.pem`)",
    reasons.NO_CERTIFICATE_FOUND: "put the PEM certificate(s) in it; check that {setting} does "
    "not name a key or a CSR",
    reasons.ENCRYPTED_KEY: "store the key unencrypted with mode 600 "
    "(`openssl pkey -in KEY -out KEY.new`), or move it into an HSM and use PKCS#11",
    reasons.UNSUPPORTED_KEY_TYPE: "use an RSA (>= 2048 bits) or EC P-256/P-384 key",
    reasons.PERMISSION_DENIED: "fix the ownership, ACL or security policy that blocks the agent",
    reasons.IO_ERROR: "check the storage holding the file",
    TOO_MANY_FILES: "list narrower directories in {setting}",
    TOO_DEEP: "list the deeper directory itself in {setting}",
}
_UNKNOWN_REASONS = frozenset({reasons.IO_ERROR, TOO_MANY_FILES, TOO_DEEP})


class ResultMemo:
    """Results by key, reused in the next cycle when their token (inputs) is unchanged.

    Kept across cycles; :meth:`begin` starts a cycle, after which only what that cycle looked
    up or put is kept for the next. Tokens are compared with ``==``; a token holding the cached
    parse outcome compares by identity first, which is what makes a hit cheap.
    """

    def __init__(self) -> None:
        self._previous: dict[Hashable, tuple[Any, CheckResult]] = {}
        self._current: dict[Hashable, tuple[Any, CheckResult]] = {}
        self._keep = True

    def begin(self, *, keep: bool = True) -> ResultMemo:
        """Start a cycle: the last one's results become the reusable ones. With ``keep``
        false (no next cycle) nothing is remembered."""
        self._previous, self._current, self._keep = self._current, {}, keep
        return self

    def get(self, key: Hashable, token: Any) -> CheckResult | None:
        """The reusable result, or None."""
        hit = self._previous.get(key)
        if hit is not None and (hit[0] is token or hit[0] == token):
            self._current[key] = hit
            return hit[1]
        return None

    def put(self, key: Hashable, token: Any, made: CheckResult) -> CheckResult:
        """Remember ``made`` for the next cycle and return it."""
        if self._keep:
            self._current[key] = (token, made)
        return made


@dataclass(frozen=True, slots=True)
class _Listed:
    generation: object
    token: Any
    results: list[CheckResult]
    valid_after: float
    valid_until: float


class ListMemo:
    """The last whole result list of one check, for a cycle in which no file changed.

    The list is reused when the inventory is of the generation it was made from
    (:attr:`Inventory.generation`: the same files), its token (thresholds, privilege) is
    equal, and the clock is still strictly inside the window in which all its verdicts stand.
    """

    def __init__(self) -> None:
        self._last: _Listed | None = None

    def get(self, generation: object, token: Any, now: float = 0.0) -> list[CheckResult] | None:
        """The reusable list, or None."""
        hit = self._last
        if (
            hit is not None
            and hit.generation is generation
            and hit.token == token
            and hit.valid_after < now < hit.valid_until
        ):
            return hit.results
        return None

    def put(
        self,
        generation: object,
        token: Any,
        results: list[CheckResult],
        window: tuple[float, float] = (-math.inf, math.inf),
    ) -> list[CheckResult]:
        """Remember ``results`` for the next cycle and return them."""
        self._last = _Listed(generation, token, results, *window)
        return results


def readable_result(entry: FileEntry, privileged: bool) -> CheckResult:
    """``certificate.readable`` for one file."""
    o = entry.outcome
    cid = "certificate.readable"
    role = entry.role.value
    if isinstance(o, PemCertificates):
        message, details = _readable_certificates(role, len(o.certs))
        return CheckResult(cid, Status.OK, entry.path, message, details)
    if isinstance(o, PrivateKeyFacts):
        return CheckResult(
            cid,
            Status.OK,
            entry.path,
            f"readable: {o.algorithm} {o.bits}-bit private key",
            {"role": role, "key_type": o.algorithm, "key_bits": o.bits},
        )
    details = {"reason": o.reason, "role": role}
    if o.reason == reasons.PERMISSION_DENIED and not privileged:
        # Not a proven defect: root-only is how Greengrass installs the key (SPEC).
        return CheckResult(
            cid,
            Status.UNKNOWN,
            entry.path,
            f"is root-only ({o.message}) and the agent runs unprivileged",
            details,
            PRIVILEGE_HINT,
        )
    status = Status.UNKNOWN if o.reason in _UNKNOWN_REASONS else Status.CRITICAL
    fix = _FIX.get(o.reason, "correct {setting}").format(setting=SETTING[entry.role])
    return CheckResult(cid, status, entry.path, o.message, details, fix)


@functools.lru_cache(maxsize=64)
def _readable_certificates(role: str, n: int) -> tuple[str, dict[str, Any]]:
    # Shared by the thousands of one-certificate files of a fleet, like every reused result.
    return f"readable: {n} certificate{'s' if n != 1 else ''}", {"role": role, "certificates": n}


def validity_phase(c: CertFacts, now: float) -> tuple[int, int]:
    """(whole days left, -1 not yet valid / 0 valid / 1 expired): all a verdict depends on."""
    days_left = math.floor((c.not_after - now) / _DAY)
    phase = -1 if now < c.not_before else (1 if now > c.not_after else 0)
    return days_left, phase


def validity_window(c: CertFacts, days_left: int, phase: int) -> tuple[float, float]:
    """The open interval of clock times in which ``validity_phase`` stays (days_left, phase).

    Whole days left is ``floor((not_after - now) / 86400)``, constant while
    ``not_after - (days_left + 1) days < now <= not_after - days_left days``; the phase changes
    at notBefore and notAfter. Open at both ends, so a boundary instant is judged afresh.
    """
    after = c.not_after - (days_left + 1) * _DAY
    until = c.not_after - days_left * _DAY
    if phase < 0:
        until = min(until, c.not_before)
    elif phase == 0:
        after, until = max(after, c.not_before), min(until, c.not_after)
    else:
        after = max(after, c.not_after)
    return after, until


def validity_result(
    entry: FileEntry,
    index: int,
    c: CertFacts,
    multi: bool,
    days_left: int,
    phase: int,
    warn_days: int,
    critical_days: int,
) -> CheckResult:
    """``certificate.validity`` for one certificate."""
    date = c.not_after_text[:10]
    details: dict[str, Any] = {
        "days_left": days_left,
        "not_after": c.not_after_text,
        "not_before": c.not_before_text,
    }
    if multi:
        details["index"] = index
        details["subject"] = c.subject
    if phase == 0 and days_left >= warn_days:
        return CheckResult(
            "certificate.validity",
            Status.OK,
            entry.path,
            _valid_for(days_left, date),
            details,
        )
    what = _what(entry.role, c.subject)
    status = Status.CRITICAL
    if phase < 0:
        reason = "not_yet_valid"
        message = f"not valid before {c.not_before_text[:10]} (clock wrong or issued early)"
        fix = f"check the device clock (NTP), or replace {what} with one valid now"
    elif phase > 0:
        reason = "expired"
        ago = -days_left - 1  # whole days since notAfter
        message = (
            f"expired {ago} day{'s' if ago != 1 else ''} ago ({date})"
            if ago
            else f"expired on {date}"
        )
        fix = f"replace {what} now: it expired on {date}"
    else:
        status = Status.CRITICAL if days_left < critical_days else Status.WARNING
        reason = "expires_soon"
        message = f"expires in {days_left} day{'s' if days_left != 1 else ''} ({date})"
        fix = f"rotate {what} before {date}"
    details["reason"] = reason
    return CheckResult("certificate.validity", status, entry.path, message, details, fix)


@functools.lru_cache(maxsize=4096)
def _valid_for(days_left: int, date: str) -> str:
    # One text per expiry date: a fleet's certificates expire on a few hundred distinct days,
    # so 100,000 OK results share them (9 MB of strings otherwise).
    return f"valid for {days_left} more days (until {date})"


def key_quality_result(entry: FileEntry, index: int, c: CertFacts, multi: bool) -> CheckResult:
    """``certificate.key_quality`` for one certificate."""
    status, message, details, remediation = _key_verdict(c.key, c.signature_hash, c.self_issued)
    if multi:
        details = {**details, "index": index, "subject": c.subject}
    return CheckResult(
        "certificate.key_quality", status, entry.path, message, details, remediation or None
    )


@functools.lru_cache(maxsize=256)
def _key_verdict(
    key: KeyFacts, signature_hash: str | None, self_issued: bool
) -> tuple[Status, str, dict[str, Any], str]:
    """The verdict on one kind of key: computed once for the thousands of certificates of a
    fleet that share it (the details dict is shared too, like every reused result)."""
    details: dict[str, Any] = {
        "key_type": key.algorithm,
        "key_bits": key.bits,
        "signature_hash": signature_hash,
    }
    if key.curve is not None:
        details["curve"] = key.curve
    findings = key_problems(key, signature_hash, self_issued)
    if not findings:
        sig = f", {signature_hash} signature" if signature_hash else ""
        return Status.OK, f"{describe_public_key(key)} key{sig}", details, ""
    made = fold("certificate.key_quality", "", findings, "", details)
    return made.status, made.message, dict(made.details), made.remediation or ""


def _what(role: Role, subject: str) -> str:
    if role == Role.DEVICE_CERT:
        return "the device certificate"
    if role == Role.ROOT_CA:
        return "the root CA bundle (https://www.amazontrust.com/repository/)"
    return f"the certificate {subject!r}"
