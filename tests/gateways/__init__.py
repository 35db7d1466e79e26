"""Tests of the LoRa gateways: serial bridges on real ptys, networked gateways, routing."""
