"""What the nucleus stand-in serves and records, behind one lock that tests can wait on.

The server thread writes (publishes, states, connection counts); test threads read copies and
block in ``wait_for`` on a condition variable that every change notifies — no polling.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from tests.nucleus.codec import Header

DEFAULT_COMPONENT = "gghealth.HealthAgent"

Listener = Callable[[dict[str, Any]], None]


class Publish(NamedTuple):
    """One PublishToIoTCore request: the topic, the QoS as sent ("0" or "1"), the raw payload."""

    topic: str
    qos: str
    payload: bytes


MISSING: Any = object()
"""Returned by ``NucleusState.lookup`` when the component or key path does not exist."""


class NucleusState:
    """Thread-safe configuration and recordings of a stand-in nucleus.

    ``svcuid`` is the only accepted auth token; connections that present it act as the
    component ``component_name`` (the identity a real nucleus attaches to a component's token).
    ``configuration`` maps a component name to its ``configuration`` tree.
    """

    def __init__(
        self,
        svcuid: str,
        configuration: dict[str, dict[str, Any]] | None = None,
        component_name: str = DEFAULT_COMPONENT,
    ) -> None:
        self.svcuid = svcuid
        self.component_name = component_name
        self._cond = threading.Condition(threading.RLock())
        self._configuration = copy.deepcopy(configuration or {})
        self._publishes: list[Publish] = []
        self._denied: list[Publish] = []
        self._states: list[str] = []
        self._connect_headers: list[tuple[Header, ...]] = []
        self._errors: list[str] = []
        self._deny: Callable[[str], bool] | None = None
        self._listeners: list[Listener] = []
        self._counts = {"accepted": 0, "auth_failures": 0, "pings": 0, "open": 0, "subs": 0}

    # -- waiting -------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` is true (re-checked on every change); False on timeout."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def _changed(self, record: dict[str, Any] | None = None) -> None:
        with self._cond:
            self._cond.notify_all()
            listeners = list(self._listeners)
        if record is not None:
            for listener in listeners:
                listener(record)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(record)`` on the server thread for each publish, state and connect."""
        with self._cond:
            self._listeners.append(listener)

    # -- test-facing accessors (copies) --------------------------------------------------------

    @property
    def publishes(self) -> list[Publish]:
        """Accepted publishes, oldest first."""
        with self._cond:
            return list(self._publishes)

    @property
    def denied_publishes(self) -> list[Publish]:
        """Publishes refused with UnauthorizedError by the ``deny_publish`` predicate."""
        with self._cond:
            return list(self._denied)

    @property
    def states(self) -> list[str]:
        """States reported through UpdateState, oldest first."""
        with self._cond:
            return list(self._states)

    @property
    def connect_headers(self) -> list[tuple[Header, ...]]:
        """The non-RPC headers of every CONNECT received, accepted or not."""
        with self._cond:
            return list(self._connect_headers)

    @property
    def server_errors(self) -> list[str]:
        """Unexpected exceptions inside the stand-in (a bug in it, not in the client)."""
        with self._cond:
            return list(self._errors)

    @property
    def connections_accepted(self) -> int:
        """CONNECTs answered with an accepted CONNECT_ACK."""
        return self._count("accepted")

    @property
    def auth_failures(self) -> int:
        """CONNECTs refused because the auth token was missing or wrong."""
        return self._count("auth_failures")

    @property
    def pings_answered(self) -> int:
        """Client pings answered with a ping response."""
        return self._count("pings")

    @property
    def open_connections(self) -> int:
        """Client sockets currently open (authenticated or not)."""
        return self._count("open")

    @property
    def open_subscriptions(self) -> int:
        """SubscribeToConfigurationUpdate streams currently open."""
        return self._count("subs")

    def _count(self, key: str) -> int:
        with self._cond:
            return self._counts[key]

    # -- test-facing controls ------------------------------------------------------------------

    def set_configuration(self, component: str, value: dict[str, Any]) -> None:
        """Replace the configuration served for ``component`` (push an update event separately)."""
        with self._cond:
            self._configuration[component] = copy.deepcopy(value)
            self._cond.notify_all()

    def deny_publish(self, predicate: Callable[[str], bool] | None) -> None:
        """Refuse PublishToIoTCore on topics where ``predicate(topic)`` is true; None allows all."""
        with self._cond:
            self._deny = predicate

    # -- used by the operation handlers (server thread) ----------------------------------------

    def lookup(self, component: str, key_path: Sequence[str]) -> Any:
        """A deep copy of the node at ``key_path`` of ``component``'s configuration, or MISSING."""
        with self._cond:
            if component not in self._configuration:
                return MISSING
            node: Any = self._configuration[component]
            for key in key_path:
                if not isinstance(node, dict) or key not in node:
                    return MISSING
                node = node[key]
            return copy.deepcopy(node)

    def is_denied(self, topic: str) -> bool:
        """Whether the deny predicate refuses ``topic``."""
        with self._cond:
            deny = self._deny
        return bool(deny and deny(topic))

    def record_publish(self, publish: Publish, *, denied: bool = False) -> None:
        """Record an accepted (or denied) publish and notify waiters and listeners."""
        with self._cond:
            (self._denied if denied else self._publishes).append(publish)
        self._changed(
            {
                "event": "denied" if denied else "publish",
                "topic": publish.topic,
                "qos": publish.qos,
                "payload": publish.payload,
            }
        )

    def record_state(self, state: str) -> None:
        """Record an UpdateState."""
        with self._cond:
            self._states.append(state)
        self._changed({"event": "state", "state": state})

    def record_connect(self, headers: tuple[Header, ...], accepted: bool) -> None:
        """Record a CONNECT and whether its token was accepted (never the token itself)."""
        with self._cond:
            self._connect_headers.append(headers)
            self._counts["accepted" if accepted else "auth_failures"] += 1
        self._changed({"event": "connect", "accepted": accepted})

    def record_error(self, text: str) -> None:
        """Record an unexpected exception of the stand-in itself."""
        with self._cond:
            self._errors.append(text)
        self._changed()

    def adjust(self, key: str, delta: int) -> None:
        """Move one of the counters ("pings", "open", "subs") and notify waiters."""
        with self._cond:
            self._counts[key] += delta
        self._changed()
