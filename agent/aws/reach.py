"""Can the device reach an AWS IoT endpoint? DNS, TCP, TLS and mutual TLS through awscrt - and
not one byte after the handshake.

``awscrt.http.HttpClientConnection.new`` resolves the host, connects, completes the TLS handshake
(with the device certificate, ALPN, the device's root CA bundle) and then sends nothing until a
request is made; the connection is closed at once. So the endpoint sees a TLS client that
leaves, never an MQTT CONNECT that could take over the nucleus's session (AWS IoT drops the
older connection of a client id that connects again:
https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-persistent-sessions).

Two handshakes run side by side on each endpoint:

* ``verified``: the server verified by the root CA bundle, the device certificate presented -
  what the nucleus does;
* ``unverified``: without verifying the server and without the device certificate (s2n will not
  combine a client certificate with ``verify_peer = False``). s2n, awscrt's TLS on Linux, reports a
  failed verification only after a random 10-30 s "blinding" delay
  (https://github.com/aws/s2n-tls/blob/main/docs/usage-guide/topics/ch03-error-handling.md);
  when the unverified handshake with the same server is done and the verified one is not
  ``grace`` seconds later (or failed), the bundle did not verify the server. Nothing is sent on
  the unverified connection either.

A server that refuses the client certificate does so after the client's handshake is complete
in TLS 1.3 (RFC 8446 section 4.4.2.4: the server checks the client's Certificate after its own
Finished), by an alert that closes the connection: a connection the server closes within
``grace`` seconds of the handshake means the certificate was refused.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.aws.http import _bootstrap
from agent.pkcs11 import TokenKey, preload_library

ALPN_MQTT = "x-amzn-mqtt-ca"
"""The ALPN protocol of MQTT over port 443:
https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html"""

DNS_ERRORS = frozenset(
    {
        "AWS_IO_DNS_INVALID_NAME",
        "AWS_IO_DNS_QUERY_FAILED",
        "AWS_IO_DNS_NO_ADDRESS_FOR_HOST",
        "AWS_IO_DNS_HOST_REMOVED_FROM_CACHE",
    }
)
REFUSED_ERRORS = frozenset({"AWS_IO_SOCKET_CONNECTION_REFUSED"})
TCP_TIMEOUT_ERRORS = frozenset({"AWS_IO_SOCKET_TIMEOUT"})
NETWORK_ERRORS = frozenset(
    {
        "AWS_IO_SOCKET_NO_ROUTE_TO_HOST",
        "AWS_IO_SOCKET_NETWORK_DOWN",
        "AWS_IO_SOCKET_ADDRESS_IN_USE",
        "AWS_IO_SOCKET_INVALID_ADDRESS",
    }
)

_PKCS11_LIBS: dict[str, Any] = {}
_PKCS11_LOCK = threading.Lock()


class ReachSetupError(Exception):
    """The TLS context cannot be built: ``reason`` says which input is at fault."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    """What the device presents: its certificate and a key file or a key on a token."""

    cert_file: str
    key_file: str | None = None
    token: TokenKey | None = None


@dataclass(frozen=True)
class Handshake:
    """How one handshake ended."""

    ok: bool
    """The client's side of the handshake completed."""
    error: str | None = None
    """The awscrt error name when it failed (``AWS_IO_SOCKET_CONNECTION_REFUSED``...)."""
    timed_out: bool = False
    """Neither done nor failed within the time given."""
    closed_by_server: bool = False
    """Completed, then closed by the server within the grace period (a refused client cert)."""
    close_error: str | None = None
    """The awscrt error the connection ended with when the server closed it."""
    seconds: float = 0.0


@dataclass(frozen=True)
class Reach:
    """Both handshakes with one endpoint."""

    host: str
    port: int
    alpn: tuple[str, ...]
    verified: Handshake
    unverified: Handshake | None
    """None when the verified handshake settled everything first."""


def _error_name(exc: BaseException) -> str:
    return str(getattr(exc, "name", None) or type(exc).__name__)


def _pkcs11_lib(path: str) -> Any:
    from awscrt.io import Pkcs11Lib

    with _PKCS11_LOCK:
        if path not in _PKCS11_LIBS:
            preload_library(path)  # as the MQTT transport does: python-pkcs11 first
            _PKCS11_LIBS[path] = Pkcs11Lib(file=path)
        return _PKCS11_LIBS[path]


def tls_context(
    ca_file: str | None, identity: Identity | None, *, verify: bool, alpn: Sequence[str]
) -> Any:
    """An awscrt ClientTlsContext; ReachSetupError(reason) names the unusable input."""
    from awscrt.io import ClientTlsContext, TlsContextOptions

    try:
        if identity is None:
            opts = TlsContextOptions()
        elif identity.token is not None:
            token = identity.token
            opts = TlsContextOptions.create_client_with_mtls_pkcs11(
                pkcs11_lib=_pkcs11_lib(token.library),
                user_pin=token.user_pin,
                slot_id=token.slot_id,
                token_label=token.token_label,
                private_key_label=token.key_label,
                cert_file_path=identity.cert_file,
            )
        else:
            opts = TlsContextOptions.create_client_with_mtls_from_path(
                identity.cert_file, identity.key_file or ""
            )
    except Exception as exc:  # awscrt names the CRT error; never the PIN
        raise ReachSetupError(
            f"cannot use the device certificate and key for TLS ({_error_name(exc)})",
            "identity_unusable",
        ) from None
    if ca_file is not None:
        try:
            opts.override_default_trust_store_from_path(None, ca_file)
        except Exception as exc:
            raise ReachSetupError(
                f"cannot load the root CA bundle {ca_file} ({_error_name(exc)})", "bad_bundle"
            ) from None
    opts.verify_peer = verify
    if alpn:
        opts.alpn_list = list(alpn)
    try:
        return ClientTlsContext(opts)
    except Exception as exc:
        if identity is None and verify and ca_file is not None:
            raise ReachSetupError(
                f"cannot load the root CA bundle {ca_file}: no usable PEM certificate "
                f"({_error_name(exc)})",
                "bad_bundle",
            ) from None
        raise ReachSetupError(
            f"cannot use the device certificate and key for TLS ({_error_name(exc)})",
            "identity_unusable",
        ) from None


