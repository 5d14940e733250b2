"""``lanfarm serve``: a headless farm coordinator that other programs drive.

This PC's worker, the nodes found over mDNS and the saved peers, and the durable queue, as one farm
(:class:`farm.Farm`), serving IOPaint's HTTP API (``/api/v1``, with its socket.io events) and the
farm's own API (``/farm/v1``) on one port, 127.0.0.1 by default. See docs/farm-api.md and
docs/clients.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from farm.cli.common import add_discover_on
from farm.core.address import Address
from farm.engines.installed import default_registry
from farm.engines.registry import Registry
from farm.errors import FarmError
from farm.local.measurements import measurements_path
from farm.local.paths import cache_dir
from farm.local.peers import load_peers
from farm.local.settings import DISCOVERY_ENV, discovery_enabled, interfaces
from farm.local.store import default_store_path
from farm.local.token import load_or_create_token
from farm.runtime.farm import Farm, FarmSettings

if TYPE_CHECKING:
    from farm.api.app import ServeConfig

HELP = "serve the farm to other programs: IOPaint's HTTP API and the farm API (127.0.0.1 by default)"
DEFAULT_PORT = 8080  # IOPaint's, and the Krita plugin's fixed URL


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this PC only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}, IOPaint's)")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="ADDR[/BITS]",
        help="let this address or network use the IOPaint API without a token (repeatable; comma lists too)",
    )
    parser.add_argument("--model", help="IOPaint model at start (default: lama when the farm has it, else cv2)")
    parser.add_argument("--jobs", type=int, default=1, help="edits at once on this PC (default 1)")
    parser.add_argument("--max-body-mb", type=float, default=256.0, help="largest request body (default 256 MB)")
    parser.add_argument("--max-megapixels", type=float, default=100.0, help="refuse images larger than this")
    parser.add_argument("--work-dir", type=Path, help="folder for uploads and results (default: the cache folder)")
    parser.add_argument("--simulate", action="store_true", help=argparse.SUPPRESS)  # tests: the SIMULATED engine
    farm = parser.add_argument_group("farm (by default: this PC, nodes found over mDNS and saved peers)")
    farm.add_argument("--peer", action="append", default=[], metavar="HOST:PORT", help="also use this node")
    farm.add_argument("--no-local", action="store_true", help="do not edit on this PC, only on nodes")
    farm.add_argument("--local-only", action="store_true", help="use no nodes, only this PC")
    farm.add_argument("--no-discovery", action="store_true", help=f"no mDNS (also {DISCOVERY_ENV}=off)")
    add_discover_on(farm)  # --discover-on ADDR (--interface, the old name, still works)
    farm.add_argument("--token-file", type=Path, help="file holding the farm token")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from farm.api.access import Access, parse_networks  # the server's parts load when it runs
    from farm.api.app import ServeConfig

    try:
        if args.local_only and args.no_local:
            raise FarmError("--local-only and --no-local leave no worker")
        allow = parse_networks(args.allow)
        token = load_or_create_token(token_file=args.token_file)
        peers: tuple[Address, ...] = ()
        mdns = False
        if not args.local_only:
            peers = tuple(dict.fromkeys((*load_peers(), *(Address.parse(p) for p in args.peer))))
            mdns = discovery_enabled(False if args.no_discovery else None).value
        nodes = mdns or bool(peers)
        settings = FarmSettings(
            token=token,
            use_local=not args.no_local,
            local_slots=max(1, args.jobs),
            nodes=nodes,
            mdns=mdns,
            interfaces=interfaces(args.interface).value,
            peers=peers,
            store=default_store_path("serve-queue"),
            measurements=measurements_path(),
            retry_failed_on_resume=False,
            max_pixels=int(args.max_megapixels * 1e6),
            unrunnable_after=10.0,
        )
        config = ServeConfig(
            work_dir=(args.work_dir or cache_dir() / "serve").resolve(),
            access=Access(token, allow),
            model=args.model,
            max_body=int(args.max_body_mb * (1 << 20)),
            max_pixels=settings.max_pixels,
        )
        registry = default_registry(simulate=args.simulate)
    except (FarmError, OSError, ValueError) as exc:
        print(f"lanfarm serve: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(settings, config, registry, args.host, args.port))
    except OSError as exc:  # the port is taken, say
        print(f"lanfarm serve: {exc}", file=sys.stderr)
        return 1


async def serve(settings: FarmSettings, config: ServeConfig, registry: Registry, host: str, port: int) -> int:
    from aiohttp import web

    from farm.api.access import is_this_pc
    from farm.api.app import EDITS, create_app, make_runner

    async with Farm.open(settings, registry=registry) as farm:
        app = create_app(farm, config)
        resumed, stale = await app[EDITS].resume()
        runner = make_runner(app)
        await runner.setup()
        stop = _stop_on_signals()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound = runner.addresses[0]
            url = f"http://{_host(bound[0])}:{bound[1]}"
            print(f"lanfarm serve listening on {url}", flush=True)
            print(f"  IOPaint API: {url}/api/v1 (socket.io at /socket.io/)", flush=True)
            print(f"  farm API: {url}/farm/v1 (docs/farm-api.md)", flush=True)
            if is_this_pc(host):
                print("  only programs on this PC can reach it (--host 0.0.0.0 to serve other PCs)", flush=True)
            else:
                print("  other addresses: the farm API needs the farm token (`lanfarm token`)", flush=True)
                print(f"  {config.access.describe()}", flush=True)
            workers = "this PC" if settings.use_local else "no local worker"
            nodes = "nodes by mDNS and peers" if settings.mdns else f"{len(settings.peers)} peer(s), no mDNS"
            print(f"  farm: {workers}, {nodes if settings.nodes else 'no nodes'}", flush=True)
            if resumed or stale:
                print(
                    f"  durable queue: {len(resumed)} edit(s) resumed, "
                    f"{len(stale)} upload(s) of the previous run cancelled",
                    flush=True,
                )
            await stop.wait()
        finally:
            _restore_signals()
            await runner.cleanup()
    return 0


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT/SIGTERM (installed before the serve says it listens)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows: Ctrl+C raises instead
            loop.add_signal_handler(sig, stop.set)
    return stop


def _restore_signals() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(sig)
