"""The scale suite (issue 18): several alertnet processes on one PostgreSQL and one Mosquitto.

DESIGN §13 promises that any process of a multi-process deployment may die at any moment and
the survivors take over its share of the uplinks and its timers without loss or duplicates.
These tests run such a deployment as real subprocesses under a pressing fleet and kill one.
"""
