"""Tests of the transports: direct MQTT5 and its connection, the spool, PKCS#11 keys."""
