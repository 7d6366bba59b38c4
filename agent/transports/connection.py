"""One MQTT5 connection over mutual TLS with awscrt, shared by the transport and the probes.

Built with ``awsiot.mqtt5_client_builder``: ``mtls_from_path`` for a key file,
``mtls_with_pkcs11`` for a key on a token. The CRT client reconnects by itself with exponential
backoff and full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"); the callbacks
here only record state and set events, so nothing polls. SDK metrics are off: the username
stays empty instead of carrying ``?SDK=Python&Version=...``.

awscrt is imported inside the functions: only the ``mqtt`` transport pays for it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, TimeoutError
from typing import Any

from agent.errors import AgentError, ProbeError
from agent.log import get_logger
from agent.secrets import scrub
from agent.transports.mqtt_settings import MqttSettings

log = get_logger(__name__)

MIN_RECONNECT_MS = 1_000
MAX_RECONNECT_MS = 60_000
PING_TIMEOUT_MS = 10_000
CONNACK_TIMEOUT_MS = 10_000
ACK_TIMEOUT_S = 15
STOP_WAIT_S = 1.0


class MqttSetupError(AgentError):
    """The client cannot even be built: unreadable certificate/key, PKCS#11 login failed."""


class NotConnected(AgentError):
    """No connection to the broker right now."""


