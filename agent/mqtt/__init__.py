"""The direct MQTT5 connection (awscrt), its settings, will message and authorization probes.

Nothing here imports awscrt at module level: only the ``mqtt`` transport loads the MQTT stack.
"""
