"""The owner's routes: pause, resume (a drain too), the status page and the metrics.

``POST /v1/pause`` and ``/v1/resume`` are signed like every other route; ``GET /`` is public (it
holds nothing secret and never the token; its buttons sign their requests in the browser, see
``node/status_page.py``); ``GET /metrics`` is signed unless the node's ``metrics_open`` setting opens it.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from farm.local.macs import mac_addresses
from node import keys
from node.errors import BadRequest
from node.metrics import install as install_metrics
from node.metrics import metrics
from node.requests import parse_json
from node.status_page import status_page

MAX_PAUSE = 366 * 86400.0
MACS: web.AppKey[tuple[str, ...]] = web.AppKey("macs")  # this PC's MAC addresses, read once at start


def setup_owner_routes(app: web.Application) -> None:
    app[MACS] = mac_addresses()
    install_metrics(app)
    r = app.router
    r.add_post("/v1/pause", pause)
    r.add_post("/v1/resume", resume)
    r.add_get("/", status_page, allow_head=False)
    r.add_get("/metrics", metrics, allow_head=False)


def macs(app: web.Application) -> list[str]:
    found: tuple[str, ...] = app[MACS]
    return [*found]


def parse_pause(body: bytes) -> tuple[float | None, str]:
    """``{"for": seconds or null, "reason": text}`` (both optional; an empty body: until resumed)."""
    data: Any = parse_json(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise BadRequest('the body is a JSON object: {"for": seconds or null, "reason": text}')
    unknown = sorted(set(data) - {"for", "reason"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} (known: for, reason)")
    seconds = data.get("for")
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
            raise BadRequest(f"'for' is a number of seconds or null, got {seconds!r}")
        if not 0 < seconds <= MAX_PAUSE:
            raise BadRequest(f"'for' is 1 s to a year, got {seconds!r}")
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 200:
        raise BadRequest("'reason' is a text of at most 200 characters")
    return (float(seconds) if seconds is not None else None), reason


async def pause(request: web.Request) -> web.Response:
    seconds, reason = parse_pause(await request.read())
    return web.json_response(request.app[keys.STEWARD].pause(seconds, reason).to_dict())


async def resume(request: web.Request) -> web.Response:
    return web.json_response(request.app[keys.STEWARD].resume().to_dict())
