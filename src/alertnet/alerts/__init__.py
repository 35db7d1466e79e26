"""Alerts: what the console and the tablets see of an alarm, and how it moves through its states."""
