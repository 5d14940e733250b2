"""FAKES for the lab, run inside a host: machines that pose as a LAN Farm node without being one.

``python -m tests.lab.impostors fake --host IP --port P --home DIR --jobs FILE``
    says all the right things over TLS (its own certificate) but holds no farm token; every job it is
    sent is appended to FILE.
``python -m tests.lab.impostors mitm --host IP --port P --home DIR --target IP:PORT``
    a man in the middle: TLS with a certificate of its own, every byte relayed to the real node.
``python -m tests.lab.impostors old --host IP --port P``
    an old LAN Farm node (protocol 1, plain HTTP): only its /v1/health.

Each prints ``listening`` once it accepts connections and runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
from pathlib import Path

from aiohttp import web

from farm.core.protocol import PROTOCOL_VERSION
from node.tls import load_or_create_certificate


def fake_app(fingerprint: str, jobs: Path) -> web.Application:
    info = {"id": "fake-node", "name": "fake", "protocol": PROTOCOL_VERSION, "tls": True, "fingerprint": fingerprint}
    info |= {"engines": [], "slots": {"total": 8, "free": 8}}

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "protocol": PROTOCOL_VERSION, "id": "fake-node", "tls": True,
                                  "fingerprint": fingerprint})  # fmt: skip

    async def identity(_request: web.Request) -> web.Response:
        return web.json_response({"id": "fake-node", "name": "fake", "fingerprint": fingerprint, "proof": "0" * 64})

    async def anything(request: web.Request) -> web.Response:
        if request.method in ("POST", "PUT"):
            with jobs.open("a") as fh:
                fh.write(json.dumps({"method": request.method, "path": request.path}) + "\n")
        return web.json_response(info)

    app = web.Application()
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/identity", identity)
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


def old_app() -> web.Application:
    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "protocol": 1, "id": "old-node-1"})

    app = web.Application()
    app.router.add_get("/v1/health", health)
    return app


async def serve_app(app: web.Application, host: str, port: int, ctx: ssl.SSLContext | None) -> None:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=ctx).start()
    print("listening", flush=True)
    await asyncio.Event().wait()


async def relay(host: str, port: int, target: str, ctx: ssl.SSLContext) -> None:
    to_host, to_port = target.rsplit(":", 1)
    upstream = ssl.create_default_context()
    upstream.check_hostname, upstream.verify_mode = False, ssl.CERT_NONE

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        node_r, node_w = await asyncio.open_connection(to_host, int(to_port), ssl=upstream)
        await asyncio.gather(pipe(r, node_w), pipe(node_r, w))

    server = await asyncio.start_server(handle, host, port, ssl=ctx)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["fake", "mitm", "old"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--jobs", type=Path)
    parser.add_argument("--target")
    args = parser.parse_args()
    if args.kind == "old":
        asyncio.run(serve_app(old_app(), args.host, args.port, None))
        return
    cert = load_or_create_certificate(args.home)
    if args.kind == "fake":
        asyncio.run(serve_app(fake_app(cert.fingerprint, args.jobs), args.host, args.port, cert.server_context()))
    else:
        asyncio.run(relay(args.host, args.port, args.target, cert.server_context()))


if __name__ == "__main__":
    main()
