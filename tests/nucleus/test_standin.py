"""The nucleus stand-in driven by the real awsiotsdk IPC client (GreengrassCoreIPCClientV2)."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import awsiot.greengrasscoreipc
import pytest
from awscrt.eventstream import Header as CrtHeader
from awscrt.exceptions import AwsCrtError
from awscrt.io import (
    ClientBootstrap,
    DefaultHostResolver,
    EventLoopGroup,
    SocketDomain,
    SocketOptions,
)
from awsiot.eventstreamrpc import (
    Connection,
    ConnectionClosedError,
    LifecycleHandler,
    MessageAmendment,
    StreamClosedError,
)
from awsiot.greengrasscoreipc import model
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from tests.nucleus.codec import Header, HeaderType
from tests.nucleus.fixtures import AGENT_CONFIGURATION
from tests.nucleus.standin import (
    SOCKET_ENV,
    NucleusStandIn,
    Publish,
    configuration_from_effective_config,
    topic_matches,
)
from tests.nucleus.state import DEFAULT_COMPONENT

pytestmark = pytest.mark.peer

Connect = Callable[..., GreengrassCoreIPCClientV2]

# One header of every type, as the stand-in's codec spells them and as awscrt's does.
HEADER_UUID = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
OURS = (
    Header("t", HeaderType.BOOL_TRUE, True),
    Header("f", HeaderType.BOOL_FALSE, False),
    Header("i8", HeaderType.BYTE, -7),
    Header("i16", HeaderType.INT16, -30000),
    Header("i32", HeaderType.INT32, 2_000_000_000),
    Header("i64", HeaderType.INT64, -(2**62)),
    Header("buf", HeaderType.BYTES, b"\x00\xffbin"),
    Header("str", HeaderType.STRING, "grüße"),
    Header("ts", HeaderType.TIMESTAMP, 1_700_000_000_123),
    Header("id", HeaderType.UUID, HEADER_UUID),
)
THEIRS = [
    CrtHeader.from_bool("t", True),
    CrtHeader.from_bool("f", False),
    CrtHeader.from_byte("i8", -7),
    CrtHeader.from_int16("i16", -30000),
    CrtHeader.from_int32("i32", 2_000_000_000),
    CrtHeader.from_int64("i64", -(2**62)),
    CrtHeader.from_byte_buf("buf", b"\x00\xffbin"),
    CrtHeader.from_string("str", "grüße"),
    CrtHeader.from_timestamp("ts", 1_700_000_000_123),
    CrtHeader.from_uuid("id", HEADER_UUID),
]


class _Lifecycle(LifecycleHandler):  # type: ignore[misc]
    """Records disconnects and pings the client sees."""

    def __init__(self) -> None:
        self.disconnected = threading.Event()
        self.pings: queue.Queue[tuple[list[Any], bytes]] = queue.Queue()

    def on_disconnect(self, reason: Exception | None) -> None:
        self.disconnected.set()

    def on_ping(self, headers: list[Any], payload: bytes) -> None:
        self.pings.put((list(headers), bytes(payload)))


def test_client_connects_through_the_component_environment(
    nucleus: NucleusStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in nucleus.env().items():
        monkeypatch.setenv(name, value)
    client = GreengrassCoreIPCClientV2()  # reads SOCKET_ENV and SVCUID, as in a component
    try:
        client.update_state(state="RUNNING")
    finally:
        client.close()
    assert nucleus.connections_accepted == 1
    assert nucleus.auth_failures == 0
    version = [h for h in nucleus.connect_headers[0] if h.name == ":version"]
    assert version == [Header.string(":version", "0.1.0")]
    assert SOCKET_ENV in nucleus.env()


def test_wrong_token_is_refused_and_the_connection_closed(
    nucleus: NucleusStandIn, ipc_connect: Connect
) -> None:
    # The awsiotsdk client reports a refused CONNECT_ACK as the socket closing, as it does
    # against a real nucleus (whose C server also hangs up after the refusal).
    with pytest.raises((AwsCrtError, awsiot.eventstreamrpc.AccessDeniedError)):
        ipc_connect(authtoken="not-the-" + nucleus.svcuid)
    assert nucleus.auth_failures == 1
    assert nucleus.connections_accepted == 0
    assert nucleus.wait_for(lambda: nucleus.open_connections == 0)


def test_publish_is_recorded_with_the_exact_payload(
    nucleus: NucleusStandIn, ipc_connect: Connect
) -> None:
    payload = bytes(range(256)) * 3
    client = ipc_connect()
    client.publish_to_iot_core(topic_name="dt/gghealth/core-1/health", qos="1", payload=payload)
    client.publish_to_iot_core(topic_name="dt/other", qos="0", payload="text")
    assert nucleus.publishes == [
        Publish("dt/gghealth/core-1/health", "1", payload),
        Publish("dt/other", "0", b"text"),
    ]


def test_invalid_publish_arguments_are_refused(
    nucleus: NucleusStandIn, ipc_connect: Connect
) -> None:
    client = ipc_connect()
    with pytest.raises(model.InvalidArgumentsError) as refused:
        client.publish_to_iot_core(topic_name="dt/x", qos="2", payload=b"x")
    assert "qos" in refused.value.message
    with pytest.raises(model.InvalidArgumentsError) as refused:
        client.publish_to_iot_core(qos="0", payload=b"x")
    assert refused.value.message == "topicName is required"
    assert nucleus.publishes == []


def test_denied_topic_raises_unauthorized_error(
    nucleus: NucleusStandIn, ipc_connect: Connect
) -> None:
    nucleus.deny_publish(lambda topic: topic_matches("dt/gghealth/+/health", topic))
    client = ipc_connect()
    with pytest.raises(model.UnauthorizedError) as refused:
        client.publish_to_iot_core(topic_name="dt/gghealth/core-1/health", qos="1", payload=b"{}")
    assert refused.value.message == (
        f"Principal {DEFAULT_COMPONENT} is not authorized to perform aws.greengrass.ipc.mqttproxy:"
        "aws.greengrass#PublishToIoTCore on resource dt/gghealth/core-1/health"
    )
    assert nucleus.denied_publishes == [Publish("dt/gghealth/core-1/health", "1", b"{}")]
    # The refusal ends only that stream: the same connection still publishes elsewhere.
    client.publish_to_iot_core(topic_name="dt/gghealth/core-1/other", qos="0", payload=b"ok")
    assert nucleus.publishes == [Publish("dt/gghealth/core-1/other", "0", b"ok")]


def test_get_configuration_honours_component_and_key_path(
    nucleus: NucleusStandIn, ipc_connect: Connect
) -> None:
    nucleus.set_configuration("other.Component", {"a": {"b": [1, 2]}})
    client = ipc_connect()
    whole = client.get_configuration()
    assert (whole.component_name, whole.value) == (DEFAULT_COMPONENT, AGENT_CONFIGURATION)
    assert client.get_configuration(key_path=["certificates"]).value == {
        "warnDays": 30,
        "criticalDays": 7,
    }
    # A leaf comes back as {leafName: value}, as the Java nucleus answers.
    assert client.get_configuration(key_path=["certificates", "warnDays"]).value == {"warnDays": 30}
    other = client.get_configuration(component_name="other.Component", key_path=["a", "b"])
    assert (other.component_name, other.value) == ("other.Component", {"b": [1, 2]})


@pytest.mark.parametrize(
    ("component", "key_path"),
    [
        (None, ["noSuchKey"]),
        (None, ["intervalSeconds", "deeper"]),
        ("no.such.Component", None),
    ],
)
def test_missing_configuration_raises_resource_not_found(
    ipc_connect: Connect, component: str | None, key_path: list[str] | None
) -> None:
    client = ipc_connect()
    with pytest.raises(model.ResourceNotFoundError) as missing:
        client.get_configuration(component_name=component, key_path=key_path)
    assert missing.value.message == "Key not found"


def test_configuration_from_a_real_effective_config(
    nucleus: NucleusStandIn, ipc_connect: Connect, shared_fixtures: Path
) -> None:
    served = configuration_from_effective_config(
        shared_fixtures / "effective-config" / "nucleus-integ-mqttproxy-accesscontrol.yaml"
    )
    assert set(served) == {"ServiceName"}  # "main" has no configuration block
    nucleus.set_configuration("ServiceName", served["ServiceName"])
    client = ipc_connect()
    resources = client.get_configuration(
        component_name="ServiceName",
        key_path=["accessControl", "aws.greengrass.ipc.mqttproxy", "policyId1", "resources"],
    )
    assert resources.value == {"resources": ["A/+/C/D*", "X/Y*Z/#"]}
    with pytest.raises(model.ResourceNotFoundError):
        client.get_configuration(component_name="main")


def test_configuration_update_reaches_the_subscriber(
    nucleus: NucleusStandIn, ipc_connect: Connect
) -> None:
    events: queue.Queue[model.ConfigurationUpdateEvents] = queue.Queue()
    client = ipc_connect()
    _, operation = client.subscribe_to_configuration_update(
        key_path=["certificates"], on_stream_event=events.put
    )
    assert nucleus.open_subscriptions == 1
    nucleus.set_configuration(
        DEFAULT_COMPONENT, {**AGENT_CONFIGURATION, "certificates": {"warnDays": 45}}
    )
    assert nucleus.push_configuration_update(DEFAULT_COMPONENT, ["intervalSeconds"]) == 0
    assert nucleus.push_configuration_update("other.Component", ["certificates"]) == 0
    assert nucleus.push_configuration_update(DEFAULT_COMPONENT, ["certificates", "warnDays"]) == 1
    update = events.get(timeout=5).configuration_update_event
    assert (update.component_name, update.key_path) == (
        DEFAULT_COMPONENT,
        ["certificates", "warnDays"],
    )
    assert client.get_configuration(key_path=update.key_path).value == {"warnDays": 45}
    operation.close().result(5)
    assert nucleus.wait_for(lambda: nucleus.open_subscriptions == 0)
    assert nucleus.push_configuration_update(DEFAULT_COMPONENT, ["certificates"]) == 0


def test_subscribing_to_a_missing_key_is_refused(
    nucleus: NucleusStandIn, ipc_connect: Connect
) -> None:
    client = ipc_connect()
    with pytest.raises(model.ResourceNotFoundError):
        client.subscribe_to_configuration_update(key_path=["noSuchKey"], on_stream_event=print)
    assert nucleus.open_subscriptions == 0


def test_update_state_is_recorded_and_validated(
    nucleus: NucleusStandIn, ipc_connect: Connect
) -> None:
    client = ipc_connect()
    client.update_state(state=model.ReportedLifecycleState.RUNNING)
    client.update_state(state=model.ReportedLifecycleState.ERRORED)
    with pytest.raises(model.InvalidArgumentsError):
        client.update_state(state="BROKEN")
    assert nucleus.states == ["RUNNING", "ERRORED"]


def test_unimplemented_operation_raises_service_error(ipc_connect: Connect) -> None:
    client = ipc_connect()
    with pytest.raises(model.ServiceError) as failed:
        client.list_components()
    assert "aws.greengrass#ListComponents" in failed.value.message


def test_dropped_connection_fails_the_next_call_and_a_restart_accepts_clients(
    nucleus: NucleusStandIn, ipc_connect: Connect
) -> None:
    lifecycle = _Lifecycle()
    client = ipc_connect(lifecycle_handler=lifecycle)
    client.update_state(state="RUNNING")
    assert nucleus.drop_connections() == 1
    assert lifecycle.disconnected.wait(5)
    with pytest.raises((ConnectionClosedError, StreamClosedError, AwsCrtError)):
        client.publish_to_iot_core_async(topic_name="t", qos="0", payload=b"x").result(5)

    nucleus.stop()
    assert not nucleus.socket_path.exists()
    # awscrt refuses a missing socket file synchronously (RuntimeError FILE_INVALID_PATH).
    with pytest.raises((AwsCrtError, RuntimeError)):
        ipc_connect()
    nucleus.start()
    ipc_connect().publish_to_iot_core(topic_name="t", qos="0", payload=b"again")
    assert nucleus.publishes == [Publish("t", "0", b"again")]
    assert nucleus.connections_accepted == 2


def test_every_header_type_crosses_to_and_from_the_crt_codec(
    nucleus: NucleusStandIn, ipc_connect: Connect
) -> None:
    # Client -> stand-in: awscrt's C encoder writes the CONNECT, our decoder reads it.
    elg = EventLoopGroup(1)
    options = SocketOptions()
    options.domain = SocketDomain.Local
    token = f'{{"authToken": "{nucleus.svcuid}"}}'.encode()
    connection = Connection(
        host_name=str(nucleus.socket_path),
        port=0,
        bootstrap=ClientBootstrap(elg, DefaultHostResolver(elg)),
        socket_options=options,
        connect_message_amender=lambda: MessageAmendment(headers=THEIRS, payload=token),
    )
    connection.connect(LifecycleHandler()).result(5)
    connection.close().result(5)
    received = tuple(h for h in nucleus.connect_headers[0] if not h.name.startswith(":"))
    assert received == OURS

    # Stand-in -> client: our encoder writes a PING, awscrt's decoder hands it to on_ping.
    lifecycle = _Lifecycle()
    ipc_connect(lifecycle_handler=lifecycle)
    assert nucleus.send_ping(OURS, b"ping-payload") == 1
    headers, payload = lifecycle.pings.get(timeout=5)
    seen = [(h.name, int(h.type), h.value) for h in headers if not h.name.startswith(":")]
    assert seen == [(h.name, int(h.type), h.value) for h in OURS]
    assert payload == b"ping-payload"


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("dt/+/health", "dt/core/health", True),
        ("dt/+/health", "dt/core/x/health", False),
        ("dt/#", "dt", True),
        ("dt/#", "dt/a/b", True),
        ("#", "$aws/things/x", False),
        ("dt/a", "dt/a/b", False),
    ],
)
def test_topic_matches_follows_mqtt_filters(topic_filter: str, topic: str, matches: bool) -> None:
    assert topic_matches(topic_filter, topic) is matches


def test_a_socket_path_too_long_for_unix_sockets_is_refused() -> None:
    with pytest.raises(ValueError, match="Unix sockets allow 107"):
        NucleusStandIn(Path("/tmp") / ("d" * 120) / "ipc.sock", "token")