class MqttConnection:
    """A started CRT MQTT5 client and what we know about its connection."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        will_payload: bytes | None = None,
        will_topic: str | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._will = (will_topic, will_payload) if will_topic and will_payload else None
        self._on_connected = on_connected
        self._connected = threading.Event()
        self._attempted = threading.Event()
        self._stopped = threading.Event()
        self._client: Any = None
        self.last_error: str | None = None
        """Why the last connection attempt failed or the connection dropped."""
        self.refused_connect = False
        """The broker answered CONNECT with NOT_AUTHORIZED / BAD_USERNAME_OR_PASSWORD."""
        self.connects = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Build the client and start connecting (returns at once); raises MqttSetupError."""
        if self._client is not None:
            return
        self._client = self._build()
        self._client.start()

    def _build(self) -> Any:
        from awscrt import mqtt5
        from awsiot import mqtt5_client_builder

        s = self.settings
        options: dict[str, Any] = {
            "endpoint": s.endpoint,
            "port": s.port,
            "client_id": s.client_id,
            "ca_filepath": s.ca_path,
            "keep_alive_interval_sec": s.keep_alive_s,
            "ping_timeout_ms": PING_TIMEOUT_MS,
            "connack_timeout_ms": CONNACK_TIMEOUT_MS,
            "ack_timeout_sec": ACK_TIMEOUT_S,
            "retry_jitter_mode": mqtt5.ExponentialBackoffJitterMode.FULL,
            "min_reconnect_delay_ms": MIN_RECONNECT_MS,
            "max_reconnect_delay_ms": MAX_RECONNECT_MS,
            # A QoS 1 publish in flight fails on disconnect; the spool re-sends it in order.
            "offline_queue_behavior": mqtt5.ClientOperationQueueBehaviorType.FAIL_ALL_ON_DISCONNECT,
            "session_behavior": mqtt5.ClientSessionBehaviorType.CLEAN,
            "enable_metrics_collection": False,
            "on_lifecycle_connection_success": self._on_success,
            "on_lifecycle_connection_failure": self._on_failure,
            "on_lifecycle_disconnection": self._on_disconnect,
            "on_lifecycle_stopped": lambda _data: self._stopped.set(),
            "on_publish_received": lambda _data: None,  # probe subscriptions only
        }
        if self._will is not None:
            topic, payload = self._will
            options["will"] = mqtt5.PublishPacket(
                topic=topic,
                payload=payload,
                qos=mqtt5.QoS.AT_LEAST_ONCE,
                content_type="application/json",
            )
        try:
            if s.token is not None:
                from awscrt.io import Pkcs11Lib

                from agent.pkcs11 import preload_library

                preload_library(s.token.library)  # keep certificate.key_match working
                return mqtt5_client_builder.mtls_with_pkcs11(
                    pkcs11_lib=Pkcs11Lib(file=s.token.library),
                    user_pin=s.token.user_pin,
                    slot_id=s.token.slot_id,
                    token_label=s.token.token_label,
                    private_key_label=s.token.key_label,
                    cert_filepath=s.cert_path,
                    **options,
                )
            return mqtt5_client_builder.mtls_from_path(
                cert_filepath=s.cert_path, pri_key_filepath=s.key_path, **options
            )
        except Exception as exc:  # awscrt raises plain exceptions naming the CRT error
            extra = [s.token.user_pin] if s.token and s.token.user_pin else []
            raise MqttSetupError(_setup_message(exc, s, extra)) from None

    def stop(self) -> None:
        """Disconnect cleanly (no will message) and release the client."""
        client, self._client = self._client, None
        if client is None:
            return
        from awscrt import mqtt5

        with contextlib.suppress(Exception):
            client.stop(
                mqtt5.DisconnectPacket(reason_code=mqtt5.DisconnectReasonCode.NORMAL_DISCONNECTION)
            )
            self._stopped.wait(STOP_WAIT_S)
        self._connected.clear()

    # -- state -----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Whether the broker accepted our CONNECT and the connection is up."""
        return self._connected.is_set()

    def wait_first_attempt(self, timeout_s: float) -> bool:
        """Wait until the first connection attempt succeeded or failed; True if connected."""
        self._attempted.wait(timeout_s)
        return self.connected

    def _on_success(self, _data: Any) -> None:
        self.connects += 1
        self.last_error = None
        self.refused_connect = False
        self._connected.set()
        self._attempted.set()
        log.info(
            "mqtt_connected", endpoint=self.settings.address, client_id=self.settings.client_id
        )
        if self._on_connected is not None:
            self._on_connected()

    def _on_failure(self, data: Any) -> None:
        self._connected.clear()
        connack = getattr(data, "connack_packet", None)
        code = getattr(connack, "reason_code", None)
        if code is not None and int(code) >= 0x80:
            self.refused_connect = True
            self.last_error = f"the broker refused CONNECT: {_code_name(code)}"
        else:
            self.refused_connect = False
            self.last_error = _crt_error(getattr(data, "exception", None))
        if not self._attempted.is_set():
            log.warning(
                "mqtt_connect_failed", endpoint=self.settings.address, error=self.last_error
            )
        self._attempted.set()

    def _on_disconnect(self, data: Any) -> None:
        self._connected.clear()
        packet = getattr(data, "disconnect_packet", None)
        code = getattr(packet, "reason_code", None)
        self.last_error = (
            f"the broker disconnected us: {_code_name(code)}"
            if code is not None
            else _crt_error(getattr(data, "exception", None))
        )
        log.warning("mqtt_disconnected", endpoint=self.settings.address, error=self.last_error)

    # -- operations ------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes) -> Future[Any]:
        """Queue a QoS 1 publish; the future resolves to a PublishCompletionData (PUBACK)."""
        from awscrt import mqtt5

        client = self._live_client()
        packet = mqtt5.PublishPacket(
            topic=topic,
            payload=payload,
            qos=mqtt5.QoS.AT_LEAST_ONCE,
            content_type="application/json",
        )
        return client.publish(packet)  # type: ignore[no-any-return]

    def subscribe(self, filters: Sequence[str]) -> Future[Any]:
        """One SUBSCRIBE (QoS 1) for ``filters``; resolves to the SUBACK packet."""
        from awscrt import mqtt5

        client = self._live_client()
        subscriptions = [mqtt5.Subscription(f, mqtt5.QoS.AT_LEAST_ONCE) for f in filters]
        return client.subscribe(mqtt5.SubscribePacket(subscriptions=subscriptions))  # type: ignore[no-any-return]

    def unsubscribe(self, filters: Sequence[str]) -> Future[Any]:
        """One UNSUBSCRIBE for ``filters``."""
        from awscrt import mqtt5

        client = self._live_client()
        return client.unsubscribe(mqtt5.UnsubscribePacket(topic_filters=list(filters)))  # type: ignore[no-any-return]

    def probe_subscribe(self, filters: Sequence[str], timeout_s: float = 5.0) -> list[int]:
        """The SUBACK reason codes of one SUBSCRIBE of ``filters``, one per filter, in order.

        What is granted is unsubscribed again at once (best effort). ProbeError (its reason
        ``not_connected``, ``timeout``, ``error`` or ``bad_suback``) when no usable answer came.
        """
        filters = list(filters)
        try:
            suback = self.subscribe(filters).result(timeout_s)
        except NotConnected as exc:
            raise ProbeError("not_connected", f"cannot probe: {exc}") from exc
        except TimeoutError as exc:
            raise ProbeError("timeout", f"no SUBACK within {timeout_s:.0f} s") from exc
        except Exception as exc:  # the CRT refused it locally or the connection dropped
            raise ProbeError("error", f"SUBSCRIBE failed: {type(exc).__name__}") from exc
        codes = [int(c) for c in getattr(suback, "reason_codes", None) or []]
        if len(codes) != len(filters):
            raise ProbeError("bad_suback", "the SUBACK did not answer every filter")
        granted = [f for f, c in zip(filters, codes, strict=True) if c < 0x80]
        if granted:
            # Best effort: a clean session forgets the subscriptions anyway.
            with contextlib.suppress(Exception):
                self.unsubscribe(granted).result(timeout_s)
        return codes

    def _live_client(self) -> Any:
        client = self._client
        if client is None or not self.connected:
            raise NotConnected(self.describe_disconnected())
        return client

    def describe_disconnected(self) -> str:
        """One line on why we are not connected."""
        reason = self.last_error or "connecting"
        return f"not connected to {self.settings.address} ({reason})"


def _code_name(code: Any) -> str:
    name = getattr(code, "name", None) or "reason"
    return f"{name} (0x{int(code):02x})"


def _crt_error(exc: Any) -> str:
    if exc is None:
        return "connection lost"
    # AwsCrtError carries the CRT's name, e.g. AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE.
    return str(getattr(exc, "name", None) or f"{type(exc).__name__}: {exc}")


def _setup_message(exc: Exception, s: MqttSettings, secrets: list[str]) -> str:
    # awscrt's text names the CRT error, e.g. "1117 (AWS_ERROR_PKCS11_CKR_PIN_INCORRECT): ...";
    # only that part is scrubbed (of the PIN): the URI below is PIN-free by construction.
    detail = scrub(str(exc) or type(exc).__name__, secrets)
    key = (
        f"the PKCS#11 key {s.token.uri.redacted()} (library {s.token.library})"
        if s.token
        else f"the key {s.key_path}"
    )
    return f"cannot set up TLS with certificate {s.cert_path} and {key}: {detail}"
