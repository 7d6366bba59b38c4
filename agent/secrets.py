"""Scrubbing of secrets from any text that leaves the agent (log lines, result messages).

Secrets never appear in a report or a log (SPEC): private key material, session tokens, the
component's SVCUID, ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` and PKCS#11 PINs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

REDACTED = "[REDACTED]"

# Environment variables whose values are secrets wherever they turn up.
SECRET_ENV_VARS = (
    "SVCUID",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)

_PATTERNS = [
    # PEM private keys of any flavour (PKCS#1, PKCS#8, encrypted, EC, OpenSSH).
    re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S
    ),
    # PIN attributes of a PKCS#11 URI (RFC 7512 section 2.3: pin-value, pin-source).
    re.compile(r"(?<=pin-value=)[^;&?\s]+", re.I),
    # key=value / "key": "value" pairs whose key names a secret.
    re.compile(
        r"(?i)((?:secret[_-]?access[_-]?key|session[_-]?token|secretaccesskey|sessiontoken|"
        r"(?<![;:])\btoken|authorization|svcuid|authtoken|userpin|\bpin|password)"
        r"[\"']?\s*[:=]\s*[\"']?)([^\"'\s,;}&]+)"
    ),
]


def _secret_values(env: Mapping[str, str]) -> list[str]:
    # Short values would redact ordinary words; real tokens are long.
    return [v for k in SECRET_ENV_VARS if len(v := env.get(k, "")) >= 8]


def scrub(
    text: str, extra_secrets: Iterable[str] = (), env: Mapping[str, str] | None = None
) -> str:
    """Replace every secret we can recognise in ``text`` with ``[REDACTED]``."""
    for value in [*_secret_values(os.environ if env is None else env), *extra_secrets]:
        if value:
            text = text.replace(value, REDACTED)
    text = _PATTERNS[0].sub(REDACTED, text)
    text = _PATTERNS[1].sub(REDACTED, text)
    return _PATTERNS[2].sub(lambda m: m.group(1) + REDACTED, text)
