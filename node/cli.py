"""``lanfarm node``: run this PC as a headless farm node until SIGINT/SIGTERM (then drain and exit 0)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path

from aiohttp import web

from farm.engines.devices import device_override, slot_devices
from farm.engines.installed import default_registry
from farm.errors import FarmError
from farm.local import hardware as hw
from farm.local import runfiles
from farm.local.settings import Origin
from farm.local.token import TOKEN_ENV, load_or_create_token, resolve_token, token_path
from node import control, keys
from node.app import create_app
from node.config import (
    SETTINGS,
    ConfigError,
    NodeConfig,
    claim_node_id,
    default_file,
    describe,
    load,
)
from node.guard import GuardedSite, guard_limits
from node.tls import NodeCertificate, load_certificate, load_or_create_certificate

log = logging.getLogger(__name__)

HELP = "run this PC as a farm node (headless)"  # `lanfarm --help` lists it so


def configure(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    control.add_actions(parser)
    a("--host", help="address to listen on (default 0.0.0.0: every interface)")
    a("--port", type=int, help="TCP port (default 7788; 0 picks a free one)")
    a("--name", help="name shown in the app (default: this PC's host name)")
    a("--slots", type=int, help="jobs at once (default: one per GPU, else one)")
    a("--device", help="device for the AI engines: auto (default: cuda, else mps, else cpu), cpu, cuda, cuda:N, mps")
    a(
        "--gpu",
        type=_gpu_index,
        action="append",
        metavar="N",
        help="use GPU number N, one slot on it (repeatable: one slot per GPU listed; default: one slot per GPU)",
    )
    a("--models-dir", type=Path, help="folder of model files (default: the data folder's models/)")
    a(
        "--token-file",
        type=Path,
        help=f"file holding the farm token (default: ${TOKEN_ENV}, else the token file of `lanfarm token --path`)",
    )
    parser.add_argument(
        "--new-farm",
        action="store_true",
        help="no farm token on this PC yet: make one (a new farm) instead of refusing to start",
    )
    a(
        "--advertise",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="announce this node over mDNS (default: yes)",
    )
    a(
        "--advertise-on",
        dest="interfaces",
        action="append",
        metavar="ADDR",
        help="announce this node only on the interface with this IPv4 address (repeatable; default: all)",
    )
    a("--interface", dest="interfaces", action="append", help=argparse.SUPPRESS)  # the old name of --advertise-on
    # tests and benchmarks: the SIMULATED GPU engine 'sim' (kept out of the help)
    a("--simulate", action=argparse.BooleanOptionalAction, default=None, help=argparse.SUPPRESS)
    a("--simulate-slowdown", type=float, help=argparse.SUPPRESS)
    a("--simulate-failures", action=argparse.BooleanOptionalAction, default=None, help=argparse.SUPPRESS)
    control.add_owner_settings(parser)
    a("--max-upload-mb", type=float, help="largest upload accepted (default 256)")
    a("--blob-cache-mb", type=float, help="disk budget of the upload cache (default 4096)")
    a("--models-budget-mb", type=float, help="disk budget for models pushed to this node (default 0: the disk's)")
    a("--job-timeout", type=float, help="seconds before a job fails (default 1800; 0: never)")
    a("--result-retention", type=float, help="seconds results are kept after a job ends (default 3600)")
    a("--shutdown-grace", type=float, help="seconds running jobs may finish on shutdown (default 30)")
    a("--cert", type=Path, help="TLS certificate (PEM) of your own (default: one made on first start)")
    a("--key", type=Path, help="TLS private key (PEM) of --cert")
    a(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve https with a pinned certificate (default: yes; --no-tls: plain HTTP, for old setups)",
    )
    a("--config", type=Path, help="settings file (default: node.toml in the config folder)")
    a("--print-config", action="store_true", help="print the settings in effect and exit")
    parser.set_defaults(handler=handle)


def _gpu_index(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a GPU number (0, 1, ...)")
    return int(text)


def handle(args: argparse.Namespace) -> int:
    cli = {name: getattr(args, name, None) for name in SETTINGS}
    if args.gpu:
        one = f"cuda:{args.gpu[0]}" if len(args.gpu) == 1 else ""
        if args.device is not None and args.device.strip().lower() != one:
            shown = " ".join(f"--gpu {g}" for g in args.gpu)
            print(f"lanfarm node: {shown} and --device {args.device} disagree; give one", file=sys.stderr)
            return 2
        if one:
            cli["device"] = one  # one GPU: the same as --device cuda:N
        else:
            cli["gpus"] = tuple(args.gpu)
    config_file = args.config or default_file()
    try:
        config, origin = load(cli, config_file=config_file)
        if args.action != "run":
            return control.handle(args, config, origin["token_file"], node_token)
        if args.print_config:
            print(f"# lanfarm node settings (file: {config_file})")
            print(describe(config, origin))
            print(describe_token(config, origin["token_file"]))
            return 0
        token = node_token(config, origin["token_file"], new_farm=args.new_farm)
        certificate = node_certificate(config)
        ssl_context = certificate.server_context() if certificate else None
    except (ConfigError, OSError, ValueError, ssl.SSLError) as exc:
        print(f"lanfarm node: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(config, token=token, ssl_context=ssl_context, certificate=certificate))
    except KeyboardInterrupt:  # Windows, where the loop has no signal handlers
        return 0
    except FarmError as exc:  # a GPU number this PC lacks, say
        print(f"lanfarm node: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"lanfarm node: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1


NO_TOKEN = (
    "this PC has no farm token, so no farm could use this node. On a PC of the farm run "
    "`lanfarm token`, save the line in a file here (readable only by you) and start with "
    "`lanfarm node --token-file FILE` (or set LANFARM_TOKEN); or start a new farm with `lanfarm node --new-farm`"
)


def node_token(config: NodeConfig, origin: Origin = "cli", *, new_farm: bool = False) -> str:
    """The farm token (farm.local.token): --token-file > LANFARM_TOKEN > node.toml's token_file > the saved
    token file. None of them: ConfigError saying how to get the farm's, unless ``new_farm`` makes one."""
    found = resolve_token(config.token_file, origin=origin).value
    if found:
        return found
    if not new_farm:
        raise ConfigError(NO_TOKEN)
    token = load_or_create_token()
    print(f"lanfarm node: started a new farm; its token is in {token_path()} (`lanfarm token` prints it)")
    return token


