"""A Greengrass nucleus stand-in: the IPC wire protocol on a Unix socket, for tests.

The real awsiotsdk IPC client (``GreengrassCoreIPCClientV2``) connects to it as it would to a
nucleus — through ``AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT`` and ``SVCUID`` — and
the stand-in answers CONNECT, PublishToIoTCore, GetConfiguration, SubscribeToConfigurationUpdate
and UpdateState, records what it was asked, and lets a test refuse publishes, push
configuration updates, drop connections and restart on the same path.

In-process::

    with NucleusStandIn(path, "token", {"gghealth.HealthAgent": {"intervalSeconds": 60}}) as n:
        ...  # run the client with n.env()
        assert n.wait_for(lambda: len(n.publishes) == 1)

As a process (for tests that run the agent as a separate process; prints a ``ready`` JSON line
once it listens, appends each publish/state/connect as a JSON line to ``--record``, exits 0 on
SIGTERM)::

    python -m tests.nucleus.standin --socket PATH --svcuid TOKEN --config JSONFILE --record FILE
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.nucleus.codec import Header
from tests.nucleus.server import RpcServer
from tests.nucleus.state import DEFAULT_COMPONENT, NucleusState, Publish

__all__ = ["NucleusStandIn", "Publish", "main", "topic_matches"]

# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL (unix(7)).
MAX_SOCKET_PATH = 107
SOCKET_ENV = "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"


class NucleusStandIn(NucleusState):
    """A stand-in nucleus serving IPC on ``socket_path``; see ``NucleusState`` for recordings."""

    def __init__(
        self,
        socket_path: Path | str,
        svcuid: str,
        configuration: dict[str, dict[str, Any]] | None = None,
        component_name: str = DEFAULT_COMPONENT,
    ) -> None:
        super().__init__(svcuid, configuration, component_name)
        self.socket_path = Path(socket_path)
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH:
            raise ValueError(
                f"socket path is {len(os.fsencode(self.socket_path))} bytes; Unix sockets allow "
                f"{MAX_SOCKET_PATH} (use a short directory such as mkdtemp(dir='/tmp'))"
            )
        self._server = RpcServer(self.socket_path, self)

    def start(self) -> None:
        """Listen on the socket path (replacing a stale socket file) in a background thread."""
        self._server.start()

    def stop(self) -> None:
        """Close every connection, stop listening and remove the socket file. Idempotent."""
        self._server.stop()

    @property
    def running(self) -> bool:
        """Whether the stand-in is listening."""
        return self._server.running

    def __enter__(self) -> NucleusStandIn:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The environment a component gets from the nucleus to reach this IPC server."""
        return {SOCKET_ENV: str(self.socket_path), "SVCUID": self.svcuid}

    def push_configuration_update(self, component: str, key_path: Sequence[str]) -> int:
        """Send a ConfigurationUpdateEvents for ``key_path`` of ``component`` to every open
        subscription it falls under; return how many events were sent."""
        return self._server.call(lambda: self._server.broadcast_update(component, tuple(key_path)))

    def drop_connections(self) -> int:
        """Close every client socket abruptly (no message first); return how many."""
        return self._server.call(self._server.drop_all) if self.running else 0

    def send_ping(self, headers: Sequence[Header] = (), payload: bytes = b"") -> int:
        """Send a PING carrying ``headers`` and ``payload`` to every connected client."""
        return self._server.call(lambda: self._server.ping_all(tuple(headers), payload))


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic-filter matching: ``+`` is one level, a final ``#`` the rest (MQTT 5 §4.7)."""
    levels, parts = topic_filter.split("/"), topic.split("/")
    if topic.startswith("$") and levels[0] in ("+", "#"):
        return False  # wildcards never match $-topics at the first level (MQTT 5 §4.7.2)
    for i, level in enumerate(levels):
        if level == "#":
            return True
        if i >= len(parts) or (level != "+" and level != parts[i]):
            return False
    return len(levels) == len(parts)


def configuration_from_effective_config(path: Path) -> dict[str, dict[str, Any]]:
    """``services.<name>.configuration`` of every service in a nucleus effectiveConfig.yaml."""
    from agent.config.files import load_yaml_file

    document = load_yaml_file(path)
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        raise ValueError(f"{path} has no services mapping")
    return {
        name: service["configuration"]
        for name, service in services.items()
        if isinstance(service, dict) and isinstance(service.get("configuration"), dict)
    }


class _JsonLines:
    """Appends each record as one JSON line, payloads base64-encoded, flushed at once."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process

    def __call__(self, record: dict[str, Any]) -> None:
        line = dict(record)
        if isinstance(line.get("payload"), bytes):
            line["payload"] = base64.b64encode(line["payload"]).decode("ascii")
        self._file.write(json.dumps(line, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.nucleus.standin", description=__doc__)
    parser.add_argument("--socket", required=True, type=Path, help="Unix socket path to serve")
    parser.add_argument("--svcuid", help="accepted auth token (default: $SVCUID)")
    parser.add_argument("--component", default=DEFAULT_COMPONENT, help="identity of the token")
    parser.add_argument("--config", type=Path, help="JSON file {component: configuration}")
    parser.add_argument("--effective-config", type=Path, help="serve a nucleus effectiveConfig")
    parser.add_argument("--record", type=Path, help="append publishes/states as JSON lines")
    parser.add_argument("--deny-topic", action="append", default=[], metavar="FILTER",
                        help="refuse publishes matching this MQTT filter (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    args.svcuid = args.svcuid or os.environ.get("SVCUID")
    if not args.svcuid:
        parser.error("give --svcuid or set SVCUID")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in until SIGTERM or SIGINT; return the exit code."""
    args = _parse_args(argv)
    configuration: dict[str, dict[str, Any]] = {}
    try:
        if args.effective_config:
            configuration.update(configuration_from_effective_config(args.effective_config))
        if args.config:
            configuration.update(json.loads(args.config.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        print(f"cannot load the configuration: {exc}", file=sys.stderr)
        return 2
    nucleus = NucleusStandIn(args.socket, args.svcuid, configuration, args.component)
    if args.deny_topic:
        filters = list(args.deny_topic)
        nucleus.deny_publish(lambda topic: any(topic_matches(f, topic) for f in filters))
    recorder = _JsonLines(args.record) if args.record else None
    if recorder:
        nucleus.add_listener(recorder)
    # Block the signals before the server thread starts (it inherits the mask), then wait for
    # one synchronously: no handler races, no polling loop.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    nucleus.start()
    try:
        print(json.dumps({"event": "ready", "socket": str(args.socket)}), flush=True)
        signal.sigwait(stop_signals)
    finally:
        nucleus.stop()
        if recorder:
            recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
