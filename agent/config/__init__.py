"""The agent's configuration: the model (``models``), how its sources are layered (``layering``),
the names AWS must accept (``names``) and the bounded reading of YAML and JSON (``files``).

``from agent.config import AgentConfig, build_config, ...`` keeps working: the names are looked up
in their module on first use, so importing ``agent.config.files`` or ``agent.config.names`` alone
does not load pydantic.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

# pydantic looks for plugins by reading the entry points of every installed distribution when
# the first model is built (~20 ms a start here, a check of 10,000 certificates costs ~700 ms);
# the agent uses none. Set before any model module is imported; an explicit setting wins.
# https://docs.pydantic.dev/latest/concepts/plugins/
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

_HOMES = {
    "models": (
        "DEFAULT_COMPONENT_NAME DEFAULT_HEALTH_TOPIC MAX_PROBE_PREFIX_BYTES AgentConfig "
        "BucketAccess BucketConfig CertificatesConfig CredentialsSource FileTransportConfig "
        "MqttConfig Pkcs11Config S3Config S3CredentialsConfig ShadowConfig SpoolConfig "
        "SubscriptionsConfig SystemConfig Transport"
    ),
    "layering": "build_config deep_merge describe_validation_error load_config_file",
    "names": "MAX_TOPIC_BYTES MAX_TOPIC_SLASHES validate_publish_topic",
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names.split()}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'agent.config' has no attribute {name!r}")
    return getattr(import_module(f"agent.config.{module}"), name)
