"""The IPC services the Greengrass nucleus authorizes, and the operations each one registers.

The nucleus rejects an ``accessControl`` operation that its service did not register and looks up
resources of ``aws.greengrass.ipc.mqttproxy`` MQTT-style (``+``/``#`` plus ``*``) and of every
other service with ``*`` alone (aws-greengrass-nucleus ``AuthorizationHandler``,
``MqttProxyIPCAgent.doAuthorization``). Operation names are the Smithy ids of the IPC model.
https://docs.aws.amazon.com/greengrass/v2/developerguide/interprocess-communication.html#ipc-authorization-policies
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

ANY = "*"
MQTT_PROXY = "aws.greengrass.ipc.mqttproxy"
PUB_SUB = "aws.greengrass.ipc.pubsub"
PUBLISH_TO_IOT_CORE = "aws.greengrass#PublishToIoTCore"
SUBSCRIBE_TO_IOT_CORE = "aws.greengrass#SubscribeToIoTCore"
PUBLISH_TO_TOPIC = "aws.greengrass#PublishToTopic"
SUBSCRIBE_TO_TOPIC = "aws.greengrass#SubscribeToTopic"
TOKEN_EXCHANGE = "aws.greengrass.TokenExchangeService"
GET_CREDENTIALS = "getCredentials"

_GUIDE = "https://docs.aws.amazon.com/greengrass/v2/developerguide/"


class LookupStyle(str, enum.Enum):
    """How the nucleus matches a requested resource against a policy resource."""

    STANDARD = "standard"
    """Only ``*`` is a wildcard."""
    MQTT = "mqtt"
    """``*`` and the MQTT wildcards ``+`` and ``#`` where they are used validly."""


@dataclass(frozen=True)
class IpcService:
    """One IPC service identifier that may appear as a key of ``accessControl``."""

    name: str
    operations: frozenset[str]
    """Registered operations; ``*`` is registered for every service except the TES."""
    style: LookupStyle
    doc: str


def _service(name: str, ops: list[str], doc: str, *, any_op: bool = True) -> IpcService:
    registered = [
        f"aws.greengrass#{op}" if "#" not in op and op != GET_CREDENTIALS else op for op in ops
    ]
    style = LookupStyle.MQTT if name == MQTT_PROXY else LookupStyle.STANDARD
    return IpcService(name, frozenset(registered + ([ANY] if any_op else [])), style, _GUIDE + doc)


IPC_SERVICES: dict[str, IpcService] = {
    s.name: s
    for s in (
        _service(PUB_SUB, ["PublishToTopic", "SubscribeToTopic"], "ipc-publish-subscribe.html"),
        _service(MQTT_PROXY, ["PublishToIoTCore", "SubscribeToIoTCore"], "ipc-iot-core-mqtt.html"),
        _service("aws.greengrass.SecretManager", ["GetSecretValue"], "ipc-secret-manager.html"),
        _service(
            "aws.greengrass.ShadowManager",
            [
                "GetThingShadow",
                "UpdateThingShadow",
                "DeleteThingShadow",
                "ListNamedShadowsForThing",
            ],
            "ipc-local-shadows.html",
        ),
        _service(
            "aws.greengrass.ipc.lifecycle",
            ["PauseComponent", "ResumeComponent"],
            "ipc-component-lifecycle.html",
        ),
        _service(
            "aws.greengrass.clientdevices.Auth",
            [
                "SubscribeToCertificateUpdates",
                "VerifyClientDeviceIdentity",
                "GetClientDeviceAuthToken",
                "AuthorizeClientDeviceAction",
            ],
            "ipc-client-device-auth.html",
        ),
        _service(
            "aws.greengrass.Cli",
            [
                "GetComponentDetails",
                "ListComponents",
                "RestartComponent",
                "StopComponent",
                "CreateLocalDeployment",
                "GetLocalDeploymentStatus",
                "ListLocalDeployments",
                "CreateDebugPassword",
            ],
            "ipc-local-deployments-components.html",
        ),
        _service(
            "aws.greengrass.ipc.componentmetric",
            ["PutComponentMetric"],
            "interprocess-communication.html#ipc-authorization-policies",
        ),
        # The TES registers only getCredentials and ships a default allow-all policy.
        _service(
            TOKEN_EXCHANGE,
            [GET_CREDENTIALS],
            "token-exchange-service-component.html",
            any_op=False,
        ),
    )
}

BROAD_GRANT_SERVICES = (MQTT_PROXY, PUB_SUB)
"""Services whose ``*`` operations and catch-all resources reach every topic (SPEC lint)."""


def lookup_style(service: str) -> LookupStyle:
    """The resource lookup the nucleus uses for ``service``."""
    known = IPC_SERVICES.get(service)
    return known.style if known else LookupStyle.STANDARD


def similar_service(name: str) -> str | None:
    """A known service the unknown ``name`` is probably a misspelling of (case or separators)."""
    key = name.lower().replace("-", "").replace("_", "")
    for known in IPC_SERVICES:
        if known.lower().replace("-", "").replace("_", "") == key:
            return known
    return None
