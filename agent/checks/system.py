"""The ``system.*`` checks: will this device connect? Its clock, and the endpoints it needs.

``system.clock`` reads the ``Date`` of the latest AWS answer the cycle got (the S3 area and the
credentials provider run first and leave it on the shared HTTP client); with none fresh, one
``HEAD /`` (bounded by ``system.timeoutSeconds``, at most once per ``system.refreshSeconds``) to
the credentials endpoint, or to STS. ``system.endpoint`` handshakes with every endpoint the
nucleus uses (:mod:`agent.aws.reach`; never an MQTT CONNECT) and keeps the verdicts for
``system.refreshSeconds`` unless the endpoints, the certificate, the key or the bundle change.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from agent.aws.endpoints import Endpoint, parse_endpoint, resolve_region, service_endpoint
from agent.aws.http import DateSeen, TlsSettings
from agent.checks.base import CheckContext, check
from agent.checks.endpoints import CHECK_ID as ENDPOINT
from agent.checks.endpoints import Target, Unconfigured, network_down, targets, verdict
from agent.errors import AwsError
from agent.report import CheckResult, Finding, Status
from agent.system.clock import (
    CHECK_ID as CLOCK,
)
from agent.system.clock import (
    WARN_S,
    BadDate,
    Skew,
    clock_verdict,
    describe_skew,
    parse_http_date,
)

if TYPE_CHECKING:
    from agent.aws.reach import Reach

UNKNOWN_RETRY_S = 60
"""An endpoint verdict without a network answer is probed again after at most this long."""
_NO_ANSWER = frozenset({"network_down", "timeout"})


@dataclass
class Measured:
    """One reading of AWS's time."""

    seen: DateSeen
    skew_s: float
    """Device clock minus AWS's, when the answer arrived."""

    def now(self) -> Skew:
        """The skew now: a wall clock stepped since (NTP, an operator) moved it by as much."""
        step = (time.time() - self.seen.wall) - (time.monotonic() - self.seen.monotonic)
        at = datetime.fromtimestamp(self.seen.wall, timezone.utc)
        return Skew(self.skew_s + step, self.seen.url, at)


@dataclass
class SystemState:
    """What the system checks keep from one cycle to the next."""

    measured: Measured | None = None
    last_seen: DateSeen | None = None
    bad_date: str | None = None
    """Why the latest ``Date`` could not be read."""
    asked_at: float | None = None
    """``time.monotonic()`` of the last request made only to read ``Date``."""
    asked_error: str | None = None
    endpoints_key: bytes | None = None
    endpoints_at: float | None = None
    endpoint_results: list[CheckResult] = field(default_factory=list)


def _read(state: SystemState, seen: DateSeen | None) -> None:
    if seen is None or seen is state.last_seen:
        return
    state.last_seen = seen
    try:
        aws = parse_http_date(seen.value).timestamp()
    except BadDate as exc:
        state.bad_date = f"{exc} (from {seen.url})"
        return
    state.bad_date = None
    state.measured = Measured(seen, seen.wall - aws)


def _ask_date(ctx: CheckContext) -> None:
    """One ``HEAD /`` only for its ``Date``: the test endpoint, else the credentials endpoint
    (mutual TLS, as the nucleus does), else STS; any status will do."""
    gg = ctx.greengrass
    env = ctx.env
    region = resolve_region(gg.region, env)[0]
    tls: TlsSettings | None = None
    endpoint: Endpoint
    cred = gg.credentials_endpoint
    key = gg.path("privateKeyPath")
    cert = gg.path("certificateFilePath")
    if env.get("AWS_ENDPOINT_URL_STS") or env.get("AWS_ENDPOINT_URL") or not cred:
        endpoint = service_endpoint("sts", region, env)
    elif key and cert and not key.lower().startswith("pkcs11:"):
        endpoint = parse_endpoint(cred, what="iotCredEndpoint")
        ca = gg.path("rootCaPath")
        tls = TlsSettings(
            ca_file=_path(ca) if ca and os.path.exists(ca) else None,
            cert_file=_path(cert),
            key_file=_path(key),
        )
    else:
        endpoint = service_endpoint("sts", region, env)
    ctx.http_client().request(
        "HEAD",
        endpoint,
        endpoint.base_path + "/",
        [("Host", endpoint.host_header)],
        None,
        timeout=ctx.config.system.timeout_seconds,
        tls=tls,
    )


def _path(text: str) -> Path:
    return Path(text)


