"""The Greengrass IPC operations the stand-in implements, as JSON request -> reply functions.

Shapes and error models follow the awsiotsdk model classes (awsiot/greengrasscoreipc/model.py);
behaviour follows the Java nucleus where it matters to a client: GetConfiguration of a leaf
answers ``{leafName: value}``, and a missing component or key answers ResourceNotFoundError
"Key not found" (ConfigStoreIPCEventStreamAgent); a refused publish answers UnauthorizedError
with the nucleus's "Principal ... is not authorized ..." text (MqttProxyIPCAgent).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.nucleus.state import MISSING, NucleusState, Publish

NS = "aws.greengrass#"
PUBLISH_TO_IOT_CORE = NS + "PublishToIoTCore"
GET_CONFIGURATION = NS + "GetConfiguration"
SUBSCRIBE_TO_CONFIGURATION_UPDATE = NS + "SubscribeToConfigurationUpdate"
UPDATE_STATE = NS + "UpdateState"
CONFIGURATION_UPDATE_EVENTS = NS + "ConfigurationUpdateEvents"
UNAUTHORIZED = NS + "UnauthorizedError"
RESOURCE_NOT_FOUND = NS + "ResourceNotFoundError"
INVALID_ARGUMENTS = NS + "InvalidArgumentsError"
SERVICE_ERROR = NS + "ServiceError"
KEY_NOT_FOUND = "Key not found"
# https://docs.aws.amazon.com/greengrass/v2/developerguide/ipc-component-lifecycle.html#ipc-operation-updatestate
LIFECYCLE_STATES = ("RUNNING", "ERRORED")


@dataclass(frozen=True)
class Subscription:
    """An open SubscribeToConfigurationUpdate: whose configuration, and under which key path."""

    component: str
    key_path: tuple[str, ...]

    def covers(self, component: str, key_path: tuple[str, ...]) -> bool:
        """Whether a change at ``key_path`` is inside (or replaces) the subscribed subtree."""
        if component != self.component:
            return False
        shorter = min(len(key_path), len(self.key_path))
        return key_path[:shorter] == self.key_path[:shorter]


@dataclass(frozen=True)
class Reply:
    """The first response on a stream: a model name and JSON body, error or not."""

    model: str
    body: dict[str, Any] = field(default_factory=dict)
    error: bool = False
    subscription: Subscription | None = None  # set: the stream stays open for events


class _Refused(Exception):
    def __init__(self, model: str, message: str) -> None:
        super().__init__(message)
        self.reply = Reply(model, {"message": message}, error=True)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise _Refused(INVALID_ARGUMENTS, f"{what} must be a list of strings")
    return tuple(value)


def _publish(state: NucleusState, caller: str, req: dict[str, Any]) -> Reply:
    topic = req.get("topicName")
    if not isinstance(topic, str) or not topic:
        raise _Refused(INVALID_ARGUMENTS, "topicName is required")
    qos = req.get("qos")
    if qos not in ("0", "1"):
        raise _Refused(INVALID_ARGUMENTS, f"qos must be '0' or '1', got {qos!r}")
    try:
        payload = base64.b64decode(req.get("payload") or "", validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise _Refused(INVALID_ARGUMENTS, "payload is not valid base64") from None
    publish = Publish(topic, qos, payload)
    if state.is_denied(topic):
        state.record_publish(publish, denied=True)
        raise _Refused(
            UNAUTHORIZED,
            f"Principal {caller} is not authorized to perform "
            f"aws.greengrass.ipc.mqttproxy:{PUBLISH_TO_IOT_CORE} on resource {topic}",
        )
    state.record_publish(publish)
    return Reply(PUBLISH_TO_IOT_CORE + "Response")


def _target(caller: str, req: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    component = req.get("componentName")
    if component is not None and not isinstance(component, str):
        raise _Refused(INVALID_ARGUMENTS, "componentName must be a string")
    return component or caller, _strings(req.get("keyPath"), "keyPath")


def _get_configuration(state: NucleusState, caller: str, req: dict[str, Any]) -> Reply:
    component, key_path = _target(caller, req)
    node = state.lookup(component, key_path)
    if node is MISSING:
        raise _Refused(RESOURCE_NOT_FOUND, KEY_NOT_FOUND)
    value = node if isinstance(node, dict) else {key_path[-1]: node}
    return Reply(GET_CONFIGURATION + "Response", {"componentName": component, "value": value})


def _subscribe_configuration(state: NucleusState, caller: str, req: dict[str, Any]) -> Reply:
    component, key_path = _target(caller, req)
    if state.lookup(component, key_path) is MISSING:
        raise _Refused(RESOURCE_NOT_FOUND, KEY_NOT_FOUND)
    return Reply(
        SUBSCRIBE_TO_CONFIGURATION_UPDATE + "Response",
        subscription=Subscription(component, key_path),
    )


def _update_state(state: NucleusState, caller: str, req: dict[str, Any]) -> Reply:
    reported = req.get("state")
    if reported not in LIFECYCLE_STATES:
        raise _Refused(INVALID_ARGUMENTS, f"state must be RUNNING or ERRORED, got {reported!r}")
    state.record_state(reported)
    return Reply(UPDATE_STATE + "Response")


_HANDLERS: dict[str, Callable[[NucleusState, str, dict[str, Any]], Reply]] = {
    PUBLISH_TO_IOT_CORE: _publish,
    GET_CONFIGURATION: _get_configuration,
    SUBSCRIBE_TO_CONFIGURATION_UPDATE: _subscribe_configuration,
    UPDATE_STATE: _update_state,
}


def handle(
    state: NucleusState, caller: str, operation: str, model: str | None, payload: bytes
) -> Reply:
    """Run ``operation`` for the component ``caller``; every failure is an error Reply."""
    handler = _HANDLERS.get(operation)
    try:
        if handler is None:
            raise _Refused(
                SERVICE_ERROR, f"operation {operation!r} is not implemented by the stand-in"
            )
        if model != operation + "Request":
            raise _Refused(SERVICE_ERROR, f"{operation} expects {operation}Request, got {model!r}")
        try:
            request = json.loads(payload or b"{}")
        except (UnicodeDecodeError, ValueError):
            raise _Refused(INVALID_ARGUMENTS, "request payload is not JSON") from None
        if not isinstance(request, dict):
            raise _Refused(INVALID_ARGUMENTS, "request payload is not a JSON object")
        return handler(state, caller, request)
    except _Refused as refused:
        return refused.reply


def configuration_event(component: str, key_path: tuple[str, ...]) -> dict[str, Any]:
    """The body of a ConfigurationUpdateEvents stream event."""
    return {"configurationUpdateEvent": {"componentName": component, "keyPath": list(key_path)}}
