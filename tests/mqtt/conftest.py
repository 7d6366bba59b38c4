"""Peers for the MQTT tests: a Mosquitto broker and a SoftHSM2 token."""

from tests.peers.mosquitto import mosquitto
from tests.peers.softhsm import softhsm

__all__ = ["mosquitto", "softhsm"]
