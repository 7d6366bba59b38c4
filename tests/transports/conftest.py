"""The MQTT tests use the ``mosquitto`` and ``softhsm`` peers registered in tests/conftest.py."""
