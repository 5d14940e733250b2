"""The farm's own API, version 1 (``/farm/v1``): submit edits, follow them, fetch results, cancel,
list nodes and engines. ``docs/farm-api.md`` describes it, ``docs/farm-api.yaml`` is its OpenAPI file.

Errors have the node protocol's shape: ``{"error": {"code": "<word>", "message": "<for a person>"}}``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import weakref
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, WSCloseCode, WSMsgType, web
from PIL import Image

from farm.core.spec import EditSpec
from farm.errors import FarmError, ImageError, SpecError
from farm.imaging.codec import decode_image, decode_mask
from farm.runtime.farm import FarmEvent, JobEvent, NodeEvent
from farm.version import __version__

from .edits import Edit, Edits

log = logging.getLogger(__name__)
PREFIX = "/farm/v1"
API_VERSION = 1
QUEUE_LIMIT = 1000  # messages a WebSocket subscriber may fall behind before it loses the oldest


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> web.Response:
        return web.json_response({"error": {"code": self.code, "message": self.message}}, status=self.status)


class NativeApi:
    """The routes of ``/farm/v1`` over :class:`Edits` and the farm's snapshots."""

    def __init__(self, edits: Edits, *, max_upload: int, max_pixels: int = 100_000_000) -> None:
        self.edits = edits
        self.farm = edits.farm
        self.max_upload = max_upload
        self.max_pixels = max_pixels
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._unsubscribe = self.farm.subscribe(self._on_farm_event)
        edits.progress_listeners.append(self._on_progress)

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [
            web.get(f"{p}/info", self.info),
            web.get(f"{p}/engines", self.engines),
            web.get(f"{p}/nodes", self.nodes),
            web.post(f"{p}/edits", self.submit),
            web.get(f"{p}/edits", self.list_edits),
            web.get(f"{p}/edits/{{id}}", self.get_edit),
            web.get(f"{p}/edits/{{id}}/result", self.result),
            web.delete(f"{p}/edits/{{id}}", self.cancel),
            web.get(f"{p}/events", self.events),
        ]

    async def close(self) -> None:
        self._unsubscribe()
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"lanfarm serve shutting down")

    # ------------------------------------------------------------------ snapshots
    async def info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "api": API_VERSION,
                "version": __version__,
                "workers": len(self.farm.worker_ids),
                "queued": self.farm.queued(),
                "paused": self.farm.paused,
            }
        )

    async def engines(self, request: web.Request) -> web.Response:
        return web.json_response({"engines": [d.to_dict() for d in self.farm.engines()]})

    async def nodes(self, request: web.Request) -> web.Response:
        nodes = [
            {
                "id": r.id,
                "name": r.name,
                "address": str(r.address),
                "state": str(r.state),
                "source": str(r.source),
                "engines": list(r.engines),
                "gpu": r.gpu,
            }
            for r in self.farm.nodes()
        ]
        workers = [
            {
                "id": w.id,
                "name": w.name,
                "local": w.local,
                "address": w.address,
                "job": w.job,
                "running": list(w.status.running) if w.status else [],
                "progress": w.progress,
                "done": w.stats.done,
                "failed": w.stats.failed,
            }
            for w in self.farm.workers()
        ]
        unreached = [{"address": str(u.address), "error": u.error} for u in self.farm.unreached()]
        return web.json_response({"nodes": nodes, "workers": workers, "unreached": unreached})

    # ------------------------------------------------------------------ edits
    async def submit(self, request: web.Request) -> web.Response:
        if request.content_type.startswith("multipart/"):
            return await self._submit_upload(request)
        if request.content_type != "application/json":
            raise ApiError(415, "bad_request", "send multipart/form-data (spec, image, mask) or application/json")
        body = await _json_body(request)
        spec = self._spec(body.get("spec"))
        paths = body.get("paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            raise ApiError(422, "invalid", "paths must be a list of files or folders on the serving PC")
        out_dir = body.get("out_dir")
        if not isinstance(out_dir, str) or not Path(out_dir).is_absolute():
            raise ApiError(422, "invalid", "out_dir must be an absolute folder on the serving PC")
        mask = body.get("mask")
        if mask is not None and (not isinstance(mask, str) or not Path(mask).exists()):
            raise ApiError(422, "invalid", f"mask {mask!r} does not exist on the serving PC")
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise ApiError(422, "invalid", f"{missing[0]} does not exist on the serving PC")
        try:
            edits, batch = await self.edits.submit_paths(
                [Path(p) for p in paths], Path(mask) if mask else None, spec, Path(out_dir)
            )
        except (FarmError, OSError) as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        return web.json_response(
            {
                "edits": [self.edits.to_dict(e) for e in edits],
                "problems": [{"path": str(p.path), "reason": p.reason} for p in batch.problems],
                "unmasked": [str(p) for p in batch.unmasked],
            },
            status=202,
        )

    async def _submit_upload(self, request: web.Request) -> web.Response:
        parts: dict[str, bytes] = {}
        reader = await request.multipart()
        total = 0
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name not in ("spec", "image", "mask"):
                raise ApiError(422, "invalid", "the form takes the parts spec, image and mask")
            chunks = []
            while chunk := await part.read_chunk(1 << 16):
                total += len(chunk)
                if total > self.max_upload:
                    raise ApiError(413, "too_large", f"upload over the serve's limit of {self.max_upload} bytes")
                chunks.append(chunk)
            parts[part.name] = b"".join(chunks)
        if "image" not in parts or "spec" not in parts:
            raise ApiError(422, "invalid", "the form needs a spec part (EditSpec JSON) and an image part")
        try:
            spec = self._spec(json.loads(parts["spec"]))
        except (ValueError, UnicodeDecodeError):
            raise ApiError(422, "bad_spec", "spec is not valid JSON") from None
        image, mask = parts["image"], parts.get("mask")
        fmt = await asyncio.to_thread(self._check_images, image, mask)
        try:
            edit = await self.edits.submit_upload(image, fmt, mask, spec)
        except FarmError as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        return web.json_response({"edits": [self.edits.to_dict(edit)], "problems": [], "unmasked": []}, status=202)

    def _check_images(self, image: bytes, mask: bytes | None) -> str:
        """Refuse a bad image or mask now, with what is wrong, rather than as a failed job later."""
        try:
            pic = decode_image(image, max_pixels=self.max_pixels)
            if mask is not None:
                decode_mask(mask, pic.width, pic.height, max_pixels=self.max_pixels)
        except ImageError as exc:
            raise ApiError(422, "bad_image", str(exc)) from None
        return Image.open(io.BytesIO(image)).format or "PNG"

    def _spec(self, data: Any) -> EditSpec:
        try:
            spec = EditSpec.from_dict(data)
        except SpecError as exc:
            raise ApiError(422, "bad_spec", str(exc)) from None
        engines = {d.id: d for d in self.farm.engines()}
        desc = engines.get(spec.engine)
        if desc is None:
            have = ", ".join(engines)
            raise ApiError(422, "engine", f"no worker of the farm has engine {spec.engine!r} (it has: {have})")
        if spec.op not in desc.operations:
            raise ApiError(422, "bad_spec", f"engine {spec.engine!r} cannot {spec.op}")
        try:
            desc.params.validate(spec.params)
        except SpecError as exc:
            raise ApiError(422, "bad_spec", str(exc)) from None
        return spec

    def _edit(self, request: web.Request) -> Edit:
        edit = self.edits.get(request.match_info["id"])
        if edit is None:
            raise ApiError(404, "not_found", "no such edit (or it is past its retention)")
        return edit

    async def list_edits(self, request: web.Request) -> web.Response:
        return web.json_response({"edits": [self.edits.to_dict(e) for e in self.edits.all()]})

    async def get_edit(self, request: web.Request) -> web.Response:
        return web.json_response(self.edits.to_dict(self._edit(request)))

    async def result(self, request: web.Request) -> web.Response:
        edit = self._edit(request)
        if edit.job.state.value != "done":
            raise ApiError(409, "not_done", f"the edit is {edit.job.state.value}")
        try:
            data = await self.edits.result(edit)
        except FarmError as exc:
            raise ApiError(404, "not_found", f"the result is gone: {exc}") from None
        content_type = self.edits.to_dict(edit)["content_type"]
        return web.Response(body=data, content_type=content_type, headers={"X-Farm-Worker": edit.job.worker or ""})

    async def cancel(self, request: web.Request) -> web.Response:
        edit = self._edit(request)
        self.edits.cancel(edit)
        return web.json_response(self.edits.to_dict(edit))

    # ------------------------------------------------------------------ events
    async def events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        self._sockets.add(ws)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues.add(queue)
        sender = asyncio.ensure_future(self._send(ws, queue))
        try:
            await ws.send_json({"type": "hello", "api": API_VERSION, "version": __version__})
            async for msg in ws:
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self._queues.discard(queue)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        return ws

    async def _send(self, ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            message = await queue.get()
            try:
                await ws.send_json(message)
            except (ConnectionError, RuntimeError):
                return

    def _on_progress(self, edit: Edit, fraction: float) -> None:
        self._publish({"type": "progress", "id": edit.id, "progress": fraction})

    def _publish(self, message: dict[str, Any]) -> None:
        for queue in list(self._queues):
            if queue.qsize() >= QUEUE_LIMIT:
                queue.get_nowait()
            queue.put_nowait(message)

    def _on_farm_event(self, event: FarmEvent) -> None:
        if isinstance(event, NodeEvent):
            self._publish(
                {
                    "type": "node",
                    "id": event.worker_id,
                    "name": event.name,
                    "online": event.online,
                    "reason": event.reason,
                    "address": event.address,
                    "authorised": event.authorised,
                }
            )
            return
        if not isinstance(event, JobEvent) or event.progress is not None:
            return
        edit = self.edits.get(event.job.id)
        if edit is not None:
            self._publish({"type": "edit", "edit": self.edits.to_dict(edit)})


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body


@web.middleware
async def native_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith(PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPRequestEntityTooLarge as exc:
        return ApiError(413, "too_large", f"body over the serve's limit ({exc.text})").response()
    except web.HTTPNotFound:
        return ApiError(404, "not_found", f"no route {request.path}").response()
    except web.HTTPMethodNotAllowed:
        return ApiError(405, "method_not_allowed", f"{request.method} is not allowed on {request.path}").response()
