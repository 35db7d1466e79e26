"""The FastAPI application; its lifespan owns every long-lived resource of one alertnet process.

Engine, embedded broker (trial runs only), ingest pipeline, MQTT ingest, ChirpStack ingest
(when ``ALERTNET_CHIRPSTACK_MQTT_URL`` is set), the SIA DC-09 receiver for alarm panels (when
``ALERTNET_DC09_LISTEN`` is set), serial bridges, dispatcher, device supervision,
realtime hub and retention are created on start-up and kept in ``app.state.runtime``; the
process's roles (``alertnet serve --role``, ``alertnet.roles``) decide which of them run. Every
long-running task runs under one ``TaskSupervisor``, which restarts a task that crashes and
tells ``/readyz`` about it (DESIGN §14).

Shutdown is bounded: tasks get ``TASK_STOP_TIMEOUT_S`` to end once cancelled, each engine
``ENGINE_DISPOSE_TIMEOUT_S`` to close. ``alertnet serve`` lets uvicorn drain requests for
``HTTP_DRAIN_S`` and arms a ``ShutdownDeadline`` of ``SHUTDOWN_DEADLINE_S``: SIGTERM ends the
process within 10 s whatever its tasks are doing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alertnet import __version__
from alertnet.admin.api import router as admin_router
from alertnet.alerts.api import router as alerts_router
from alertnet.alerts.cap_api import router as cap_router
from alertnet.alerts.counts import router as counts_router
from alertnet.alerts.workflow_api import router as workflow_router
from alertnet.auth.api import router as auth_router
from alertnet.auth.audit import RequestAuditMiddleware
from alertnet.auth.me import router as own_account_router
from alertnet.auth.throttle import LoginThrottle
from alertnet.broker.embedded import EmbeddedBroker
from alertnet.config import Settings, parse_listen
from alertnet.db import create_engine, create_session_factory
from alertnet.devices.api import router as devices_router
from alertnet.devices.supervision import Supervisor
from alertnet.dispatch.api import router as dispatch_router
from alertnet.dispatch.engine import Dispatcher
from alertnet.dispatch.verify import router as verify_router
from alertnet.dispatch.wakeup import DispatchListener, DispatchNotifier
from alertnet.drills.api import router as drills_router
from alertnet.drills.runner import DrillRunner
from alertnet.errors import install_error_handlers
from alertnet.gateways.api import router as gateways_router
from alertnet.gateways.registry import GatewayRegistry
from alertnet.health import router as health_router
from alertnet.http_limits import BodySizeLimitMiddleware
from alertnet.ingest.chirpstack import ChirpStackIngest
from alertnet.ingest.dc09.intake import Dc09Intake
from alertnet.ingest.dc09.receiver import Receiver
from alertnet.ingest.downlink_publisher import DownlinkPublisher
from alertnet.ingest.downlinks import DownlinkRouter
from alertnet.ingest.frigate import FrigateIngest
from alertnet.ingest.http import router as ingest_http_router
from alertnet.ingest.mqtt import MqttIngest
from alertnet.ingest.mqtt_client import MqttLogin, MqttPurpose, mqtt_login
from alertnet.ingest.pipeline import BatchResult, Pipeline
from alertnet.ingest.serial import SerialBridge
from alertnet.metrics import Metrics
from alertnet.programme.api import router as programme_router
from alertnet.realtime.api import redact_query_tokens_in_server_logs
from alertnet.realtime.api import router as stream_router
from alertnet.realtime.hub import Hub
from alertnet.reports.api import router as reports_router
from alertnet.retention import Retention
from alertnet.roles import ALL_ROLES, ProcessPlan, ProcessRole
from alertnet.scrape import router as scrape_router
from alertnet.supervisor import ShutdownDeadline, TaskSupervisor
from alertnet.web import router as web_router
from alertnet.web.docs import router as docs_router
from alertnet.web.tiles import tiles_router

log = logging.getLogger(__name__)

#: uvicorn's time for requests in flight to finish after SIGTERM (``alertnet serve``).
HTTP_DRAIN_S: Final = 3  # whole seconds: uvicorn takes an int
TASK_STOP_TIMEOUT_S: Final = 3.0
ENGINE_DISPOSE_TIMEOUT_S: Final = 1.0
#: After SIGTERM the process is ended by force if it still runs (DESIGN §14: within 10 s).
SHUTDOWN_DEADLINE_S: Final = 9.0


class Runtime:
    """The live parts of one process, reachable from request handlers via ``app.state``.

    ``roles`` decide which of them run (``alertnet.roles``): the transports (``mqtt``,
    ``chirpstack``, ``frigate``, ``dc09``, ``serial_bridges``) exist only with ``ingest``,
    the embedded broker only with ``ingest`` on the trial setting, ``downlink_publisher`` only
    without ``ingest``, the ``NOTIFY``/``LISTEN`` wake-ups only on PostgreSQL. The pipeline,
    dispatcher and drill runner always exist (HTTP uplinks, tablet answers and drill starts
    use them); their loops run by role.
    """

    def __init__(self, settings: Settings, roles: frozenset[ProcessRole] = ALL_ROLES) -> None:
        self.settings = settings
        self.plan = plan = ProcessPlan(roles, settings)
        self.metrics = Metrics()
        self.engine: AsyncEngine = create_engine(settings.database_url)
        self.session_factory: async_sessionmaker[AsyncSession] = create_session_factory(self.engine)
        # Ingest has a pool of its own: a crowd of API requests (tablets logging in, consoles
        # loading) must never leave a press waiting for a database connection.
        self.ingest_engine: AsyncEngine = create_engine(settings.database_url)
        self.broker = (
            EmbeddedBroker(settings.embedded_mqtt_port) if plan.runs_embedded_broker else None
        )
        self.pipeline = Pipeline(
            create_session_factory(self.ingest_engine),
            metrics=self.metrics,
            max_batch=settings.batch_max_messages,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            device_cache_size=settings.device_cache_size,
            on_commit=self._after_commit,
        )
        self.gateways = GatewayRegistry(self.session_factory)
        self.downlinks = DownlinkRouter(self.session_factory)
        self.dispatch_notifier = (
            DispatchNotifier(self.engine, self.metrics) if plan.wakes_dispatch_by_notify else None
        )
        self.dispatcher = Dispatcher(
            self.session_factory,
            settings,
            self.downlinks,
            metrics=self.metrics,
            wake_elsewhere=self.dispatch_notifier.request if self.dispatch_notifier else None,
        )
        self.dispatch_listener = (
            DispatchListener(self.engine.url, self.dispatcher.wake, self.metrics)
            if plan.listens_for_dispatch
            else None
        )
        self.device_supervision = Supervisor(self.session_factory, settings, self.metrics)
        self.retention = Retention(self.session_factory, self.metrics)
        # Training drills (DESIGN §12): their events go into the pipeline as they fall due.
        self.drills = DrillRunner(self.session_factory, self.pipeline, metrics=self.metrics)
        self.login_throttle = LoginThrottle()
        self.hub = Hub(self.engine, metrics=self.metrics)
        self.tasks = TaskSupervisor(self.metrics)
        self.mqtt: MqttIngest | None = None
        self.chirpstack: ChirpStackIngest | None = None
        self.frigate: FrigateIngest | None = None
        self.dc09: Receiver | None = None
        self.serial_bridges: list[SerialBridge] = []
        if plan.runs_ingest:
            self._add_transports()
        self.downlink_publisher: DownlinkPublisher | None = None
        if plan.publishes_downlinks_alone:
            login = mqtt_login(settings, MqttPurpose.DOWNLINKS, plan.mqtt_url)
            self.downlink_publisher = DownlinkPublisher(
                self.metrics, url=login.url, client_id=login.client_id
            )
            self.downlinks.publish_via(self.downlink_publisher.send)

    def _add_transports(self) -> None:
        settings = self.settings
        ingest_login = mqtt_login(settings, MqttPurpose.INGEST, self.plan.mqtt_url)
        self.mqtt = MqttIngest(
            self.pipeline,
            self.metrics,
            url=ingest_login.url,
            client_id=ingest_login.client_id,
            share_group=settings.mqtt_share_group,
            session_expiry_s=settings.mqtt_session_expiry_s,
            router=self.downlinks,
            registry=self.gateways,
        )
        chirpstack_login = _chirpstack_login(settings)
        if chirpstack_login is not None:
            self.chirpstack = ChirpStackIngest(
                self.pipeline,
                self.metrics,
                url=chirpstack_login.url,
                client_id=chirpstack_login.client_id,
                share_group=settings.mqtt_share_group,
                session_expiry_s=settings.mqtt_session_expiry_s,
            )
        self.frigate = _frigate_ingest(
            settings, self.pipeline, create_session_factory(self.ingest_engine), self.metrics
        )
        self.dc09 = _dc09_receiver(
            settings, self.pipeline, create_session_factory(self.ingest_engine)
        )
        self.serial_bridges = [
            SerialBridge(
                gateway_id,
                path,
                pipeline=self.pipeline,
                registry=self.gateways,
                router=self.downlinks,
            )
            for gateway_id, path in settings.serial_ports.items()
        ]

    def broker_connected(self) -> bool:
        """Whether this process's MQTT ingest is subscribed (False in a process without one)."""
        return self.mqtt is not None and self.mqtt.connected.is_set()

    async def _after_commit(self, result: BatchResult) -> None:
        """After each ingest commit: a new alert is dispatched at once, not at the next tick
        (in another process: through ``NOTIFY``, see ``Dispatcher.wake``)."""
        if result.opened_alert_ids:
            self.dispatcher.wake()

    async def start(self) -> None:
        plan = self.plan
        if self.broker is not None and self.mqtt is not None:
            await self.broker.start()
            self.mqtt.use_broker(self.broker.url)  # its port may have moved
        # Every role submits to the pipeline: transports, HTTP uplinks, drills.
        self.tasks.add("ingest-pipeline", self.pipeline.run)
        if plan.runs_ingest:
            self._start_transports()
        if self.downlink_publisher is not None:
            self.tasks.add("downlink-publisher", self.downlink_publisher.run)
        if self.dispatch_notifier is not None:
            self.tasks.add("dispatch-notify", self.dispatch_notifier.run)
        if plan.serves_api:
            self.tasks.add("realtime-hub", self.hub.run)
        if plan.runs_dispatch:
            self.tasks.add("dispatcher", self.dispatcher.run)
            if self.dispatch_listener is not None:
                self.tasks.add("dispatch-listen", self.dispatch_listener.run)
            self.tasks.add("supervision", self.device_supervision.run)
            self.tasks.add("retention", self.retention.run)
            self.tasks.add("drills", self.drills.run)
        self.tasks.start()

    def _start_transports(self) -> None:
        self.tasks.add("gateway-registry", self.gateways.run)
        self.tasks.add("downlink-router", self.downlinks.run)
        if self.mqtt is not None:
            self.tasks.add("mqtt-ingest", self.mqtt.run)
        if self.chirpstack is not None:
            self.tasks.add("chirpstack-ingest", self.chirpstack.run)
        if self.frigate is not None:
            self.tasks.add("frigate-ingest", self.frigate.run)
        if self.dc09 is not None:
            self.tasks.add("dc09-receiver", self.dc09.run)
        for bridge in self.serial_bridges:
            self.tasks.add(f"serial-bridge:{bridge.gateway_id}", bridge.run)

    async def stop(self) -> None:
        """Stop everything in bounded time; a part that will not stop is logged and left."""
        await self.tasks.stop(TASK_STOP_TIMEOUT_S)
        if self.broker is not None:
            await self.broker.stop()
        for engine in (self.engine, self.ingest_engine):
            try:
                async with asyncio.timeout(ENGINE_DISPOSE_TIMEOUT_S):
                    await engine.dispose()
            except TimeoutError:
                log.error(
                    "closing the database connections took over %.1f s", ENGINE_DISPOSE_TIMEOUT_S
                )


