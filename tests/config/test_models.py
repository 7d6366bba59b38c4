"""The configuration model: defaults, key-path errors, AWS IoT topic limits, the health topic."""

from __future__ import annotations

import pytest

from agent.config.layering import build_config
from agent.config.models import AgentConfig, Transport
from agent.errors import ConfigError


def test_defaults_match_the_spec() -> None:
    c = AgentConfig()
    assert c.interval_seconds == 300
    assert c.health_topic == "dt/gghealth/{iot:thingName}/health"
    assert c.transport is Transport.IPC
    assert (c.certificates.warn_days, c.certificates.critical_days) == (30, 7)
    assert c.s3.probe_prefix == "gghealth-probe/"
    assert c.s3.check_artifacts is True
    assert c.subscriptions.fetch_iot_policy is False
    assert c.mqtt.port == 8883


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"certificates": {"warnDayz": 3}}, "unknown key 'certificates.warnDayz'"),
        ({"intervalSeconds": 0}, "'intervalSeconds'"),
        ({"transport": "carrier-pigeon"}, "'transport'"),
        ({"s3": {"buckets": [{"name": "ok-bucket", "access": "rw"}]}}, "'s3.buckets.0.access'"),
        ({"healthTopic": "dt/gghealth/+/health"}, "wildcards"),
        ({"healthTopic": "a/b/c/d/e/f/g/h/i"}, "7 slashes"),
        ({"healthTopic": "x" * 257}, "256 bytes"),
        ({"mqtt": {"port": 70000}}, "'mqtt.port'"),
    ],
)
def test_bad_values_name_the_key_path(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(data)
    assert expected in str(err.value)


def test_health_topic_resolves_the_thing_name() -> None:
    assert build_config({}).health_topic_for("pi-42") == "dt/gghealth/pi-42/health"
    topic = build_config({"healthTopic": "$aws/rules/r/{iot:thingName}"}).health_topic_for("t")
    assert topic == "$aws/rules/r/t"