def _connect(host: str, port: int, context: Any, connect_timeout: float) -> Any:
    from awscrt.http import HttpClientConnection
    from awscrt.io import SocketOptions

    options = SocketOptions()
    options.connect_timeout_ms = max(1, int(connect_timeout * 1000))
    tls_options = context.new_connection_options()
    tls_options.set_server_name(host)
    return HttpClientConnection.new(
        host_name=host,
        port=port,
        bootstrap=_bootstrap(),
        socket_options=options,
        tls_connection_options=tls_options,
    )


def _close_when_connected(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def _settle(future: Any, started: float, grace: float) -> Handshake:
    """The outcome of a completed handshake future; a connection is watched ``grace`` s, closed."""
    seconds = time.monotonic() - started
    exc = future.exception()
    if exc is not None:
        return Handshake(False, error=_error_name(exc), seconds=seconds)
    conn = future.result()
    try:
        ended = conn.shutdown_future.exception(timeout=grace)
    except concurrent.futures.TimeoutError:
        return Handshake(True, seconds=seconds)
    finally:
        conn.close()
    return Handshake(
        True,
        seconds=seconds,
        closed_by_server=True,
        close_error=_error_name(ended) if ended is not None else None,
    )


@dataclass(frozen=True)
class Contexts:
    """The two TLS contexts of :func:`reach`, built once and shared by every endpoint."""

    alpn: tuple[str, ...]
    verified: Any
    unverified: Any


def contexts(ca_file: str | None, identity: Identity | None, alpn: Sequence[str] = ()) -> Contexts:
    """The verified (bundle + device identity) and unverified contexts for ``alpn``.

    Raises ReachSetupError: ``bad_bundle`` when the bundle alone cannot be loaded, else
    ``identity_unusable``.
    """
    try:
        verified = tls_context(ca_file, identity, verify=True, alpn=alpn)
    except ReachSetupError:
        if ca_file is not None:  # the bundle alone: a bad one is named as such
            tls_context(ca_file, None, verify=True, alpn=alpn)
        raise
    # Not verifying, so the trust store does not matter: the bundle spares s2n from loading the
    # system's (~150 roots, ~1 MB kept resident).
    unverified = tls_context(ca_file, None, verify=False, alpn=alpn)
    return Contexts(tuple(alpn), verified, unverified)


def reach(
    host: str,
    port: int,
    tls: Contexts,
    *,
    timeout: float = 5.0,
    grace: float = 1.0,
) -> Reach:
    """Handshake with ``host:port`` as the nucleus would, plus the unverified comparison.

    Takes at most ``timeout`` + 2 x ``grace`` seconds.
    """
    alpn = tls.alpn
    verified_ctx, unverified_ctx = tls.verified, tls.unverified
    started = time.monotonic()
    deadline = started + timeout
    # TCP gives up well before the deadline, so a silent port (SYN dropped) surfaces as
    # AWS_IO_SOCKET_TIMEOUT, and a timeout of ours means "connected, but no TLS answer".
    connect_timeout = max(0.1, timeout * 0.6)
    try:
        fa = _connect(host, port, verified_ctx, connect_timeout)
        fb = _connect(host, port, unverified_ctx, connect_timeout)
    except Exception as exc:
        failed = Handshake(False, error=_error_name(exc))
        return Reach(host, port, tuple(alpn), failed, None)
    pending = {fa, fb}
    a_result: Handshake | None = None
    b_result: Handshake | None = None
    a_deadline = deadline
    while a_result is None:
        remaining = a_deadline - time.monotonic()
        if remaining <= 0:
            break
        done, _ = concurrent.futures.wait(
            pending, timeout=remaining, return_when=concurrent.futures.FIRST_COMPLETED
        )
        if not done:
            break
        if fa in done:
            pending.discard(fa)
            a_result = _settle(fa, started, grace)
        if fb in done and fb in pending:
            pending.discard(fb)
            b_result = _settle(fb, started, grace)
            if b_result.ok:
                # The server speaks TLS: the verified handshake gets ``grace`` more seconds.
                a_deadline = min(a_deadline, time.monotonic() + grace)
    if a_result is None:
        fa.add_done_callback(_close_when_connected)
        a_result = Handshake(False, timed_out=True, seconds=time.monotonic() - started)
    if a_result.ok and not a_result.closed_by_server:
        fb.add_done_callback(_close_when_connected)
        return Reach(host, port, tuple(alpn), a_result, b_result)
    if b_result is None:
        try:
            fb.exception(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            fb.add_done_callback(_close_when_connected)
            b_result = Handshake(False, timed_out=True, seconds=time.monotonic() - started)
        else:
            b_result = _settle(fb, started, grace)
    return Reach(host, port, tuple(alpn), a_result, b_result)
