"""Which recipe manifest applies to this device, as the nucleus chooses it.

The nucleus picks the FIRST manifest whose ``Platform`` matches the device; each platform value
is a literal, ``*`` (any), or ``/regex/``; a manifest without ``Platform`` matches every device.
Only that manifest's artifacts are downloaded, so only they matter to a deployment.
https://docs.aws.amazon.com/greengrass/v2/developerguide/component-recipe-reference.html#recipe-reference-manifests
"""

from __future__ import annotations

import platform as _platform
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Python's machine names -> the nucleus's architecture names (same page, "architecture").
_ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "x86",
    "i686": "x86",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv7l": "arm",
    "armv6l": "arm",
    "armv8l": "arm",
}


def device_platform(
    nucleus_config: Mapping[str, Any] | None = None, *, lite: bool = False
) -> dict[str, str]:
    """This machine as the nucleus describes it, with the nucleus ``platformOverride`` applied."""
    machine = _platform.machine().lower()
    found = {
        "os": _platform.system().lower(),
        "architecture": _ARCHITECTURES.get(machine, machine),
        "architecture.detail": machine,
        "runtime": "aws_nucleus_lite" if lite else "aws_nucleus_classic",
    }
    override = (nucleus_config or {}).get("platformOverride")
    if isinstance(override, Mapping):
        found.update({str(k): str(v) for k, v in override.items() if v is not None})
    return found


def _value_matches(wanted: Any, actual: str | None) -> bool:
    text = str(wanted).strip()
    if text in ("*", "all"):
        return True
    if actual is None:
        return False
    if len(text) > 1 and text.startswith("/") and text.endswith("/"):
        try:
            return re.fullmatch(text[1:-1], actual) is not None
        except re.error:
            return False
    return text.lower() == actual.lower()


def platform_matches(spec: Any, device: Mapping[str, str]) -> bool:
    """Whether a manifest's ``Platform`` mapping admits ``device``."""
    if not isinstance(spec, Mapping):
        return spec is None
    return all(_value_matches(v, device.get(str(k))) for k, v in spec.items())


def select_manifest(manifests: Sequence[Any], device: Mapping[str, str]) -> int | None:
    """Index of the manifest the nucleus would use on ``device``; None when none applies."""
    for index, manifest in enumerate(manifests):
        if isinstance(manifest, Mapping):
            spec = next((v for k, v in manifest.items() if str(k).lower() == "platform"), None)
            if platform_matches(spec, device):
                return index
    return None
