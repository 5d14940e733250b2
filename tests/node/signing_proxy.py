"""``python -m tests.node.signing_proxy NODE_URL TOKEN``: a plain-HTTP proxy on 127.0.0.1 that signs every
request as the farm does (HMAC over its exact bytes, a fresh nonce) and forwards it to the node.

For API fuzzers that cannot sign (schemathesis sends fixed headers; a signed request is refused the
second time). Prints ``proxy listening on http://127.0.0.1:PORT``. Test tooling, never for a farm.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
from aiohttp import web

from farm.runtime.client import signed_by

HOP = {"host", "content-length", "transfer-encoding", "connection", "authorization"}


def proxy_app(node_url: str, token: str) -> web.Application:
    session: aiohttp.ClientSession | None = None

    async def forward(request: web.Request) -> web.StreamResponse:
        assert session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        if request.path == "/v1/events" and "upgrade" not in request.headers.get("connection", "").lower():
            headers.pop("Upgrade", None)
        async with session.request(
            request.method, node_url + request.path_qs, data=body or None, headers=headers, allow_redirects=False
        ) as resp:
            data = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP | {"content-encoding"}}
            return web.Response(status=resp.status, body=data, headers=out)

    async def lifecycle(_app: web.Application):  # type: ignore[no-untyped-def]
        nonlocal session
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False), middlewares=signed_by(token))
        yield
        await session.close()

    app = web.Application(client_max_size=1 << 30)
    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def main(node_url: str, token: str) -> None:
    runner = web.AppRunner(proxy_app(node_url.rstrip("/"), token))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"proxy listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
