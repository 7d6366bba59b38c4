"""The fault tests share the hostile corpus's healthy device and CLI harness."""

from tests.hostile.conftest import device, healthy

__all__ = ["device", "healthy"]
