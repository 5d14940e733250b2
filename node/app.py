"""The node's aiohttp app: ``create_app`` wires config, state, middlewares, routes and background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aiohttp import WSCloseCode, web

from farm.engines import Registry
from farm.local import hardware as hw
from farm.local.paths import cache_dir
from node import keys
from node.auth import NONCES, NonceBook, auth_middleware
from node.availability import steward
from node.blobs import GRACE, BlobStore
from node.config import NodeConfig
from node.errors import error_middleware
from node.events import EventHub, heartbeat
from node.executor import Clock, JobRunner
from node.jobs import JobBook
from node.model_library import ModelLibrary
from node.model_uploads import setup_model_routes, uploads_ctx
from node.routes import setup_routes

log = logging.getLogger(__name__)

LOAD_INTERVAL = 1.0
HEARTBEAT_INTERVAL = 5.0


def create_app(
    config: NodeConfig,
    *,
    registry: Registry,
    token: str,
    node_id: str,
    hardware: hw.Hardware | None = None,
    blob_dir: Path | None = None,
    clock: Clock = time.time,
    slot_registries: Sequence[Registry] = (),
    slot_devices: Sequence[str | None] = (),
    fingerprint: str = "",
) -> web.Application:
    """A ready-to-run node app; background work (job slots, ticker, mDNS) starts with the app.
    ``fingerprint``: the SHA-256 of the TLS certificate it is served with ("" : plain HTTP)."""
    app = web.Application(middlewares=[error_middleware, auth_middleware])
    hardware = hardware or hw.probe()
    app[keys.CONFIG] = config
    app[keys.TOKEN] = token
    app[NONCES] = NonceBook()
    app[keys.NODE_ID] = node_id
    app[keys.FINGERPRINT] = fingerprint
    app[keys.REGISTRY] = registry
    app[keys.HARDWARE] = hardware
    app[keys.CLOCK] = clock
    app[keys.STARTED] = clock()
    app[keys.HUB] = hub = EventHub()
    app[keys.BLOBS] = blobs = BlobStore(
        blob_dir or cache_dir() / "blobs",
        budget=config.blob_cache_bytes,
        max_size=config.max_upload_bytes,
        clock=clock,
        grace=GRACE,
    )
    slots = len(slot_registries) or config.slots or max(1, len(hardware.gpus))
    app[keys.RUNNER] = JobRunner(
        JobBook(retention=config.result_retention),
        blobs,
        registry,
        hub,
        slots=slots,
        job_timeout=config.job_timeout,
        clock=clock,
        slot_registries=slot_registries,
    )
    app[keys.SLOT_DEVICES] = [d or "auto" for d in slot_devices] or ["auto"] * slots
    app[keys.STEWARD] = steward(config, app[keys.RUNNER], clock)
    app[keys.SOCKETS] = weakref.WeakSet()
    book = app[keys.RUNNER].book
    app[keys.MODELS] = ModelLibrary(
        config.models_path,
        registry,
        budget=config.models_budget_bytes,
        device=config.device or None,
        in_use=lambda: {j.spec.model for j in book.active if j.spec.model},
    )
    setup_routes(app)
    setup_model_routes(app)  # pushed models: node/model_uploads.py
    app.cleanup_ctx.append(uploads_ctx)
    app.cleanup_ctx.append(_runner_ctx)
    app.cleanup_ctx.append(_ticker_ctx)
    if config.advertise:
        from node.advertiser import advertiser_ctx

        app.cleanup_ctx.append(advertiser_ctx)
    app.on_shutdown.append(_close_sockets)
    return app


async def _runner_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = app[keys.RUNNER]
    runner.start()
    app[keys.STEWARD].check()
    yield
    await runner.close()
    app[keys.STEWARD].close()


async def _ticker_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(_tick(app), name="node ticker")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _tick(app: web.Application) -> None:
    """Every second: load to subscribers and retention; every few seconds: a heartbeat."""
    runner, hub, clock = app[keys.RUNNER], app[keys.HUB], app[keys.CLOCK]
    beats = 0
    while True:
        await asyncio.sleep(LOAD_INTERVAL)
        try:
            app[keys.STEWARD].check()
            runner.expire()
            if len(hub):
                hub.publish(runner.load())
                beats += 1
                if beats * LOAD_INTERVAL >= HEARTBEAT_INTERVAL:
                    beats = 0
                    hub.publish(heartbeat(clock()))
        except Exception:  # the ticker must outlive any bug in one round
            log.exception("node ticker")


async def _close_sockets(app: web.Application) -> None:
    sockets = app[keys.SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")
