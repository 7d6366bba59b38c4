"""gg-health-agent: audits the security plumbing of an AWS IoT Greengrass v2 core device."""

__version__ = "0.1.0"
