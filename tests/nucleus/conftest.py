"""Fixtures of the nucleus stand-in tests (defined in ``tests.nucleus.fixtures`` for reuse)."""

from tests.nucleus.fixtures import ipc_connect, nucleus, nucleus_dir

__all__ = ["ipc_connect", "nucleus", "nucleus_dir"]
