"""The farm token check: one middleware for every route except health, WebSocket handshakes included."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from farm.local.token import tokens_equal
from node import keys
from node.errors import Unauthorised

PUBLIC_PATHS = frozenset({"/v1/health"})


def authorised(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header value carries the farm token (constant-time)."""
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        return tokens_equal(given.strip(), token)
    except UnicodeEncodeError:  # undecodable header bytes can never be the token
        return False


def request_authorised(request: web.Request) -> bool:
    return authorised(request.headers.get("Authorization", ""), request.app[keys.TOKEN])


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path not in PUBLIC_PATHS and not request_authorised(request):
        raise Unauthorised()
    return await handler(request)
