"""The aiohttp app of ``lanfarm serve``: IOPaint's API, the farm's own API and socket.io on one port.

:func:`create_app` takes an open :class:`farm.Farm`; the app never opens or closes the farm (the
caller's ``async with Farm.open(...)`` does), it only ends what it started itself.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from farm.runtime.farm import Farm

from .access import Access, is_this_pc
from .edits import RETENTION, Edits
from .iopaint import API, IopaintApi, iopaint_errors
from .native import PREFIX, NativeApi, native_errors
from .progress import Progress

MAX_BODY = 256 << 20  # IOPaint's bodies are base64: a 100 MP PNG is well under this

EDITS = web.AppKey("edits", Edits)
IOPAINT = web.AppKey("iopaint", IopaintApi)
NATIVE = web.AppKey("native", NativeApi)
PROGRESS = web.AppKey("progress", Progress)


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """How the APIs are served: who may call them, where uploads go, the limits."""

    work_dir: Path
    access: Access
    model: str | None = None  # IOPaint's current model at start (default: lama when the farm has it, else cv2)
    max_body: int = MAX_BODY
    max_pixels: int = 100_000_000
    retention: float = RETENTION


def create_app(farm: Farm, config: ServeConfig) -> web.Application:
    app = web.Application(
        middlewares=[_access(config.access), iopaint_errors, native_errors], client_max_size=config.max_body
    )
    shutil.rmtree(config.work_dir / "uploads", ignore_errors=True)  # a previous run's: their callers are gone
    edits = Edits(farm, config.work_dir, retention=config.retention)
    app[EDITS] = edits
    app[IOPAINT] = iopaint = IopaintApi(edits, model=config.model, max_pixels=config.max_pixels)
    app[NATIVE] = native = NativeApi(edits, max_upload=config.max_body, max_pixels=config.max_pixels)
    app.add_routes(iopaint.routes())
    app.add_routes(native.routes())
    app.router.add_get("/", _index)
    app[PROGRESS] = progress = Progress(app, edits, config.access)
    iopaint.on_finish.append(progress.finished)
    app.cleanup_ctx.append(_closing)
    return app


def make_runner(app: web.Application) -> web.AppRunner:
    """The runner ``lanfarm serve`` uses: a request whose caller hangs up is cancelled, and so is its edit
    (a Krita user who gives up frees the worker)."""
    return web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=5.0)


async def _closing(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[NATIVE].close()
    await app[PROGRESS].close()
    app[EDITS].close()


async def _index(request: web.Request) -> web.Response:
    return web.json_response({"lanfarm": True, "iopaint_api": API, "farm_api": PREFIX, "socketio": "/socket.io/"})


def _access(access: Access) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        path, remote = request.path, request.remote
        if path.startswith(PREFIX):
            auth = request.headers.get("Authorization", "")
            browser = "Origin" in request.headers and not request.headers.get("Authorization")
            if browser or not access.native_allowed(remote, auth):
                message = (
                    "a web page may not use the farm API without the farm token"
                    if browser and is_this_pc(remote)
                    else "missing or wrong farm token (Authorization: Bearer <token>)"
                )
                return web.json_response({"error": {"code": "unauthorised", "message": message}}, status=401)
        elif path.startswith((API, "/socket.io")) or path == "/":
            if not access.iopaint_allowed(remote):
                detail = f"{remote} is not allowed to use this farm's IOPaint API (lanfarm serve --allow)"
                body = {"error": "Forbidden", "detail": detail, "body": "", "errors": f"403: {detail}"}
                return web.json_response(body, status=403)
        elif not is_this_pc(remote):
            return web.json_response({"error": {"code": "not_found", "message": "no such route"}}, status=404)
        return await handler(request)

    return check
