"""MQTT brokers alertnet runs or configures: the embedded trial broker and Mosquitto's files."""