@check(CLOCK)
def clock(ctx: CheckContext) -> Iterable[CheckResult]:
    """Skew against AWS's ``Date``, and whether the kernel says the clock is synchronised."""
    return [clock_result(ctx)]


def clock_result(ctx: CheckContext) -> CheckResult:
    """``system.clock``'s one result (also what ``certificate.validity`` consults)."""
    return ctx.once(_clock_result)


def _clock_result(ctx: CheckContext) -> CheckResult:
    cfg = ctx.config.system
    state = ctx.kept.get(SystemState)
    http = ctx.http_client()
    _read(state, http.date_seen)
    now = time.monotonic()
    fresh = state.measured is not None and now - state.measured.seen.monotonic < cfg.refresh_seconds
    may_ask = state.asked_at is None or time.monotonic() - state.asked_at >= cfg.refresh_seconds
    if not fresh and ctx.network and may_ask:
        state.asked_at = time.monotonic()
        try:
            _ask_date(ctx)
            state.asked_error = None
        except AwsError as exc:
            state.asked_error = str(exc)
        _read(state, http.date_seen)
    unmeasured: Finding | None = None
    skew = state.measured.now() if state.measured is not None else None
    if skew is None:
        if not ctx.network:
            why = "not measured: the demo does not use the network"
        elif state.bad_date is not None:
            why = f"not measured: {state.bad_date}"
        elif state.asked_error is not None:
            why = f"not measured: no answer from AWS ({state.asked_error})"
        else:
            why = "not measured: no AWS answer yet"
        reason = "bad_date" if state.bad_date and ctx.network else "not_measured"
        unmeasured = Finding(
            Status.UNKNOWN,
            reason,
            why,
            "let the device reach AWS (the credentials endpoint or STS on 443)"
            if reason == "not_measured"
            else "the answer did not come from AWS: check for a proxy in the way",
        )
    return clock_verdict(skew, ctx.kernel_clock(), unmeasured).to_result(CLOCK)


def clock_blame(ctx: CheckContext, phase: int) -> str | None:
    """Why a certificate's dates may be the clock's fault, when the clock is known to be off.

    ``phase`` is the certificate's (-1 not yet valid, 1 expired). The skew must point the
    same way (a clock behind makes certificates not yet valid, one ahead makes them expired).
    None when the clock is not known to be off in that direction.
    """
    result = clock_result(ctx)
    seconds = result.details.get("skew_seconds")
    if isinstance(seconds, (int, float)) and abs(seconds) > WARN_S:
        if (seconds < 0 and phase < 0) or (seconds > 0 and phase > 0):
            state = ctx.kept.get(SystemState)
            source = state.measured.seen.url if state.measured else "AWS"
            return (
                f"the device clock is {describe_skew(seconds)} AWS's time (Date of {source}): "
                "the clock, not the certificate, is wrong (see system.clock)"
            )
        return None
    if result.details.get("kernel_synchronised") is False and phase < 0:
        return (
            "the kernel reports the clock as not synchronised: the clock rather than the "
            "certificate may be wrong (see system.clock)"
        )
    return None


# -- endpoints ------------------------------------------------------------------------------


def _stamp(path: str | None) -> str:
    if path is None or path.lower().startswith("pkcs11:"):
        return str(path)
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{path}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _endpoints_key(ctx: CheckContext, found: list[Target], missing: list[Unconfigured]) -> bytes:
    gg = ctx.greengrass
    parts = [
        repr(found),
        repr(missing),
        _stamp(gg.path("certificateFilePath")),
        _stamp(gg.path("privateKeyPath")),
        _stamp(gg.path("rootCaPath")),
        repr(ctx.config.pkcs11.model_dump(exclude={"user_pin"})),
        repr(ctx.config.system),
        str(ctx.network),
    ]
    # Hashed: the key must not keep a second copy of anything sensitive.
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).digest()