def describe_token(config: NodeConfig, origin: Origin = "cli") -> str:
    """A comment line saying where the farm token comes from (never the token itself)."""
    try:
        found = resolve_token(config.token_file, origin=origin)
    except (OSError, ValueError) as exc:
        return f"# farm token: cannot be read: {exc}"
    if found.value is None:
        return "# farm token: none yet (created in the token file on first start)"
    return f"# farm token: from {found.source} ({found.origin})"


def node_certificate(config: NodeConfig) -> NodeCertificate | None:
    """The certificate to serve: ``--cert``/``--key``, else this node's own (made on first start); None
    with ``--no-tls``."""
    if not config.tls:
        return None
    if config.cert is not None and config.key is not None:
        return load_certificate(config.cert, config.key)
    return load_or_create_certificate(name=config.display_name)


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket, bound now so that port 0 becomes a real port before the advert."""
    family, kind, proto, _name, addr = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    if os.name != "nt":  # on Windows SO_REUSEADDR would let two nodes share a port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    return sock


async def serve(
    config: NodeConfig,
    *,
    token: str,
    ssl_context: ssl.SSLContext | None = None,
    certificate: NodeCertificate | None = None,
) -> int:
    hardware = hw.probe()
    devices = slot_devices(  # before binding: a GPU this PC lacks is refused with nothing left open
        len(hardware.gpus),
        backend=hardware.backend,
        gpus=config.gpus,
        device=device_override(config.device or None),
        slots=config.slots,
    )
    sock = bind(config.host, config.port)
    config = dataclasses.replace(config, port=sock.getsockname()[1])
    by_device = {
        d: default_registry(
            config.models_path,
            device=d,
            simulate=config.simulate,
            sim_slowdown=config.simulate_slowdown,
            sim_fail=config.simulate_failures,
        )
        for d in dict.fromkeys(devices)
    }
    registry = by_device[devices[0]]
    claim = claim_node_id()
    fingerprint = certificate.fingerprint if certificate else ""
    app = create_app(
        config,
        registry=registry,
        token=token,
        node_id=claim.node_id,
        hardware=hardware,
        slot_registries=[by_device[d] for d in devices],
        slot_devices=devices,
        fingerprint=fingerprint,
    )
    runner = web.AppRunner(app, handle_signals=False)
    runfile: Path | None = None
    await runner.setup()
    try:
        await GuardedSite(runner, sock, ssl_context=ssl_context, limits=guard_limits()).start()
        scheme = "https" if ssl_context else "http"
        host = f"[{config.host}]" if ":" in config.host else config.host
        print(f"lanfarm node listening on {scheme}://{host}:{config.port}", flush=True)
        runfile = runfiles.record(
            runfiles.RunningNode(
                claim.node_id,
                config.display_name,
                os.getpid(),
                config.port,
                runfiles.local_url(scheme, config.host, config.port),
            )
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Windows has no loop signal handlers: Ctrl+C raises KeyboardInterrupt instead
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        jobs = app[keys.RUNNER]
        jobs.drain()
        if not await jobs.wait_idle(config.shutdown_grace):
            log.warning("jobs still running after %g s; stopping them", config.shutdown_grace)
    finally:
        if runfile is not None:
            runfiles.forget(runfile)
        await runner.cleanup()
        claim.release()
    return 0
