"""Tests of the direct MQTT5 transport, the spool, the probes and PKCS#11 keys."""
