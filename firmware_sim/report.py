"""What a scenario run reports: alertnet's committed-uplink counter sampled over the run, and
the ``RunReport`` built from the run's recorder, links and tablets once it is over.

Kept apart from ``runner`` (which carries the run out) so that the verdict's arithmetic —
the committed rate, the backlog at the end of the load, when alertnet caught up — reads on
its own.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final

import httpx

from firmware_sim.scenario import RunReport

if TYPE_CHECKING:
    from firmware_sim.runner import Load, Run

__all__ = ["ServerCounter", "build_report"]

_UPLINKS_METRIC: Final = re.compile(r"^alertnet_uplinks_total\{[^}]*\}\s+([0-9.eE+]+)$", re.M)
_SAMPLE_INTERVAL_S: Final = 0.2


class ServerCounter:
    """alertnet's ``alertnet_uplinks_total`` over time, from ``GET /metrics``."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self.samples: list[tuple[float, float]] = []
        self.available = True

    async def read(self) -> float | None:
        if not self.available:
            return None
        try:
            response = await self._http.get("/metrics")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            self.available = False
            return None
        total = sum(float(value) for value in _UPLINKS_METRIC.findall(response.text))
        self.samples.append((time.monotonic(), total))
        return total

    async def run(self) -> None:
        while self.available:
            await self.read()
            await asyncio.sleep(_SAMPLE_INTERVAL_S)


def build_report(
    run: Run,
    load: Load,
    load_s: float,
    server: ServerCounter,
    baseline: float | None,
    at_load_end: float | None,
    expected: int,
    caught_up: tuple[float | None, float | None],
    load_end: float,
) -> RunReport:
    config = run.config
    sent = sum(run.recorder.sent.values())
    server_total = (
        server.samples[-1][1] - baseline if server.samples and baseline is not None else None
    )
    caught_up_at, caught_up_total = caught_up
    committed_rate: float | None = None
    if server.samples and baseline is not None:
        # From the start of the load to the moment alertnet had committed every uplink sent
        # (or, when it never caught up, to the last sample): commits start within
        # milliseconds of the first send, so this is alertnet's sustained rate.
        if caught_up_at is not None and caught_up_total is not None:
            end_time, committed = caught_up_at, caught_up_total
        else:
            end_time, committed = server.samples[-1][0], server_total or 0.0
        committed_rate = committed / max(1e-9, end_time - load.started_at)
    links: dict[str, Any] = {}
    if run.mqtt is not None:
        links["mqtt"] = {"reconnects": run.mqtt.reconnects}
    if run.http is not None:
        links["http"] = {"errors": run.http.errors}
    if run.chirpstack is not None:
        links["chirpstack"] = {
            "transmissions": run.chirpstack.transmissions,
            "events": run.chirpstack.events,
            "receptions": run.chirpstack.heard,
            "heard_by_nobody": run.chirpstack.not_heard,
            "publish_failures": run.chirpstack.publish_failures,
            "downlinks": dict(run.chirpstack.downlinks),
        }
    if run.lora is not None:
        links["lora"] = {
            "gateways": {
                module.gateway_id: {
                    "heard": module.heard,
                    "downlinks": module.transmitted,
                    "bad_commands": module.bad_commands,
                    "overruns": module.overruns,
                }
                for module in run.lora.modules
            },
            "transmissions": run.lora.transmissions,
            "heard_by_nobody": run.lora.not_heard,
        }
    config_dict = {
        "scenario": config.scenario,
        "devices": config.devices,
        "seed": config.seed,
        "transports": {kind.value: weight for kind, weight in config.transports},
        "rate": config.rate,
        "uplinks": config.uplinks if config.rate is None else None,
        "duration_s": config.duration_s,
        "presses": config.presses,
        "tablets": len(config.tablets),
    }
    return RunReport(
        scenario=config.scenario,
        config=config_dict,
        load_s=round(load_s, 3),
        offered_rate=round(sent / load_s, 1),
        committed_rate=None if committed_rate is None else round(committed_rate, 1),
        server_uplinks=server_total,
        expected_server_uplinks=expected,
        backlog_at_load_end=(
            None
            if at_load_end is None or baseline is None
            else max(0.0, expected - (at_load_end - baseline))
        ),
        caught_up_s=None if caught_up_at is None else round(caught_up_at - load_end, 3),
        summary=run.recorder.summary(),
        links=links,
        tablets={tablet.spec.callsign: asdict(tablet.stats) for tablet in run.tablets},
        presses=[f"{eui}:{counter}" for eui, counter in run.recorder.presses],
    )
