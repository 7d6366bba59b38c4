"""The project's own error types; library errors are translated into these at the boundary."""


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """The agent's configuration or command line is invalid; the CLI exits 3 with the message."""


class ProbeError(AgentError):
    """A subscribe probe that could not be sent or answered (``subscription.probe`` UNKNOWN).

    ``reason`` is the result's reason code: ``not_connected``, ``timeout``, ``error`` or
    ``bad_suback``. Raised by the MQTT transport, judged by the check: it lives in the model so
    that neither imports the other.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
