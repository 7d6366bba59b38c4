"""Which checks exist per area. Area modules are imported only when that area is asked for, so
``check --only certificate`` never loads the MQTT or HTTP stacks."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from agent.checks.base import Check

# Every area of the SPEC, mapped to the module implementing it (None: not built yet; such an
# area is accepted by --only and contributes no results rather than placeholders).
AREAS: dict[str, str | None] = {
    "certificate": "agent.checks.certificates",
    "subscription": "agent.checks.subscriptions",
    "s3": "agent.checks.s3",
    # After s3: system.clock reads the Date of the AWS answers the s3 area got this cycle.
    "system": "agent.checks.system",
    "agent": "agent.checks.agent_health",
}


def checks_for(areas: Iterable[str]) -> list[Check]:
    """The checks of ``areas`` in catalogue order; each module lists them in ``CHECKS``."""
    checks: list[Check] = []
    for area in areas:
        module_name = AREAS[area]
        if module_name is not None:
            checks.extend(importlib.import_module(module_name).CHECKS)
    return checks
