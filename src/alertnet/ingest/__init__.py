"""Transports that bring uplinks in (MQTT, HTTP, serial) and the one pipeline they all feed."""