def _chirpstack_login(settings: Settings) -> MqttLogin | None:
    """How the ChirpStack adapter logs in (DESIGN §9.2); None when it is off."""
    url = settings.chirpstack_mqtt_url.strip()
    return mqtt_login(settings, MqttPurpose.CHIRPSTACK, url) if url else None


def _frigate_ingest(
    settings: Settings,
    pipeline: Pipeline,
    session_factory: async_sessionmaker[AsyncSession],
    metrics: Metrics,
) -> FrigateIngest | None:
    """The Frigate NVR adapter (DESIGN §9.3); None when ALERTNET_FRIGATE_MQTT_URL is empty."""
    url = settings.frigate_mqtt_url.strip()
    if not url:
        return None
    login = mqtt_login(settings, MqttPurpose.FRIGATE, url)
    return FrigateIngest(
        pipeline,
        session_factory,
        metrics,
        url=login.url,
        client_id=login.client_id,
        topic_prefix=settings.frigate_topic_prefix,
        frigate_url=settings.frigate_url,
        timezone=settings.timezone,
        verify_timeout_s=settings.verify_timeout_s,
        share_group=settings.mqtt_share_group,
        session_expiry_s=settings.mqtt_session_expiry_s,
    )


def _dc09_receiver(
    settings: Settings, pipeline: Pipeline, session_factory: async_sessionmaker[AsyncSession]
) -> Receiver | None:
    """The SIA DC-09 receiver for alarm panels (DESIGN §9.1); None when it is off."""
    if not settings.dc09_listen:
        return None
    host, port = parse_listen(settings.dc09_listen)
    intake = Dc09Intake(pipeline, session_factory)
    return Receiver(host, port, intake.on_frame, intake.on_garbage)


