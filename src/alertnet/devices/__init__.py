"""Devices in the field (buttons, alarms): registration, bulk import and their keys."""
