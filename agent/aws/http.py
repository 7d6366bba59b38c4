"""HTTP/1.1 over awscrt with keep-alive connection reuse, hard timeouts and bounded bodies.

One event-loop thread and one ClientBootstrap serve the whole process (created on first use, so
importing this module loads nothing). Idle connections are kept per (host, port, TLS settings)
and reused across requests and cycles. Every request has one deadline that covers connecting,
the TLS handshake and the whole answer: a server that accepts and never answers costs at most
the timeout, never a hung cycle.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from agent.aws.classify import from_crt
from agent.aws.endpoints import Endpoint
from agent.errors import AwsError, ErrorKind
from agent.log import get_logger

log = get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""No AWS answer the agent reads comes near this; anything larger is refused."""
MAX_IDLE_PER_HOST = 8

_shared_lock = threading.Lock()
_shared: dict[str, Any] = {}


def _bootstrap() -> Any:
    """The process-wide ClientBootstrap (one event-loop thread: the agent is I/O-light)."""
    with _shared_lock:
        if "bootstrap" not in _shared:
            from awscrt.io import ClientBootstrap, DefaultHostResolver, EventLoopGroup

            elg = EventLoopGroup(1)
            resolver = DefaultHostResolver(elg)
            _shared["bootstrap"] = ClientBootstrap(elg, resolver)
        return _shared["bootstrap"]


