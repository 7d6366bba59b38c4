"""``gg-health-agent run``: the long-running agent.

A worker thread runs the cycles (check, then publish); the main thread only waits for SIGTERM or
SIGINT, then gives the cycle in flight a few seconds to finish its publish and exits 0 — the
nucleus stops components with SIGTERM and kills them 5 s later
(https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

from agent.checks.base import Kept, ProbeSource
from agent.config.models import AgentConfig, Transport
from agent.errors import AgentError, ConfigError
from agent.greengrass.ipc import IpcSession, running_under_greengrass
from agent.greengrass.root import GreengrassRoot
from agent.log import get_logger
from agent.report import Delivery, PublishOutcome
from agent.runner import Settings, check_once
from agent.scheduler import run_every
from agent.transports.base import Publisher

if TYPE_CHECKING:
    from agent.fleet.shadow import ShadowReporter

log = get_logger(__name__)

SHUTDOWN_GRACE_S = 4.5

Reload = Callable[[Mapping[str, Any] | None], Settings]


def make_publisher(
    config: AgentConfig,
    thing_name: str,
    session: IpcSession | None,
    greengrass: GreengrassRoot,
) -> Publisher:
    """The transport ``config.transport`` names; ConfigError when it cannot work here."""
    topic = config.health_topic_for(thing_name)
    if config.transport is Transport.STDOUT:
        from agent.transports.stdout import StdoutPublisher

        return StdoutPublisher()
    if config.transport is Transport.FILE:
        from agent.transports.file import FilePublisher

        return FilePublisher(config.file.path, config.file.history_max_bytes)
    if config.transport is Transport.MQTT:
        from agent.transports.mqtt import MqttPublisher

        return MqttPublisher.from_config(config, greengrass, thing_name, topic)
    if session is None:
        raise ConfigError(
            "transport 'ipc' needs the Greengrass nucleus (the SVCUID and "
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT variables it gives a "
            "component); outside Greengrass use --transport stdout, file or mqtt"
        )
    from agent.safe_write import config_problem
    from agent.transports.ipc import IpcPublisher
    from agent.transports.spool import Spool, spool_file
    from agent.transports.spooling import SpoolingPublisher

    # What the nucleus cannot take while it restarts waits on disk, delivered in order later.
    spool_path = spool_file(config.spool.path)
    problem = config_problem(spool_path, "spool.path")
    if problem is not None:
        raise problem
    spool = Spool(spool_path, config.spool.max_bytes)
    return SpoolingPublisher(IpcPublisher(session, topic, config.component_name), spool)


def make_shadow(
    settings: Settings, thing_name: str, session: IpcSession | None, publisher: Publisher
) -> ShadowReporter | None:
    """The ``gghealth`` named-shadow reporter (``shadow.enabled``) on the report's transport."""
    shadow = settings.config.shadow
    if not shadow.enabled:
        return None
    from agent.fleet.shadow import Publish, ShadowReporter, ipc_publish, mqtt_publish

    publish: Publish | None = None
    if settings.config.transport is Transport.IPC and session is not None:
        publish = ipc_publish(session, settings.config.component_name)
    elif settings.config.transport is Transport.MQTT:
        from agent.transports.mqtt import MqttPublisher

        if isinstance(publisher, MqttPublisher):
            # Its connection, not its spool: the shadow is state, the next cycle replaces it.
            publish = mqtt_publish(publisher.connection)
    if publish is None:
        log.warning(
            "shadow_not_available",
            transport=settings.config.transport.value,
            reason="the shadow summary goes to AWS IoT: use the ipc or mqtt transport",
        )
        return None
    return ShadowReporter(
        thing_name,
        publish,
        device_cert=settings.greengrass.path("certificateFilePath"),
        shadow_name=shadow.name,
        republish_seconds=shadow.republish_seconds,
    )


