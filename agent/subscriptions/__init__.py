"""Who may publish and subscribe what on a Greengrass core device.

The logic behind the ``subscription.*`` checks, free of Greengrass-root plumbing so each rule can
be tested with a table:

- ``topics``: MQTT topic syntax, AWS IoT topic limits, matching and overlap of filters;
- ``ipc_services``, ``ipc_resources``, ``authorization``, ``ipc_lint``: Greengrass IPC
  authorization exactly as the nucleus applies it, and the lint of ``accessControl``;
- ``iot_policy``, ``iot_sources``, ``iot_audit``: the AWS IoT policy evaluator, where policies
  come from, and what a core device needs and must not have;
- ``bridge`` and ``legacy_router``: the MQTT bridge mappings and the legacy subscriptions;
- ``findings``: how the findings about one target become one check result.
"""