@dataclass(frozen=True)
class TlsSettings:
    """What a TLS connection trusts and presents; by default the system trust, no client cert."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def stamp(self) -> tuple[tuple[int, int, int] | None, ...]:
        """(inode, size, mtime) of each file, so a changed file means a new TLS context."""
        stamps: list[tuple[int, int, int] | None] = []
        for path in (self.ca_file, self.cert_file, self.key_file):
            try:
                st = os.stat(path) if path is not None else None
            except OSError:
                st = None
            stamps.append((st.st_ino, st.st_size, st.st_mtime_ns) if st else None)
        return tuple(stamps)


@dataclass(frozen=True)
class Response:
    """A complete answer."""

    status: int
    headers: dict[str, str]
    """Lower-cased names; repeated headers joined with ``,``."""
    body: bytes

    @property
    def ok(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300


@dataclass(frozen=True)
class DateSeen:
    """The ``Date`` header of an answer and the local clock when it arrived.

    ``system.clock`` compares the two: AWS stamps every answer with its own time (RFC 9110
    section 6.6.1), so the answers a cycle already got measure the device clock for free.
    """

    value: str
    """The header as sent (parsed by :mod:`agent.system.clock`, which judges bad ones)."""
    url: str
    """Where the answer came from (scheme, host, path; no query, so no secrets)."""
    wall: float
    """``time.time()`` when the answer was complete."""
    monotonic: float
    """``time.monotonic()`` at the same moment: tells a later step of the wall clock apart."""


@dataclass
class _Exchange:
    limit: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    too_large: bool = False

    def on_response(self, http_stream: Any, status_code: int, headers: Any, **_: Any) -> None:
        self.headers = list(headers)

    def on_body(self, http_stream: Any, chunk: bytes, **_: Any) -> None:
        if self.too_large:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            # Closing the connection ends the stream with an error at once. Raising here would
            # too, but awscrt prints the traceback of an exception from a callback on stderr,
            # the agent's log stream.
            self.too_large = True
            self.chunks.clear()
            http_stream.connection.close()
            return
        self.chunks.append(bytes(chunk))


class HttpClient:
    """A small pooled HTTP client; safe to share between threads."""

    def __init__(self, *, max_body: int = MAX_BODY_BYTES) -> None:
        self._max_body = max_body
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, int, Any], list[Any]] = {}
        self._tls_contexts: dict[TlsSettings, tuple[Any, Any]] = {}
        self.date_seen: DateSeen | None = None
        """The ``Date`` header of the latest answer that had one (:class:`DateSeen`)."""

    def request(
        self,
        method: str,
        endpoint: Endpoint,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        *,
        timeout: float,
        tls: TlsSettings | None = None,
        aws_time: bool = True,
    ) -> Response:
        """Send one request and read the whole answer before ``timeout`` seconds pass.

        ``path`` includes the query string. Raises AwsError (unreachable/timeout) when no
        answer came; an HTTP error status is a Response, not an exception. ``aws_time=False``:
        the answer's ``Date`` is not AWS's time (a server on the device) and is not recorded
        in :attr:`date_seen`.
        """
        deadline = time.monotonic() + timeout
        tls_settings = (tls or TlsSettings()) if endpoint.tls else None
        # The files' stamps are part of the key: after a certificate rotation at the same path,
        # new connections use the new files and old idle ones are never handed out again.
        stamp = tls_settings.stamp() if tls_settings is not None else None
        key = (endpoint.host, endpoint.port, (tls_settings, stamp))
        where = f"{method} {endpoint.url(path.split('?', 1)[0])}"
        for attempt in (1, 2):
            conn, reused = self._acquire(key, endpoint, tls_settings, deadline, where)
            try:
                response = self._exchange(
                    conn, method, path, headers, body, deadline, where, aws_time
                )
            except AwsError as exc:
                conn.close()
                # A kept-alive connection the server closed meanwhile fails at once; one retry
                # on a fresh connection is what every HTTP client does for idempotent reuse.
                if reused and attempt == 1 and exc.kind is ErrorKind.UNREACHABLE:
                    continue
                raise
            self._release(key, conn, response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _acquire(
        self,
        key: tuple[str, int, Any],
        endpoint: Endpoint,
        tls: TlsSettings | None,
        deadline: float,
        where: str,
    ) -> tuple[Any, bool]:
        with self._lock:
            pool = self._idle.get(key, [])
            while pool:
                conn = pool.pop()
                if conn.is_open():
                    return conn, True
        return self._connect(endpoint, tls, deadline, where), False

    def _connect(
        self, endpoint: Endpoint, tls: TlsSettings | None, deadline: float, where: str
    ) -> Any:
        from awscrt.http import HttpClientConnection
        from awscrt.io import SocketOptions

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AwsError(ErrorKind.TIMEOUT, f"{where}: no time left to connect")
        options = SocketOptions()
        options.connect_timeout_ms = max(1, int(remaining * 1000))
        tls_options = None
        if tls is not None:
            tls_options = self._tls_context(tls, where).new_connection_options()
            tls_options.set_server_name(endpoint.host)
        try:
            future = HttpClientConnection.new(
                host_name=endpoint.host,
                port=endpoint.port,
                bootstrap=_bootstrap(),
                socket_options=options,
                tls_connection_options=tls_options,
            )
        except Exception as exc:  # awscrt raises synchronously for bad arguments/TLS set-up
            raise from_crt(exc, where=where) from None
        try:
            return future.result(timeout=remaining)
        except concurrent.futures.TimeoutError:
            # The handshake may still finish later: close whatever it produces.
            future.add_done_callback(_close_if_connected)
            # s2n delays reporting a failed handshake by 10-30 s ("blinding"), so a server
            # certificate the CA does not vouch for usually ends here rather than as an error.
            hint = "; with TLS an untrusted server certificate also ends this way" if tls else ""
            raise AwsError(
                ErrorKind.TIMEOUT, f"{where}: no connection within {remaining:.1f}s{hint}"
            ) from None
        except Exception as exc:
            raise from_crt(exc, where=where) from None

    def _tls_context(self, tls: TlsSettings, where: str) -> Any:
        stamp = tls.stamp()
        with self._lock:
            cached = self._tls_contexts.get(tls)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        from awscrt.io import ClientTlsContext, TlsContextOptions

        from agent.config.files import MAX_IDENTITY_FILE_BYTES, InputError, vet_file

        # awscrt reads these files without bound (a FIFO hangs it, /dev/zero exhausts memory).
        for path in (tls.cert_file, tls.key_file, tls.ca_file):
            if path is not None:
                try:
                    vet_file(Path(path), MAX_IDENTITY_FILE_BYTES)
                except InputError as exc:
                    raise AwsError(ErrorKind.NOT_CONFIGURED, f"{where}: {exc}") from None
        try:
            if tls.cert_file is not None and tls.key_file is not None:
                opts = TlsContextOptions.create_client_with_mtls_from_path(
                    str(tls.cert_file), str(tls.key_file)
                )
            else:
                opts = TlsContextOptions()
            if tls.ca_file is not None:
                opts.override_default_trust_store_from_path(None, str(tls.ca_file))
            context = ClientTlsContext(opts)
        except Exception as exc:
            name = getattr(exc, "name", type(exc).__name__)
            raise AwsError(
                ErrorKind.NOT_CONFIGURED,
                f"{where}: cannot set up TLS with the given certificate, key or CA ({name})",
            ) from None
        with self._lock:
            self._tls_contexts[tls] = (stamp, context)
        return context

    def _exchange(
        self,
        conn: Any,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        deadline: float,
        where: str,
        aws_time: bool = True,
    ) -> Response:
        from awscrt.http import HttpHeaders, HttpRequest

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AwsError(ErrorKind.TIMEOUT, f"{where}: no time left for the request")
        request = HttpRequest(
            method, path, HttpHeaders(headers), BytesIO(body) if body is not None else None
        )
        exchange = _Exchange(self._max_body)
        try:
            stream = conn.request(request, exchange.on_response, exchange.on_body)
            stream.activate()
            status = stream.completion_future.result(timeout=remaining)
        except concurrent.futures.TimeoutError:
            raise AwsError(
                ErrorKind.TIMEOUT, f"{where}: no answer within {remaining:.1f}s"
            ) from None
        except Exception as exc:
            if exchange.too_large:
                raise self._too_large(where) from None
            raise from_crt(exc, where=where) from None
        if exchange.too_large:  # the last chunk crossed the limit and the stream still ended well
            conn.close()
            raise self._too_large(where)
        wall, mono = time.time(), time.monotonic()
        merged: dict[str, str] = {}
        for name, value in exchange.headers:
            lower = name.lower()
            merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
        if aws_time and "date" in merged:
            self.date_seen = DateSeen(merged["date"], where.split(" ", 1)[1], wall, mono)
        log.debug("aws_http", method=method, url=where.split(" ", 1)[1], status=status)
        return Response(int(status), merged, b"".join(exchange.chunks))

    def _too_large(self, where: str) -> AwsError:
        return AwsError(ErrorKind.UNEXPECTED, f"{where}: answer larger than {self._max_body} bytes")

    def _release(self, key: tuple[str, int, Any], conn: Any, response: Response) -> None:
        if response.headers.get("connection", "").lower() == "close" or not conn.is_open():
            conn.close()
            return
        with self._lock:
            pool = self._idle.setdefault(key, [])
            if len(pool) < MAX_IDLE_PER_HOST:
                pool.append(conn)
                return
        conn.close()


def _close_if_connected(future: concurrent.futures.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()
