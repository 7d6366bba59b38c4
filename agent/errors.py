"""The project's own error types; library errors are translated into these at the boundary."""

from __future__ import annotations

import enum


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """The agent's configuration or command line is invalid; the CLI exits 3 with the message."""


class ErrorKind(str, enum.Enum):
    """Why an AWS call failed, in the terms a check reports."""

    ACCESS_DENIED = "access_denied"
    NOT_FOUND = "not_found"
    WRONG_REGION = "wrong_region"
    BAD_CREDENTIALS = "bad_credentials"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    NOT_CONFIGURED = "not_configured"
    """Nothing to call with: no credentials source, no endpoint, unreadable device identity."""
    UNEXPECTED = "unexpected"
    """An answer none of the above explains (an unknown 4xx, a malformed body)."""


class AwsError(AgentError):
    """A failed AWS call, classified; messages never carry secrets."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        region: str | None = None,
        remediation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        """HTTP status of the answer, None when no answer came."""
        self.code = code
        """AWS error code (``AccessDenied``...), None for a bodiless HEAD answer."""
        self.region = region
        """For ``wrong_region``: the region the bucket lives in."""
        self.remediation = remediation
        """Advice specific to where the error arose (a credentials provider knows best)."""


class ProbeError(AgentError):
    """A subscribe probe that could not be sent or answered (``subscription.probe`` UNKNOWN).

    ``reason`` is the result's reason code: ``not_connected``, ``timeout``, ``error`` or
    ``bad_suback``. Raised by the MQTT transport, judged by the check: it lives in the model so
    that neither imports the other.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
