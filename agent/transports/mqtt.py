"""The direct MQTT5 transport: QoS 1 to the health topic over mutual TLS, nothing lost.

Every report is written to the durable spool first (one transaction per report), then the spool
is drained in order: an entry leaves it only after its PUBACK. So a report survives a broker
outage, a ``kill -9`` of the agent and a reboot, and is delivered at least once, in order, when
the connection returns; a reconnect triggers a drain at once instead of waiting for the next
cycle. Within one process an entry is re-sent only after its earlier attempt failed.

PUBACK reason codes (MQTT 5.0 section 3.4.2.1): 0x00 and 0x10 (no matching subscribers) are
delivered; 0x87 NOT_AUTHORIZED is a policy defect (CRITICAL, kept spooled until the policy is
fixed); 0x95 packet too large and 0x99 payload format invalid can never succeed, so that entry
is discarded and counted; anything else is retried later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, TimeoutError
from typing import Any

from agent.config.models import AgentConfig
from agent.greengrass.root import GreengrassRoot
from agent.log import get_logger
from agent.report import PUBACK_DELIVERED, HealthReport, PublishOutcome
from agent.transports.connection import MqttConnection, MqttSetupError, NotConnected
from agent.transports.mqtt_settings import MqttSettings, resolve
from agent.transports.outcomes import Drain, Outcomes
from agent.transports.sizing import payloads
from agent.transports.spool import Spool, SpoolError, drain, spool_file
from agent.transports.will import will_payload

log = get_logger(__name__)

CONNECT_WAIT_S = 3.0
"""How long the first publish waits for the first connection attempt."""
DRAIN_BUDGET_S = 10.0
"""How long one publish may spend delivering spooled reports (the rest goes next time)."""
BATCH = 16
POISON_CODES = {0x95, 0x99}


class MqttPublisher:
    """Publishes reports to ``topic`` through the spool; see the module docstring."""

    name = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        topic: str,
        spool: Spool,
        *,
        thing_name: str,
        connect_wait_s: float = CONNECT_WAIT_S,
        drain_budget_s: float = DRAIN_BUDGET_S,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.spool = spool
        self.connect_wait_s = connect_wait_s
        self.drain_budget_s = drain_budget_s
        self.connection = MqttConnection(
            settings,
            will_topic=topic,
            will_payload=will_payload(thing_name, settings.client_id, settings.address),
            on_connected=self._kick_drain,
        )
        self.outcomes = Outcomes(self.name, topic, settings, spool, self.connection)
        self.last_health_puback: int | None = None
        """Reason code of the last PUBACK on the health topic (for ``subscription.probe``)."""
        self._setup_error: str | None = None
        self._sticky_setup_error = False
        self._started = False
        self._inflight: dict[int, Future[Any]] = {}
        self._drain_lock = threading.Lock()
        self._kick = threading.Event()
        self._closing = threading.Event()
        self._drainer: threading.Thread | None = None

    @classmethod
    def from_config(
        cls, config: AgentConfig, greengrass: GreengrassRoot, thing_name: str, topic: str
    ) -> MqttPublisher:
        """The publisher for ``transport: mqtt``; ConfigError when settings are missing."""
        settings = resolve(config, greengrass, thing_name)
        spool = Spool(spool_file(config.spool.path), config.spool.max_bytes)
        return cls(settings, topic, spool, thing_name=thing_name)

    # -- Publisher -------------------------------------------------------------------------
    def publish(self, report: HealthReport) -> PublishOutcome:
        """Spool the report, then deliver everything spooled, oldest first."""
        parts = payloads(report)
        spool_error: SpoolError | None = None
        try:
            self.spool.put_many(parts)
        except SpoolError as exc:
            spool_error = exc
            log.error("spool_write_failed", reason=exc.reason, error=str(exc))
        if not self._start():
            return self.outcomes.not_sent(spool_error, self._setup_error or "", setup=True)
        drain = self._drain(time.monotonic() + self.drain_budget_s)
        direct = 0
        # Without a spool: not durable, but better than nothing (under the drain lock, so it
        # stays behind whatever the drain was still sending).
        if (
            spool_error is not None
            and drain.state in ("done", "error")
            and self._drain_lock.acquire(timeout=self.drain_budget_s)
        ):
            try:
                direct = self._send_directly(parts)
            finally:
                self._drain_lock.release()
        return self.outcomes.after_drain(drain, spool_error, len(parts), direct)

    def close(self) -> None:
        """Disconnect cleanly (so the broker drops the will) and close the spool."""
        self._closing.set()
        self._kick.set()
        self.connection.stop()
        if self._drainer is not None:
            self._drainer.join(0.5)
        self.spool.close()

    # -- ProbeSource (``subscription.probe``) -----------------------------------------------
    @property
    def has_connected(self) -> bool:
        """Whether the connection has succeeded at least once."""
        return self.connection.connects > 0

    def probe_subscribe(self, filters: Sequence[str], timeout_s: float = 5.0) -> list[int]:
        """SUBACK reason codes for ``filters`` over this transport's own connection."""
        return self.connection.probe_subscribe(filters, timeout_s)

    # -- connection ------------------------------------------------------------------------
    def _start(self) -> bool:
        if self._started:
            return True
        if self._sticky_setup_error:
            return False
        try:
            self.connection.start()
        except MqttSetupError as exc:
            self._setup_error = str(exc)
            # Retrying a wrong PIN every cycle would lock the token: wait for a new configuration.
            self._sticky_setup_error = "CKR_PIN_" in str(exc)
            log.error("mqtt_setup_failed", error=str(exc))
            return False
        self._started = True
        self._drainer = threading.Thread(target=self._drain_loop, name="gghealth-mqtt-drain")
        self._drainer.daemon = True
        self._drainer.start()
        self.connection.wait_first_attempt(self.connect_wait_s)
        return True

    def _kick_drain(self) -> None:
        self._kick.set()  # runs on a CRT thread: only set a flag

    def _drain_loop(self) -> None:
        while True:
            self._kick.wait()
            self._kick.clear()
            if self._closing.is_set():
                return
            try:
                while self._drain(time.monotonic() + self.drain_budget_s).state == "budget":
                    if self._closing.is_set():
                        return
            except Exception as exc:  # the loop must survive anything a drain meets
                log.error("spool_drain_failed", error=str(exc))

    # -- delivery --------------------------------------------------------------------------
    def _drain(self, deadline: float) -> Drain:
        if not self._drain_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return Drain("timeout", error="another drain is still delivering the spool")
        try:
            result = Drain()
            try:
                ended = drain(
                    self.spool,
                    lambda batch: self._send_batch(batch, deadline, result),
                    batch=BATCH,
                    deadline=deadline,
                )
            except SpoolError as exc:
                return Drain("error", result.delivered, error=str(exc))
            if ended == "budget":
                result.state = "budget"
            return result
        finally:
            self._drain_lock.release()

    def _send_batch(self, batch: list[Any], deadline: float, result: Drain) -> bool:
        """Send (pipelined, in order) and settle one batch; False when the drain must stop."""
        sent: list[tuple[int, Future[Any]]] = []
        for entry in batch:
            future = self._inflight.get(entry.id)
            if future is None:
                try:
                    future = self.connection.publish(self.topic, entry.payload)
                except NotConnected as exc:
                    result.state, result.error = "not_connected", str(exc)
                    break
                except Exception as exc:  # client-side validation (size, topic)
                    result.state, result.error = "error", f"{type(exc).__name__}: {exc}"
                    break
                self._inflight[entry.id] = future
            sent.append((entry.id, future))
        delivered: list[int] = []
        discard: list[int] = []
        try:
            for entry_id, future in sent:
                try:
                    completion = future.result(timeout=max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    result.state, result.error = "timeout", "no PUBACK yet"
                    return False
                except Exception as exc:  # the connection dropped: re-send after reconnecting
                    self._inflight.pop(entry_id, None)
                    result.state, result.error = "not_connected", _describe(exc)
                    return False
                self._inflight.pop(entry_id, None)
                code = _puback_code(completion)
                self.last_health_puback = code
                if code in PUBACK_DELIVERED:
                    delivered.append(entry_id)
                elif code in POISON_CODES:
                    log.error("report_rejected_by_broker", code=f"0x{code:02x}")
                    discard.append(entry_id)
                else:
                    result.state, result.code = "refused", code
                    return False
        finally:
            self._settle(delivered, discard, result)
        return result.state == "done"

    def _settle(self, delivered: list[int], discard: list[int], result: Drain) -> None:
        try:
            self.spool.ack(delivered)
            self.spool.discard(discard)
        except SpoolError as exc:
            # Delivered but not forgotten: at-least-once means they may go out again later.
            result.state, result.error = "error", str(exc)
        result.delivered += len(delivered)
        result.discarded += len(discard)

    def _send_directly(self, parts: list[bytes]) -> int:
        """Without a working spool: publish this report's payloads and wait for each PUBACK."""
        sent = 0
        for part in parts:
            try:
                completion = self.connection.publish(self.topic, part).result(self.drain_budget_s)
            except Exception:
                return sent
            code = _puback_code(completion)
            self.last_health_puback = code
            if code not in PUBACK_DELIVERED:
                return sent
            sent += 1
        return sent


def _puback_code(completion: Any) -> int:
    puback = getattr(completion, "puback", None)
    code = getattr(puback, "reason_code", 0)
    return int(code)


def _describe(exc: BaseException) -> str:
    return str(getattr(exc, "name", None) or type(exc).__name__)
