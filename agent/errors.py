"""The project's own error types; library errors are translated into these at the boundary."""


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """The agent's configuration or command line is invalid; the CLI exits 3 with the message."""
