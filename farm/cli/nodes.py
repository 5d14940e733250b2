"""``lanfarm nodes``: list the farm's nodes (mDNS plus saved and given peers); ``add``/``remove`` peers."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from farm.core.address import Address
from farm.core.nodetable import NodeRecord, Unreached
from farm.engines.registry import Registry
from farm.errors import FarmError
from farm.local.peers import add_peer, load_peers, peers_path, remove_peer
from farm.local.settings import INTERFACES_ENV, discovery_enabled, interfaces
from farm.local.token import find_token
from farm.runtime.farm import Farm, FarmSettings

PROBE_TIMEOUT = 2.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        default="list",
        choices=["list", "add", "remove"],
        help="list the nodes (default), or add/remove a saved peer",
    )
    parser.add_argument("address", nargs="?", metavar="HOST:PORT", help="the peer to add or remove")
    parser.add_argument("--wait", type=float, default=3.0, help="seconds to listen for nodes (default 3)")
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="also ask this node (repeatable); saved peers are always asked",
    )
    parser.add_argument(
        "--no-discovery", action="store_true", help="no mDNS: only peers (networks that block multicast)"
    )
    parser.add_argument(
        "--interface",
        action="append",
        default=[],
        metavar="ADDR",
        help=f"IPv4 address of an interface to browse on (repeatable; default: "
        f"${INTERFACES_ENV}, a comma list, else all)",
    )
    parser.add_argument("--token-file", type=Path, help="file holding the farm token")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        if args.action == "list":
            if args.address:
                raise FarmError("`lanfarm nodes` takes no address; use --peer HOST:PORT")
            return list_nodes(args)
        if not args.address:
            raise FarmError(f"`lanfarm nodes {args.action}` needs HOST:PORT")
        address = Address.parse(args.address)
        if args.action == "add":
            added = add_peer(address)
            print(f"{'saved' if added else 'already saved'}: {address} ({peers_path()})")
            return 0
        if not remove_peer(address):
            err.print(f"lanfarm nodes: {address} is not a saved peer", highlight=False)
            return 1
        print(f"removed: {address}")
        return 0
    except (FarmError, OSError) as exc:
        err.print(f"lanfarm nodes: {exc}", highlight=False)
        return 2


def list_nodes(args: argparse.Namespace) -> int:
    peers = [*load_peers(), *(Address.parse(p) for p in args.peer)]
    switched_off = not discovery_enabled().value
    if args.no_discovery or switched_off:
        args.no_discovery = True
        if not peers:
            how = "unset LANFARM_DISCOVERY" if switched_off else "drop --no-discovery"
            raise FarmError(f"no peers: give --peer HOST:PORT, save one with `lanfarm nodes add HOST:PORT`, or {how}")
    only_on = list(interfaces(args.interface).value)
    nodes, unreached = asyncio.run(
        _discover(find_token(args.token_file), peers, only_on, mdns=not args.no_discovery, wait=args.wait)
    )
    if args.json:
        json.dump(
            {
                "nodes": [n.to_dict() for n in nodes],
                "unreached": [{"address": str(u.address), "source": u.source, "error": u.error} for u in unreached],
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print_table(nodes, unreached, Console())
    return 0


async def _discover(
    token: str | None, peers: list[Address], interfaces: list[str], *, mdns: bool, wait: float
) -> tuple[list[NodeRecord], list[Unreached]]:
    settings = FarmSettings(
        token=token or "",
        use_local=False,
        mdns=mdns,
        interfaces=tuple(interfaces),
        peers=tuple(peers),
        probe_timeout=PROBE_TIMEOUT,
    )
    async with Farm.open(settings, registry=Registry([])) as farm:
        if mdns:
            await farm.wait_for_nodes(PROBE_TIMEOUT * 2, mdns_grace=wait)  # and those found at the last moment
        else:
            await farm.wait_for_nodes(max(wait, PROBE_TIMEOUT * 2))
        return farm.nodes(), farm.unreached()


def print_table(nodes: list[NodeRecord], unreached: list[Unreached], console: Console) -> None:
    if not nodes and not unreached:
        console.print(
            "No nodes found. Start `lanfarm node` on another PC, or add one by address "
            "with `lanfarm nodes add HOST:PORT` if your network blocks mDNS."
        )
        return
    table = Table("Name", "Address", "GPU", "VRAM", "Engines", "State", "Load")
    styles = {"online": "green", "unauthorised": "yellow", "offline": "red"}
    for n in nodes:
        slots = n.slots
        table.add_row(
            n.name,
            str(n.address),
            n.gpu,
            _vram(n.vram_mb),
            ", ".join(n.engines) or "—",
            f"[{styles[n.state]}]{n.state}[/]",
            f"{slots[0]}/{slots[1]} free" if slots else "—",
        )
    for u in unreached:
        table.add_row("—", str(u.address), "", "", "", f"[red]offline[/] [dim]({u.error})[/]", "")
    console.print(table)
    if any(n.state == "unauthorised" for n in nodes):
        console.print(
            "[yellow]unauthorised[/]: the node has another farm token; copy this PC's token "
            "(`lanfarm token`) to it, or pass --token-file."
        )


def _vram(mb: int) -> str:
    if mb <= 0:
        return "—"
    return f"{mb / 1024:.0f} GB" if mb >= 1024 else f"{mb} MB"
