"""``GET /v1/identity``: the node proves it holds the farm token, bound to the certificate it serves.

The farm sends a fresh nonce (the request itself is signed, so only the farm asks); the node answers
``farm.core.signing.identity_proof(token, nonce, id, fingerprint)``. The farm pins the certificate only
after checking that answer over a connection showing that very certificate (docs/protocol.md).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from farm.core import signing
from node import keys
from node.errors import BadRequest


def tls_fields(app: web.Application) -> dict[str, Any]:
    """What ``/v1/health`` and ``/v1/info`` say of TLS: whether it is served, and the certificate's SHA-256."""
    fingerprint = app[keys.FINGERPRINT]
    return {"tls": bool(fingerprint), "fingerprint": fingerprint}


async def identity(request: web.Request) -> web.Response:
    nonce = request.query.get("nonce", "")
    if not signing.IDENTITY_NONCE.fullmatch(nonce):
        raise BadRequest("nonce must be 32 lowercase hex digits")
    app = request.app
    node_id, fingerprint = app[keys.NODE_ID], app[keys.FINGERPRINT]
    return web.json_response(
        {
            "id": node_id,
            "name": app[keys.CONFIG].display_name,
            "fingerprint": fingerprint,
            "proof": signing.identity_proof(app[keys.TOKEN], nonce, node_id, fingerprint),
        }
    )
