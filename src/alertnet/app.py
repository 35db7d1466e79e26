"""The FastAPI application; its lifespan owns every long-lived resource of one alertnet process.

Engine, embedded broker (trial runs only), ingest pipeline, MQTT ingest and supervision are
created on start-up and kept in ``app.state.runtime``; their tasks live in one TaskGroup-like
set that is cancelled and awaited on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alertnet import __version__
from alertnet.admin.api import router as admin_router
from alertnet.alerts.api import router as alerts_router
from alertnet.alerts.counts import router as counts_router
from alertnet.auth.api import router as auth_router
from alertnet.auth.audit import RequestAuditMiddleware
from alertnet.auth.throttle import LoginThrottle
from alertnet.broker.embedded import EmbeddedBroker
from alertnet.config import Settings
from alertnet.db import create_engine, create_session_factory
from alertnet.devices.api import router as devices_router
from alertnet.dispatch.engine import Dispatcher
from alertnet.errors import AlertnetError
from alertnet.gateways.api import router as gateways_router
from alertnet.gateways.registry import GatewayRegistry
from alertnet.health import router as health_router
from alertnet.ingest.downlinks import DownlinkRouter
from alertnet.ingest.http import router as ingest_http_router
from alertnet.ingest.mqtt import MqttIngest
from alertnet.ingest.pipeline import BatchResult, Pipeline
from alertnet.ingest.serial import SerialBridge
from alertnet.ingest.supervision import Supervisor
from alertnet.metrics import Metrics
from alertnet.posts.api import router as posts_router
from alertnet.realtime.api import redact_query_tokens_in_server_logs
from alertnet.realtime.api import router as stream_router
from alertnet.realtime.hub import Hub
from alertnet.web import router as web_router

log = logging.getLogger(__name__)


class Runtime:
    """The live parts of one process, reachable from request handlers via ``app.state``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.engine: AsyncEngine = create_engine(settings.database_url)
        self.session_factory: async_sessionmaker[AsyncSession] = create_session_factory(self.engine)
        # Ingest has a pool of its own: a crowd of API requests (tablets logging in, consoles
        # loading) must never leave a press waiting for a database connection.
        self.ingest_engine: AsyncEngine = create_engine(settings.database_url)
        self.broker = (
            EmbeddedBroker(settings.embedded_mqtt_port) if settings.mqtt_embedded else None
        )
        self.pipeline = Pipeline(
            create_session_factory(self.ingest_engine),
            metrics=self.metrics,
            max_batch=settings.batch_max_messages,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            on_commit=self._after_commit,
        )
        self.gateways = GatewayRegistry(self.session_factory)
        self.downlinks = DownlinkRouter(self.session_factory)
        mqtt_url = self.broker.url if self.broker else settings.mqtt_url
        self.mqtt = MqttIngest(
            self.pipeline,
            self.metrics,
            url=mqtt_url,
            client_id=settings.mqtt_client_id,
            share_group=settings.mqtt_share_group,
            router=self.downlinks,
            registry=self.gateways,
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
        self.supervisor = Supervisor(self.session_factory, settings, self.metrics)
        self.dispatcher = Dispatcher(
            self.session_factory, settings, self.downlinks, metrics=self.metrics
        )
        self.login_throttle = LoginThrottle()
        self.hub = Hub(self.engine, metrics=self.metrics)
        self._tasks: set[asyncio.Task[None]] = set()

    def broker_connected(self) -> bool:
        return self.mqtt.connected.is_set()

    async def _after_commit(self, result: BatchResult) -> None:
        """After each ingest commit: a new alert is dispatched at once, not at the next tick."""
        if result.opened_alert_ids:
            self.dispatcher.wake()

    def _spawn(self, name: str, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_ended)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s died", task.get_name(), exc_info=task.exception())

    async def start(self) -> None:
        if self.broker is not None:
            await self.broker.start()
            self.mqtt.use_broker(self.broker.url)  # its port may have moved
        self._spawn("ingest-pipeline", self.pipeline.run())
        self._spawn("gateway-registry", self.gateways.run())
        self._spawn("downlink-router", self.downlinks.run())
        self._spawn("mqtt-ingest", self.mqtt.run())
        for bridge in self.serial_bridges:
            self._spawn(f"serial-bridge:{bridge.gateway_id}", bridge.run())
        self._spawn("supervision", self.supervisor.run())
        self._spawn("realtime-hub", self.hub.run())
        self._spawn("dispatcher", self.dispatcher.run())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.broker is not None:
            await self.broker.stop()
        await self.engine.dispose()
        await self.ingest_engine.dispose()


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as ``{"error", "detail"}`` with its status; never a stack trace."""

    @app.exception_handler(AlertnetError)
    async def _alertnet_error(_request: Request, exc: AlertnetError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        return JSONResponse({"error": "invalid_input", "detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            {"error": "internal_error", "detail": "an internal error occurred; it was logged"},
            status_code=500,
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="alertnet", version=__version__, lifespan=lifespan)

    install_error_handlers(app)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return Response(
            request.app.state.runtime.metrics.render(), media_type="text/plain; version=0.0.4"
        )

    app.add_middleware(RequestAuditMiddleware)
    redact_query_tokens_in_server_logs()
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(stream_router)
    app.include_router(alerts_router)
    app.include_router(posts_router)
    app.include_router(devices_router)
    app.include_router(admin_router)
    app.include_router(counts_router)
    app.include_router(web_router)
    app.include_router(ingest_http_router)
    app.include_router(gateways_router)
    return app