class Agent:
    """The state that outlives a cycle: settings, transport, caches, sequence number."""

    def __init__(
        self,
        settings: Settings,
        only: Iterable[str] | None,
        reload: Reload,
        session: IpcSession | None,
        config_dirty: threading.Event,
    ) -> None:
        self.settings = settings
        self.only = tuple(only) if only else None
        self.reload = reload
        self.session = session
        self.kept = Kept()
        self.last_publish: PublishOutcome | None = None
        self.sequence = 0
        self.config_dirty = config_dirty
        self.publisher, self.shadow = self._transports(settings)

    def _transports(self, settings: Settings) -> tuple[Publisher, ShadowReporter | None]:
        thing = settings.greengrass.reported_thing_name(os.environ)
        publisher = make_publisher(settings.config, thing, self.session, settings.greengrass)
        return publisher, make_shadow(settings, thing, self.session, publisher)

    def apply_configuration_update(self) -> None:
        """Re-read the configuration; a bad update is logged and the last good one kept."""
        self.config_dirty.clear()
        try:
            ipc_config = self.session.get_configuration() if self.session else None
            settings = self.reload(ipc_config)
            publisher, shadow = self._transports(settings)
        except AgentError as exc:
            log.error(
                "configuration_update_rejected",
                error=str(exc),
                keeping="the last good configuration",
            )
            return
        old, self.settings, self.publisher, self.shadow = (
            self.publisher,
            settings,
            publisher,
            shadow,
        )
        old.close()
        log.info(
            "configuration_updated",
            interval_s=settings.config.interval_seconds,
            transport=settings.config.transport.value,
        )

    def safe_cycle(self) -> None:
        """One cycle for the scheduler: a bug in a cycle is logged, and the next cycle still runs
        (checks already turn their own exceptions into results; this guards the glue)."""
        try:
            self.cycle()
        except Exception as exc:
            log.error("cycle_failed", error=f"{type(exc).__name__}: {exc}")

    def cycle(self) -> PublishOutcome:
        """Check, publish, remember how the publish went for the next report."""
        if self.config_dirty.is_set():
            self.apply_configuration_update()
        self.sequence += 1
        report = check_once(
            self.settings,
            self.only,
            kept=self.kept,
            sequence=self.sequence,
            last_publish=self.last_publish,
            # The subscription probes reuse the MQTT transport's connection.
            probe_source=self.publisher if isinstance(self.publisher, ProbeSource) else None,
        )
        outcome = self.last_publish = self.publisher.publish(report)
        if self.shadow is not None:
            self.shadow.maybe_publish(report)  # only when the summary changed, or daily
        log.info(
            "cycle_done",
            sequence=self.sequence,
            status=report.status.value,
            delivery=outcome.delivery.value,
            duration_ms=report.duration_ms,
        )
        return outcome

    def close(self) -> None:
        """Release the transport and the nucleus connection."""
        self.publisher.close()
        if self.session is not None:
            self.session.close()


def run_service(
    settings: Settings, only: Iterable[str] | None, *, once: bool, reload: Reload
) -> bool:
    """Run until SIGTERM/SIGINT (or one cycle with ``once``).

    Returns whether the agent ends with its reports delivered: False only when the one report of
    ``once`` could not be delivered (not even into the spool); the CLI makes that an exit code.
    """
    # Set from the IPC stream thread; read by the cycle thread before its next cycle.
    config_dirty = threading.Event()
    session = (
        IpcSession(on_configuration_update=config_dirty.set)
        if running_under_greengrass(os.environ)
        else None
    )
    if session is not None:
        try:
            settings = reload(session.get_configuration())
        except AgentError as exc:
            log.warning(
                "ipc_configuration_unavailable",
                error=str(exc),
                using="the configuration in effectiveConfig.yaml",
            )
    agent = Agent(settings, only, reload, session, config_dirty)
    try:
        if once:
            return agent.cycle().delivery is not Delivery.FAILED
        _run_until_signalled(agent)
        return True
    finally:
        agent.close()


def _run_until_signalled(agent: Agent) -> None:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = threading.Thread(
        target=run_every,
        args=(agent.safe_cycle, lambda: float(agent.settings.config.interval_seconds), stop),
        name="gghealth-cycles",
        daemon=True,  # a cycle stuck past the grace period must not keep the process alive
    )
    worker.start()
    stop.wait()  # no polling: the signal handler wakes us
    worker.join(SHUTDOWN_GRACE_S)
