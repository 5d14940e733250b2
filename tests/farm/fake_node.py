"""Protocol double of a node for discovery tests: ``/v1/health`` and ``/v1/info`` per docs/protocol.md.

Stands in for ``lanfarm node`` until the real one lands. Run as a script it serves on ``--host``/
``--port`` and, with ``--mdns-interface``, registers its ``_lanfarm._tcp.local.`` advert there; SIGTERM
unregisters it (mDNS goodbye) before exiting. Prints ``ready PORT`` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from aiohttp import web

from farm.advert import SERVICE_TYPE, NodeAdvert
from farm.version import PROTOCOL_VERSION, __version__


def info(node_id: str, name: str) -> dict[str, Any]:
    return {"id": node_id, "name": name, "version": __version__, "protocol": PROTOCOL_VERSION,
            "lite": True, "hardware": {"cpu": "Fake CPU", "cpu_count": 2, "ram_total": 8 << 30,
                                       "backend": "cpu", "gpus": []},
            "engines": [{"id": "cv2", "title": "OpenCV inpainting"}], "slots": {"total": 2, "free": 2},
            "queue": 0, "uptime": 1.0, "jobs": {"done": 0, "failed": 0}}


def create_app(node_id: str, name: str, token: str) -> web.Application:
    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "protocol": PROTOCOL_VERSION, "id": node_id})

    async def node_info(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"error": {"code": "unauthorised",
                                                "message": "missing or wrong farm token"}}, status=401)
        return web.json_response(info(node_id, name))

    app = web.Application()
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/info", node_info)
    return app


def advert(node_id: str, name: str) -> NodeAdvert:
    return NodeAdvert(id=node_id, name=name, version=__version__, proto=PROTOCOL_VERSION,
                      engines=("cv2",), slots=2, free=2)


async def serve(args: argparse.Namespace) -> None:
    runner = web.AppRunner(create_app(args.id, args.name, args.token))
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = runner.addresses[0][1]
    azc = None
    if args.mdns_interface:
        from zeroconf import IPVersion, ServiceInfo
        from zeroconf.asyncio import AsyncZeroconf

        azc = AsyncZeroconf(interfaces=[args.mdns_interface], ip_version=IPVersion.V4Only)
        service = ServiceInfo(SERVICE_TYPE, f"{args.name}.{SERVICE_TYPE}", port=port,
                              properties=advert(args.id, args.name).to_txt(),
                              parsed_addresses=[args.host])
        await azc.async_register_service(service)
    print(f"ready {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    if azc is not None:
        await azc.async_unregister_all_services()
        await azc.async_close()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--id", default="fake-node")
    parser.add_argument("--name", default="fake")
    parser.add_argument("--token", required=True)
    parser.add_argument("--mdns-interface")
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
