"""HTTP handlers for /v1 (docs/protocol.md). They move values between HTTP and the runner; errors are raised
as NodeError / FarmError and answered by node.errors.error_middleware."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from farm.core.protocol import PROTOCOL_VERSION
from farm.local import hardware as hw
from farm.version import __version__
from node import keys
from node.auth import peek_authorised
from node.blobs import check_sha
from node.errors import NotDone, NotFound
from node.events import heartbeat
from node.guard import UPLOADS, UploadPace
from node.identity import identity, tls_fields
from node.jobs import NodeJob
from node.model_uploads import model_for_job
from node.owner import macs, setup_owner_routes
from node.requests import check_job_id, parse_job, parse_json


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/health", health, allow_head=False)
    r.add_get("/v1/info", info, allow_head=False)
    r.add_route("HEAD", "/v1/blobs/{sha}", head_blob)
    r.add_put("/v1/blobs/{sha}", put_blob, expect_handler=expect_blob)
    r.add_post("/v1/jobs", post_job)
    r.add_get("/v1/jobs/{id}", get_job, allow_head=False)
    r.add_get("/v1/jobs/{id}/result", get_result, allow_head=False)
    r.add_delete("/v1/jobs/{id}", delete_job)
    r.add_get("/v1/events", events, allow_head=False)
    r.add_post("/v1/drain", drain)
    setup_owner_routes(app)
    r.add_get("/v1/identity", identity, allow_head=False)


async def health(request: web.Request) -> web.Response:
    answer = {"ok": True, "protocol": PROTOCOL_VERSION, "id": request.app[keys.NODE_ID]}
    return web.json_response(answer | tls_fields(request.app))


async def info(request: web.Request) -> web.Response:
    app = request.app
    config, runner = app[keys.CONFIG], app[keys.RUNNER]
    hardware = await asyncio.to_thread(hw.refresh, app[keys.HARDWARE])
    library = app[keys.MODELS]
    models = [c.to_dict() for c in await asyncio.to_thread(library.cards)]
    space = await asyncio.to_thread(library.space)
    return web.json_response(
        {
            "id": app[keys.NODE_ID],
            "name": config.display_name,
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "lite": app[keys.REGISTRY].lite,
            "hardware": hardware.to_dict(),
            "engines": [d.to_dict() for d in app[keys.REGISTRY].descriptors()],
            "models": models,
            "slots": {"total": runner.slots, "free": runner.free},
            "queue": runner.queued,
            "uptime": round(app[keys.CLOCK]() - app[keys.STARTED], 3),
            "jobs": {"done": runner.book.done, "failed": runner.book.failed},
            "draining": runner.draining,
            **app[keys.STEWARD].current.to_dict(),
            "nimby": app[keys.STEWARD].nimby_note,
            "macs": macs(app),
            "devices": slot_devices(app),
            "model_space": space,
        }
        | tls_fields(app)
    )


def slot_devices(app: web.Application) -> list[str]:
    devices: list[str] = app[keys.SLOT_DEVICES]
    return [*devices]


async def head_blob(request: web.Request) -> web.Response:
    blobs = request.app[keys.BLOBS]
    sha = check_sha(request.match_info["sha"])
    if not blobs.has(sha):
        raise NotFound(f"no blob {sha}")
    return web.Response(status=200, headers={"X-Blob-Size": str(blobs.size(sha))})


async def expect_blob(request: web.Request) -> None:
    """``Expect: 100-continue``: invite the body only if it would be accepted (auth, size, not stored yet).

    Otherwise the handler answers (401, 413, 200) without the client sending a byte of the body.
    """
    if request.headers.get("Expect", "").lower() != "100-continue":
        return
    blobs = request.app[keys.BLOBS]
    sha = request.match_info["sha"].lower()
    length = request.content_length
    if peek_authorised(request) and (length is None or length <= blobs.max_size) and sha not in blobs:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def put_blob(request: web.Request) -> web.Response:
    blobs = request.app[keys.BLOBS]
    sha = check_sha(request.match_info["sha"])
    if blobs.has(sha):
        return web.json_response({"sha256": sha, "size": blobs.size(sha), "stored": False}, status=200)
    pace = request.app.get(UPLOADS) or UploadPace()
    body = pace.paced(request.content.iter_any())
    size = await blobs.receive(sha, body, declared=request.content_length, run_io=asyncio.to_thread)
    return web.json_response({"sha256": sha, "size": size, "stored": True}, status=201)


async def post_job(request: web.Request) -> web.Response:
    req = parse_job(parse_json(await request.read()))
    req = await model_for_job(request.app[keys.MODELS], req)  # by content id, not name
    job, new = request.app[keys.RUNNER].submit(req)
    return web.json_response(job.to_dict(), status=202 if new else 200)


def _job(request: web.Request) -> NodeJob:
    job_id = check_job_id(request.match_info["id"])
    job = request.app[keys.RUNNER].book.get(job_id)
    if job is None:
        raise NotFound(
            f"no job {job_id} on this node (finished jobs are kept for {request.app[keys.CONFIG].result_retention:g} s)"
        )
    return job


async def get_job(request: web.Request) -> web.Response:
    return web.json_response(_job(request).to_dict())


async def get_result(request: web.Request) -> web.Response:
    job = _job(request)
    if job.result is None:
        raise NotDone(f"job {job.id} is {job.state}; its result exists once it is done")
    path = request.app[keys.BLOBS].path(job.result.sha256)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise NotFound(f"the result of job {job.id} was evicted from this node's cache") from None
    return web.Response(
        body=data, content_type=job.result.content_type, headers={"X-Content-SHA256": job.result.sha256}
    )


async def delete_job(request: web.Request) -> web.Response:
    job = request.app[keys.RUNNER].cancel(_job(request))
    return web.json_response(job.to_dict())


async def drain(request: web.Request) -> web.Response:
    request.app[keys.RUNNER].drain()
    request.app[keys.STEWARD].check()
    return web.json_response({"draining": True})


async def events(request: web.Request) -> web.WebSocketResponse:
    """WebSocket of job changes, progress, load and heartbeats; messages from the client are ignored."""
    app = request.app
    hub = app[keys.HUB]
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    app[keys.SOCKETS].add(ws)
    queue = hub.subscribe()
    queue.put_nowait(heartbeat(app[keys.CLOCK]()))
    queue.put_nowait(app[keys.RUNNER].load())

    async def send() -> None:
        while True:
            await ws.send_json(await queue.get())

    sender = asyncio.get_running_loop().create_task(send(), name="events sender")
    try:
        async for _msg in ws:
            pass
    finally:
        hub.unsubscribe(queue)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
    return ws