def create_app(
    settings: Settings | None = None,
    *,
    roles: frozenset[ProcessRole] = ALL_ROLES,
    shutdown_deadline_s: float | None = None,
) -> FastAPI:
    """The app of a process running ``roles`` (``alertnet.roles``; every route but the probes
    and ``/metrics`` only with ``api``). ``shutdown_deadline_s`` (``alertnet serve``): after
    the first SIGTERM/SIGINT, end the process by force if it still runs that long after
    (``ShutdownDeadline``)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        deadline = ShutdownDeadline(shutdown_deadline_s) if shutdown_deadline_s else None
        if deadline is not None:
            # Now, not earlier: the server has installed its own signal handlers by startup.
            deadline.install()
        runtime = Runtime(settings, roles)
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            if deadline is not None:
                deadline.uninstall()

    # /docs is alertnet.web.docs (its assets served locally); no /redoc.
    app = FastAPI(
        title="alertnet", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )

    install_error_handlers(app)
    # Inside the audit, so that refused bodies are audited like any other refusal.
    app.add_middleware(BodySizeLimitMiddleware)
    app.add_middleware(RequestAuditMiddleware)
    redact_query_tokens_in_server_logs()
    # Every process: operators probe and scrape an ingest-only process too.
    app.include_router(health_router)
    app.include_router(scrape_router)
    if ProcessRole.API in roles:
        _include_api_routers(app, settings)
    return app


def _include_api_routers(app: FastAPI, settings: Settings) -> None:
    app.include_router(docs_router)
    app.include_router(auth_router)
    # Before admin_router: /api/v1/users/me is not the admin's /api/v1/users/{username}.
    app.include_router(own_account_router)
    app.include_router(stream_router)
    app.include_router(alerts_router)
    app.include_router(cap_router)
    app.include_router(verify_router)
    app.include_router(dispatch_router)
    app.include_router(workflow_router)
    app.include_router(devices_router)
    app.include_router(admin_router)
    app.include_router(counts_router)
    app.include_router(programme_router)
    app.include_router(reports_router)
    app.include_router(web_router)
    app.include_router(tiles_router(settings))
    app.include_router(ingest_http_router)
    app.include_router(gateways_router)
    app.include_router(drills_router)