@check(ENDPOINT)
def endpoints(ctx: CheckContext) -> Iterable[CheckResult]:
    """DNS, TCP, TLS and mutual TLS with every endpoint the nucleus uses."""
    cfg = ctx.config.system
    state = ctx.kept.get(SystemState)
    region = resolve_region(ctx.greengrass.region, ctx.env)[0]
    found, missing = targets(ctx.greengrass.nucleus, region, ctx.env)
    key = _endpoints_key(ctx, found, missing)
    now = time.monotonic()
    if state.endpoints_key == key and state.endpoints_at is not None:
        age = now - state.endpoints_at
        # No answer: asked again soon. Not a set-up failure: a PIN the token refused must not
        # be tried every minute (tokens lock after a few wrong PINs); it waits for a change.
        unanswered = any(r.details.get("reason") in _NO_ANSWER for r in state.endpoint_results)
        limit = min(cfg.refresh_seconds, UNKNOWN_RETRY_S) if unanswered else cfg.refresh_seconds
        if age < limit:
            return state.endpoint_results
    out = probe_endpoints(ctx, found, missing)
    state.endpoints_key, state.endpoints_at, state.endpoint_results = key, now, out
    return out


def probe_endpoints(
    ctx: CheckContext, found: list[Target], missing: list[Unconfigured]
) -> list[CheckResult]:
    """Probe every target at once; one result each."""
    from agent.aws.reach import (
        REFUSED_ERRORS,
        TCP_TIMEOUT_ERRORS,
        Contexts,
        Identity,
        ReachSetupError,
        contexts,
        reach,
    )
    from agent.pkcs11 import Pkcs11Error, token_key

    cfg = ctx.config.system
    gg = ctx.greengrass
    out = [
        CheckResult(
            ENDPOINT,
            Status.UNKNOWN,
            u.setting,
            f"not checked: {u.message}",
            {"reason": "not_configured", "role": u.role},
            f"set {u.setting} in the {gg.nucleus_name} configuration",
        )
        for u in missing
    ]
    bundle = gg.path("rootCaPath") or ctx.env.get("GG_ROOT_CA_PATH") or None
    cert, key = gg.path("certificateFilePath"), gg.path("privateKeyPath")

    def unknown(reason: str, message: str, fix: str) -> list[CheckResult]:
        return out + [
            CheckResult(ENDPOINT, Status.UNKNOWN, t.name, message, {"reason": reason}, fix)
            for t in found
        ]

    if not ctx.network:
        return unknown(
            "offline",
            "not probed: the demo does not use the network",
            "run `gg-health-agent check --only system` on the device",
        )
    if not cert or not key:
        return unknown(
            "not_configured",
            "not probed: the device certificate or key is not configured",
            "set system.certificateFilePath and system.privateKeyPath",
        )
    identity: Identity
    if key.lower().startswith("pkcs11:"):
        try:
            identity = Identity(cert, token=token_key(key, ctx.config, gg))
        except Pkcs11Error as exc:
            return unknown(
                exc.reason, f"not probed: {exc}", "fix the PKCS#11 settings (certificate.key_match)"
            )
    else:
        identity = Identity(cert, key_file=key)
    timeout = cfg.timeout_seconds

    by_alpn: dict[tuple[str, ...], Contexts] = {}

    def tls_for(alpn: tuple[str, ...]) -> Contexts:
        if alpn not in by_alpn:
            by_alpn[alpn] = contexts(bundle, identity, alpn)
        return by_alpn[alpn]

    try:
        for target in found:
            tls_for(target.alpn)
            if target.alternative is not None:
                tls_for(target.alternative[2])
    except ReachSetupError as exc:
        return unknown(
            exc.reason,
            f"not probed: {exc}",
            "see certificate.readable for the file at fault",
        )

    def one(target: Target) -> Reach:
        return reach(target.host, target.port, by_alpn[target.alpn], timeout=timeout)

    with ThreadPoolExecutor(max_workers=max(1, len(found))) as pool:
        firsts = list(pool.map(one, found))
    offline = network_down(firsts)
    alternatives: dict[str, Reach] = {}
    blocked = [
        t
        for t, r in zip(found, firsts, strict=True)
        if t.alternative is not None
        and (r.verified.error in REFUSED_ERRORS or r.verified.error in TCP_TIMEOUT_ERRORS)
    ]
    if blocked and not offline:

        def alt(target: Target) -> Reach:
            assert target.alternative is not None
            host, port, alpn = target.alternative
            return reach(host, port, by_alpn[alpn], timeout=timeout)

        with ThreadPoolExecutor(max_workers=len(blocked)) as pool:
            alternatives = dict(zip([t.name for t in blocked], pool.map(alt, blocked), strict=True))
    for target, r in zip(found, firsts, strict=True):
        v = verdict(
            target,
            r,
            alternatives.get(target.name),
            bundle=str(bundle),
            timeout=timeout,
            offline=offline,
        )
        out.append(v.to_result(ENDPOINT))
    return out


CHECKS = [clock, endpoints]
