"""A Unix-socket proxy between a component and the nucleus stand-in that cuts the connection
the moment a chosen IPC operation passes through it, before the request reaches the nucleus.

The operation name travels as an eventstream header value (``aws.greengrass#PublishToIoTCore``),
so the proxy only has to spot those bytes in the client's stream; the bytes of the message that
carries them are never forwarded, so the nucleus never sees that request.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CuttingProxy:
    """Listens on ``path``, relays to ``upstream``, and cuts ``cuts`` connections at ``marker``."""

    path: Path
    upstream: Path
    marker: bytes = b"aws.greengrass#PublishToIoTCore"
    cuts: int = 1
    cut: int = 0
    connections: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listener: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Listen and relay on background threads."""
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(8)
        listener.settimeout(0.1)
        self._listener = listener
        thread = threading.Thread(target=self._accept, name="cutting-proxy", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop listening and close every relayed connection."""
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        if self._listener is not None:
            self._listener.close()
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:  # timeout: look at the stop flag again
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(str(self.upstream))
            except OSError:
                client.close()
                upstream.close()
                continue
            with self._lock:
                self.connections += 1
            thread = threading.Thread(
                target=self._relay, args=(client, upstream), name="cutting-relay", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _take_cut(self) -> bool:
        with self._lock:
            if self.cut < self.cuts:
                self.cut += 1
                return True
            return False

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        tail = b""
        with selectors.DefaultSelector() as sel, client, upstream:
            sel.register(client, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, client)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.1):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    if source is client:
                        window = tail + data
                        tail = window[-len(self.marker) :]
                        if self.marker in window and self._take_cut():
                            # Abrupt close, no message first: what a crashing nucleus does.
                            for sock in (client, upstream):
                                with contextlib.suppress(OSError):
                                    sock.shutdown(socket.SHUT_RDWR)
                            return
                    try:
                        key.data.sendall(data)
                    except OSError:
                        return
