"""IOPaint's socket.io progress events, with python-socketio: ``diffusion_progress`` ``{"step": n}``
while an edit of the IOPaint API runs, ``diffusion_finish`` when an inpaint request has answered.

IOPaint's web UI counts ``step + 1`` of its ``sdSteps``; the farm reports a fraction per edit, so the
step sent is that fraction of the edit's steps (the SD ``steps`` param, else 1).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import engineio.async_drivers.aiohttp  # noqa: F401 - engineio loads it by name; imported here so bundles see it
import socketio
from aiohttp import web

from .access import Access
from .edits import Edit, Edits

log = logging.getLogger(__name__)


class Progress:
    """A socket.io server on the app (``/socket.io/``) fed by the IOPaint API's edits."""

    def __init__(self, app: web.Application, edits: Edits, access: Access) -> None:
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*", logger=False)
        self.sio.attach(app)
        self.access = access
        self._sends: set[asyncio.Future[None]] = set()
        self.sio.on("connect", self._connect)
        edits.progress_listeners.append(self._on_progress)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        request = environ.get("aiohttp.request")
        remote = request.remote if request is not None else None
        return self.access.iopaint_allowed(remote)

    def _on_progress(self, edit: Edit, fraction: float) -> None:
        if edit.source != "iopaint":
            return
        steps = edit.job.spec.params.get("steps", 1)
        total = steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else 1
        self._send("diffusion_progress", {"step": max(0, round(fraction * total) - 1)})

    def finished(self) -> None:
        self._send("diffusion_finish", None)

    def _send(self, event: str, data: Any) -> None:
        send = asyncio.ensure_future(self.sio.emit(event, data))
        self._sends.add(send)
        send.add_done_callback(self._sends.discard)

    async def close(self) -> None:
        await asyncio.gather(*self._sends, return_exceptions=True)
        for sid in list(self.sio.manager.get_participants("/", None)):
            await self.sio.disconnect(sid[0] if isinstance(sid, tuple) else sid)
