"""Signed requests (protocol 2): one middleware for every route except health, WebSocket handshakes
included. The farm token never crosses the wire; the scheme is :mod:`farm.core.signing`."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from aiohttp import web

from farm.core import signing
from farm.core.protocol import PROTOCOL_VERSION
from node import keys
from node.errors import Unauthorised

PUBLIC_PATHS = frozenset({"/v1/health", "/"})  # "/": the status page (nothing secret on it)
NONCES: web.AppKey[NonceBook] = web.AppKey("nonces")
BEARER_MESSAGE = (
    f"this node speaks protocol {PROTOCOL_VERSION}: requests are signed (since protocol 2) and the farm token "
    "is never sent; "
    "update LAN Farm on the PC that sent this"
)


class NonceBook:
    """Nonces seen within twice the clock window: a request is accepted once, never replayed."""

    def __init__(self, keep: float = 2 * signing.WINDOW, limit: int = 200_000) -> None:
        self.keep = keep
        self.limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()

    def fresh(self, nonce: str, now: float) -> bool:
        """Record ``nonce``; False if it was seen already (a replay)."""
        while self._seen and (now - next(iter(self._seen.values())) > self.keep or len(self._seen) > self.limit):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            return False
        self._seen[nonce] = now
        return True


def _digest_without_body(request: web.Request) -> str | None:
    """The body digest when the body need not be read: a blob's name, or nothing sent."""
    if request.method == "PUT" and "sha" in request.match_info:
        return request.match_info["sha"].lower()  # the blob store checks the bytes against it
    if not request.can_read_body:
        return signing.EMPTY_DIGEST
    return None


def refusal(request: web.Request, digest: str, *, record: bool) -> Unauthorised | None:
    """Why this request is refused, or None; ``record`` remembers its nonce (the real check does)."""
    header = request.headers.get("Authorization", "")
    signature = signing.parse(header)
    if signature is None:
        if header.strip().lower().startswith("bearer "):
            return Unauthorised(BEARER_MESSAGE)
        return Unauthorised()
    now = time.time()
    reason = signing.check(request.app[keys.TOKEN], signature, request.method, request.path_qs, digest, now=now)
    if reason.startswith("clock"):
        return Unauthorised(f"{reason}: set the clocks of the farm's PCs (they differ by more than 2 minutes)")
    if reason:
        return Unauthorised()
    if record and not request.app[NONCES].fresh(signature.nonce, now):
        return Unauthorised("this signed request was already used (a replay)")
    return None


def peek_authorised(request: web.Request) -> bool:
    """For ``Expect: 100-continue``: would the request pass (its nonce not yet recorded)?"""
    digest = _digest_without_body(request)
    return digest is not None and refusal(request, digest, record=False) is None


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    public = request.path in PUBLIC_PATHS or (request.path == "/metrics" and request.app[keys.CONFIG].metrics_open)
    if not public:
        digest = _digest_without_body(request)
        if digest is None:
            digest = signing.body_digest(await request.read())  # small JSON bodies (jobs, drain)
        refused = refusal(request, digest, record=True)
        if refused is not None:
            raise refused
    return await handler(request)
