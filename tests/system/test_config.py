"""``system.*`` configuration: defaults and bad values named by their key path."""

from __future__ import annotations

import pytest

from agent.config import build_config
from agent.errors import ConfigError


def test_defaults() -> None:
    config = build_config({})
    assert config.system.refresh_seconds == 900
    assert config.system.timeout_seconds == 5.0
    assert build_config({"system": {"refreshSeconds": 0}}).system.refresh_seconds == 0


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ({"refreshSeconds": -1}, "system.refreshSeconds"),
        ({"refreshSeconds": True}, "system.refreshSeconds"),
        ({"refreshSeconds": "soon"}, "system.refreshSeconds"),
        ({"timeoutSeconds": 0}, "system.timeoutSeconds"),
        ({"timeoutSeconds": 600}, "system.timeoutSeconds"),
        ({"refreshSecs": 5}, "system.refreshSecs"),
    ],
)
def test_bad_values_name_the_key(value: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"system": value})
    assert key in str(caught.value)
