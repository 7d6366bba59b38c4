"""The X.509 identity audit: the six ``certificate.*`` checks of the SPEC catalogue.

Files are read and parsed once per cycle (the inventory is shared through ``ctx.once``), their
facts kept across cycles (:class:`CertificateState`), and unchanged results reused - per file, or as
a whole list when no file changed; the checks below only pick targets and turn facts into
results (see :mod:`agent.x509`). Validity is re-judged from the cached dates whenever the clock
leaves the window in which every day count stands, because the clock moves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.checks.base import CheckContext, check
from agent.report import CheckResult, Status, Verdict, fold
from agent.x509.chain import device_cert_findings, root_ca_findings
from agent.x509.inventory import FileCache, Inventory, Role, Sources, collect
from agent.x509.parse import PemCertificates, PrivateKeyFacts
from agent.x509.perms import directories_of, directory_verdict, file_verdict
from agent.x509.quality import describe_key
from agent.x509.results import (
    ListMemo,
    ResultMemo,
    key_quality_result,
    readable_result,
    validity_phase,
    validity_result,
    validity_window,
)
from agent.x509.token_match import TokenVerdict, pkcs11_key_match


@dataclass
class CertificateState:
    """What the certificate checks keep from one cycle to the next."""

    files: dict[Any, Any] | None = None
    """Parsed files by stamp (:func:`agent.x509.inventory.collect`)."""
    stored_for: str | None = None
    """The fingerprint the ``certificates.cacheFile`` on disk was made for, as last read or
    written (None: not known to hold this cycle's)."""
    last_inventory: Inventory | None = None
    readable: ResultMemo = field(default_factory=ResultMemo)
    readable_list: ListMemo = field(default_factory=ListMemo)
    validity: ResultMemo = field(default_factory=ResultMemo)
    validity_list: ListMemo = field(default_factory=ListMemo)
    key_quality: ResultMemo = field(default_factory=ResultMemo)
    key_quality_list: ListMemo = field(default_factory=ListMemo)
    token_match: TokenVerdict | None = None
    """The last PKCS#11 verdict (:mod:`agent.x509.token_match`)."""


def _sources(ctx: CheckContext) -> Sources:
    gg = ctx.greengrass
    certs = ctx.config.certificates
    return Sources(
        device_cert=gg.path("certificateFilePath"),
        private_key=gg.path("privateKeyPath"),
        # A component gets the nucleus's rootCaPath in GG_ROOT_CA_PATH:
        # https://docs.aws.amazon.com/greengrass/v2/developerguide/component-environment-variables.html
        root_ca=gg.path("rootCaPath") or ctx.env.get("GG_ROOT_CA_PATH") or None,
        ca_bundle=str(certs.ca_bundle) if certs.ca_bundle is not None else None,
        extra_paths=tuple(str(p) for p in certs.extra_paths),
    )


def _collect(ctx: CheckContext) -> Inventory:
    state = ctx.kept.get(CertificateState)
    sources = _sources(ctx)
    stored = ctx.config.certificates.cache_file
    if stored is None:
        inv, cache = collect(sources, state.files, keep=not ctx.kept.one_shot)
    else:
        inv, cache = _collect_with_file(ctx, stored, sources, state)
    if ctx.kept.one_shot:
        return inv  # no next cycle to reuse the parsed files for: let them go with the report
    state.files = cache.current
    inv.continues(state.last_inventory)
    state.last_inventory = inv
    return inv


def _collect_with_file(
    ctx: CheckContext, path: Path, sources: Sources, state: CertificateState
) -> tuple[Inventory, FileCache]:
    """:func:`collect` starting from ``certificates.cacheFile`` when this process has not
    parsed the files yet, and writing it back when what it would hold changed."""
    from agent.x509 import disk_cache  # only with the setting: json, hashlib, the writer

    fingerprint = disk_cache.fingerprint(ctx.config.model_dump_json(), repr(sources))
    previous = state.files
    if previous is None:
        previous = disk_cache.read(path, fingerprint)
        state.stored_for = fingerprint if previous else None
    inv, cache = collect(sources, previous)
    if state.stored_for != fingerprint or disk_cache.outdated(cache):
        written = disk_cache.write(path, fingerprint, cache.current)
        state.stored_for = fingerprint if written else None
    return inv, cache


def inventory(ctx: CheckContext) -> Inventory:
    """The files of this cycle, read and parsed once and shared by every certificate check."""
    return ctx.once(_collect)


@check("certificate.readable")
def readable(ctx: CheckContext) -> Iterable[CheckResult]:
    """Every configured file exists, is a regular file <= 1 MiB and parses as expected."""
    inv = inventory(ctx)
    state = ctx.kept.get(CertificateState)
    whole = state.readable_list
    reused = whole.get(inv.generation, ctx.privileged)
    if reused is not None:
        return reused
    out = [
        CheckResult(
            "certificate.readable",
            Status.UNKNOWN,
            u.setting,
            u.message,
            {"reason": u.reason},
            u.remediation,
        )
        for u in inv.unconfigured
    ]
    memo = state.readable.begin(keep=not ctx.kept.one_shot)
    for entry in inv.entries:
        key, token = (entry.path, entry.role), (entry.outcome, ctx.privileged)
        out.append(
            memo.get(key, token) or memo.put(key, token, readable_result(entry, ctx.privileged))
        )
    return whole.put(inv.generation, ctx.privileged, out)


@check("certificate.validity")
def validity(ctx: CheckContext) -> Iterable[CheckResult]:
    """Days left of every certificate against ``certificates.warnDays``/``criticalDays``."""
    now = ctx.clock().timestamp()
    warn, crit = ctx.config.certificates.warn_days, ctx.config.certificates.critical_days
    inv = inventory(ctx)
    state = ctx.kept.get(CertificateState)
    whole = state.validity_list
    reused = whole.get(inv.generation, (warn, crit), now)
    if reused is not None:
        return _blame_the_clock(ctx, reused)
    memo = state.validity.begin(keep=not ctx.kept.one_shot)
    out: list[CheckResult] = []
    after, until = -math.inf, math.inf  # when some verdict of this list changes
    for entry, pem, index in inv.certificates():
        c, multi = pem.certs[index], len(pem.certs) > 1
        days_left, phase = validity_phase(c, now)
        lo, hi = validity_window(c, days_left, phase)
        after, until = max(after, lo), min(until, hi)
        key, token = (entry.path, entry.role, index), (pem, days_left, phase, warn, crit)
        out.append(
            memo.get(key, token)
            or memo.put(
                key,
                token,
                validity_result(entry, index, c, multi, days_left, phase, warn, crit),
            )
        )
    return _blame_the_clock(ctx, whole.put(inv.generation, (warn, crit), out, (after, until)))


def _blame_the_clock(ctx: CheckContext, out: list[CheckResult]) -> list[CheckResult]:
    """A certificate not yet valid (or expired) while the clock is known to be off says so.

    Asks ``system.clock`` (imported here: the certificate area alone must not load the HTTP
    stack) only when such a certificate exists; the cached list itself is left as it is.
    """
    suspects = [r.details.get("reason") in ("not_yet_valid", "expired") for r in out]
    if not any(suspects):
        return out
    from agent.checks.system import clock_blame

    blamed: list[CheckResult] = []
    for r, suspect in zip(out, suspects, strict=True):
        note = (
            clock_blame(ctx, -1 if r.details["reason"] == "not_yet_valid" else 1)
            if suspect
            else None
        )
        if note is None:
            blamed.append(r)
            continue
        blamed.append(
            replace(
                r,
                message=f"{r.message}; {note}",
                details={**r.details, "clock_suspect": True},
                remediation=f"fix the device clock first (system.clock); {r.remediation}",
            )
        )
    return blamed


@check("certificate.key_quality")
def key_quality(ctx: CheckContext) -> Iterable[CheckResult]:
    """Key size, curve, exponent, ROCA fingerprint and signature hash of every certificate."""
    inv = inventory(ctx)
    state = ctx.kept.get(CertificateState)
    whole = state.key_quality_list
    reused = whole.get(inv.generation, None)
    if reused is not None:
        return reused
    memo = state.key_quality.begin(keep=not ctx.kept.one_shot)
    out: list[CheckResult] = []
    for entry, pem, index in inv.certificates():
        c, multi = pem.certs[index], len(pem.certs) > 1
        key = (entry.path, entry.role, index)
        out.append(
            memo.get(key, pem) or memo.put(key, pem, key_quality_result(entry, index, c, multi))
        )
    return whole.put(inv.generation, None, out)


@check("certificate.key_match")
def key_match(ctx: CheckContext) -> Iterable[CheckResult]:
    """The private key is the one the device certificate was issued for."""
    inv = inventory(ctx)
    cert = inv.device_cert
    cid = "certificate.key_match"
    if cert is None:
        return []
    if not isinstance(cert.outcome, PemCertificates):
        return [
            CheckResult(
                cid,
                Status.UNKNOWN,
                cert.path,
                "cannot compare: the device certificate is unreadable (see certificate.readable)",
                {"reason": "certificate_unreadable"},
                "fix the device certificate first",
            )
        ]
    if inv.pkcs11_key is not None:
        state = ctx.kept.get(CertificateState)
        state.token_match = pkcs11_key_match(
            ctx.config,
            ctx.greengrass,
            cert.path,
            cert.outcome.certs[0].spki_sha256,
            state.token_match,
        )
        return [state.token_match.result]
    key = inv.private_key
    if key is None or not isinstance(key.outcome, PrivateKeyFacts):
        return [
            CheckResult(
                cid,
                Status.UNKNOWN,
                cert.path,
                "cannot compare: the private key is unreadable or not configured "
                "(see certificate.readable)",
                {"reason": "key_unreadable"},
                "fix the private key first",
            )
        ]
    leaf, facts = cert.outcome.certs[0], key.outcome
    details = {
        "key_path": key.path,
        "certificate_spki_sha256": leaf.spki_sha256.hex(),
        "key_spki_sha256": facts.spki_sha256.hex(),
    }
    if leaf.spki_sha256 == facts.spki_sha256:
        return [
            CheckResult(
                cid,
                Status.OK,
                cert.path,
                f"private key {key.path} matches the certificate ({describe_key(leaf)})",
                details,
            )
        ]
    return [
        CheckResult(
            cid,
            Status.CRITICAL,
            cert.path,
            f"private key {key.path} ({facts.algorithm} {facts.bits}-bit) does not match the "
            f"certificate's public key ({describe_key(leaf)}): the TLS handshake will fail",
            {**details, "reason": "mismatch"},
            "point system.privateKeyPath at the key the certificate was issued for, or issue a new "
            "certificate for this key",
        )
    ]


@check("certificate.chain")
def chain(ctx: CheckContext) -> Iterable[CheckResult]:
    """Root CA bundle holds CA certs incl. an Amazon root; device cert is a client leaf."""
    inv = inventory(ctx)
    # mqtt.endpoint defaults to the nucleus iotDataEndpoint (SPEC, Configuration).
    endpoint = ctx.config.mqtt.endpoint or ctx.greengrass.iot_data_endpoint
    out: list[CheckResult] = []
    if inv.root_ca is not None and isinstance(inv.root_ca.outcome, PemCertificates):
        out.append(
            fold("certificate.chain", inv.root_ca.path, *root_ca_findings(inv.root_ca, endpoint))
        )
    if inv.device_cert is not None:
        findings = device_cert_findings(inv.device_cert, inv.ca_bundle, ctx.clock())
        out.append(fold("certificate.chain", inv.device_cert.path, *findings))
    return out


@check("certificate.permissions")
def permissions(ctx: CheckContext) -> Iterable[CheckResult]:
    """Modes of the key, the certificates and the directories holding them."""
    inv = inventory(ctx)
    is_key: dict[str, bool] = {}
    for entry in (inv.device_cert, inv.private_key, inv.root_ca, inv.ca_bundle):
        if entry is not None:
            is_key[entry.path] = is_key.get(entry.path, False) or entry.role == Role.PRIVATE_KEY
    verdicts: list[Verdict] = []
    holders: dict[str, list[str]] = {}
    for path, private in is_key.items():
        verdict = file_verdict(path, private_key=private)
        if verdict is None:
            continue
        verdicts.append(verdict)
        for directory in directories_of(path):
            holders.setdefault(directory, []).append(path)
    for directory, dependants in holders.items():
        verdict = directory_verdict(directory, dependants)
        if verdict is not None:
            verdicts.append(verdict)
    return [v.to_result("certificate.permissions") for v in verdicts]


CHECKS = [readable, validity, key_quality, key_match, chain, permissions]
"""The certificate area, in catalogue order."""
