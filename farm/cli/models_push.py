"""``lanfarm models push MODEL [--node NAME | --peer HOST:PORT | --all]``: copy a model to nodes, with a
progress bar per node. MODEL is a name in this PC's models folder, or a path to a model file or
diffusers folder. Each node checks that the model loads before it offers it."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

from farm.cli.nodes import LISTEN, _discover
from farm.core.address import Address
from farm.core.nodetable import NodeRecord, NodeState
from farm.errors import FarmError
from farm.local.peers import load_peers
from farm.local.settings import discovery_enabled, interfaces
from farm.local.token import find_token
from farm.runtime.client import NodeClient, NodeError
from farm.runtime.model_push import DEFAULT_CHUNK, ModelPackage, PushError, PushResult, package, push_model


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str


def configure(parser: argparse.ArgumentParser) -> None:
    """The push options (on ``lanfarm models``)."""
    group = parser.add_argument_group("push (lanfarm models push MODEL ...)")
    group.add_argument("--node", action="append", default=[], metavar="NAME", help="push to this node (name or id)")
    group.add_argument(
        "--peer", action="append", default=[], metavar="HOST:PORT", help="push to the node at this address"
    )
    group.add_argument("--all", action="store_true", help="push to every node found that has the model's engine")
    group.add_argument("--token-file", type=Path, help="file holding the farm token")
    group.add_argument("--no-discovery", action="store_true", help="no mDNS: only --peer and saved peers")
    group.add_argument("--wait", type=float, default=LISTEN, metavar="SECONDS", help="how long to look for nodes")
    group.add_argument("--chunk-mb", type=float, default=DEFAULT_CHUNK / (1 << 20), help=argparse.SUPPRESS)


def resolve_model(text: str, folder: Path) -> Path:
    """MODEL as typed: a path, else a name in the models folder."""
    path = Path(text).expanduser()
    if path.exists():
        return path
    named = folder / text
    if named.exists():
        return named
    raise FarmError(f"no model {text!r}: not a path, and not in the models folder {folder}")


def handle_push(args: argparse.Namespace, folder: Path) -> int:
    err = Console(stderr=True, highlight=False)
    if args.path is None:
        err.print("lanfarm models push: give the model (a name in the models folder, or a path)")
        return 2
    if not (args.node or args.peer or args.all):
        err.print("lanfarm models push: say where: --node NAME, --peer HOST:PORT or --all")
        return 2
    try:
        source = resolve_model(str(args.path), folder)
        pkg = package(source)
        peers = [Address.parse(p) for p in args.peer]
        return asyncio.run(_push(args, pkg, peers, err))
    except (FarmError, OSError) as exc:
        err.print(f"lanfarm models push: {escape(str(exc))}")
        return 1


async def _targets(args: argparse.Namespace, pkg: ModelPackage, peers: list[Address], err: Console) -> list[Target]:
    token = find_token(args.token_file) or ""
    if args.peer and not (args.node or args.all):
        return [Target(str(a), a.url) for a in peers]
    mdns = not (args.no_discovery or not discovery_enabled().value)
    known = [*load_peers(), *peers]
    nodes, _unreached, _sleeping = await _discover(token, known, list(interfaces([]).value), mdns=mdns, wait=args.wait)
    online = [n for n in nodes if n.state is NodeState.ONLINE and n.info is not None]
    chosen: list[NodeRecord] = []
    for name in args.node:
        match = [n for n in online if name in (n.name, n.id)]
        if not match:
            raise FarmError(f"no node named {name!r} answered (found: {', '.join(n.name for n in online) or 'none'})")
        chosen += match
    if args.all:
        for n in online:
            assert n.info is not None
            if pkg.kind not in n.info.engine_ids:
                err.print(
                    f"skipped {escape(n.name)}: it has no {pkg.kind} engine (the ai extra is not installed there)"
                )
            elif n not in chosen:
                chosen.append(n)
    targets = [Target(n.name, n.address.url) for n in chosen]
    targets += [Target(str(a), a.url) for a in peers if a.url not in {t.url for t in targets}]
    return targets


async def _push(args: argparse.Namespace, pkg: ModelPackage, peers: list[Address], err: Console) -> int:
    targets = await _targets(args, pkg, peers, err)
    if not targets:
        err.print("lanfarm models push: no node to push to")
        return 1
    token = find_token(args.token_file) or ""
    chunk = max(64 << 10, int(args.chunk_mb * (1 << 20)))
    out = Console(highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    failures = 0
    async with aiohttp.ClientSession() as session:
        with Progress(*columns, console=out, transient=False) as bar:

            async def one(target: Target) -> PushResult | BaseException:
                task: TaskID = bar.add_task(f"{pkg.name} -> {target.name}", total=pkg.size)
                client = NodeClient(session, target.url, token)
                try:
                    return await push_model(
                        client, pkg, chunk_size=chunk, progress=lambda have, _t: bar.update(task, completed=have)
                    )
                except (PushError, NodeError) as exc:
                    return exc

            results = await asyncio.gather(*(one(t) for t in targets))
    for target, result in zip(targets, results, strict=True):
        if isinstance(result, BaseException):
            failures += 1
            err.print(f"[red]refused[/red] by {escape(target.name)}: {escape(str(result))}")
        elif result.already:
            out.print(f"{target.name}: already has {pkg.name} (id {pkg.id[:12]})")
        else:
            out.print(f"{target.name}: {pkg.name} installed (id {pkg.id[:12]}, {result.rate / 1e6:.1f} MB/s)")
    return 1 if failures else 0
