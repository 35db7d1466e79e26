"""Prometheus metrics of one alertnet process, on a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.uplinks = Counter(
            "alertnet_uplinks",
            "Uplinks handled, by transport and outcome (new, duplicate, heartbeat, quarantined).",
            ["transport", "outcome"],
            registry=self.registry,
        )
        self.quarantined = Counter(
            "alertnet_quarantined",
            "Inputs rejected into quarantine, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "alertnet_ingest_batch_size",
            "Uplinks per ingest transaction.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.ingest_latency = Histogram(
            "alertnet_ingest_latency_seconds",
            "From receipt of an uplink to the commit of its batch.",
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.batch_failures = Counter(
            "alertnet_ingest_batch_failures",
            "Ingest transactions that failed and were retried.",
            registry=self.registry,
        )
        self.open_alerts = Gauge(
            "alertnet_open_alerts",
            "Open alerts by category (refreshed by the supervision check).",
            ["category"],
            registry=self.registry,
        )
        self.mqtt_connected = Gauge(
            "alertnet_mqtt_connected",
            "1 while the MQTT ingest is connected.",
            registry=self.registry,
        )
        self.loop_errors = Counter(
            "alertnet_loop_errors",
            "Exceptions caught and survived by a long-running loop, by loop.",
            ["loop"],
            registry=self.registry,
        )

        self.task_restarts = Counter(
            "alertnet_task_restarts",
            "Restarts of a runtime task after it crashed or ended, by task (alertnet.supervisor).",
            ["task"],
            registry=self.registry,
        )
        self.task_up = Gauge(
            "alertnet_task_up",
            "1 while a runtime task runs, 0 while it is down or waiting to be restarted.",
            ["task"],
            registry=self.registry,
        )
        self.retention_deleted = Counter(
            "alertnet_retention_deleted_rows",
            "Rows deleted by retention (quarantine after 30 days, feed after 24 h), by table.",
            ["table"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
