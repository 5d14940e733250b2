"""``lanfarm nodes``: list the farm's nodes (mDNS plus saved and given peers); ``add``/``remove`` peers.

The listing ends as soon as the nodes have answered: the first answer (``--wait`` caps the wait for
it), then, over mDNS, until no new node has answered for 1.5 s. Exit code 0 when at least one node
can be used, 1 when none can (none found, or every one offline or refusing the token), 2 for bad
arguments."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from farm.cli.common import add_discover_on, positive, wait_for_answer
from farm.cli.trust import trust_node
from farm.cli.wake import wake_node
from farm.core.address import Address
from farm.core.nodetable import NodeRecord, NodeState, Unreached
from farm.engines.registry import Registry, engine_name
from farm.errors import FarmError
from farm.local.peers import add_peer, load_peers, peers_path, remove_peer
from farm.local.settings import discovery_enabled, interfaces
from farm.local.token import find_token
from farm.runtime.farm import Farm, FarmSettings, NodeEvent
from farm.runtime.waker import SleepingNode

PROBE_TIMEOUT = 2.0
LISTEN = 3.0  # seconds at most to listen for nodes
SETTLE = 1.5  # over mDNS, the listing ends once no new node has answered for this long
SHORT_ENGINES = 2  # engines named in the table before "+N" (all with --wide)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Exit codes: 0 at least one node can be used, 1 none can (none found, or all offline or "
        "refusing the token), 2 bad arguments."
    )
    parser.add_argument(
        "action",
        nargs="?",
        default="list",
        choices=["list", "add", "remove", "wake", "trust"],
        help="list the nodes (default), add/remove a saved peer, wake a sleeping node (Wake-on-LAN), "
        "or trust a node's new TLS certificate",
    )
    parser.add_argument(
        "address", nargs="?", metavar="HOST:PORT|NAME", help="the peer to add or remove; the node to wake or trust"
    )
    parser.add_argument(
        "--wait",
        type=positive(float),
        default=LISTEN,
        metavar="SECONDS",
        help=f"listen at most this long (default {LISTEN:g}; the listing ends once the nodes have answered)",
    )
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
    add_discover_on(parser)
    parser.add_argument("--token-file", type=Path, help="file holding the farm token")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--wide", action="store_true", help="every engine and model, not only the first")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        if args.action == "wake":
            if not args.address:
                raise FarmError("`lanfarm nodes wake` needs the node's name (or id)")
            return wake_node(args, PROBE_TIMEOUT)
        if args.action == "list":
            if args.address:
                raise FarmError("`lanfarm nodes` takes no address; use --peer HOST:PORT")
            return list_nodes(args)
        if not args.address:
            raise FarmError(f"`lanfarm nodes {args.action}` needs {'NAME' if args.action == 'trust' else 'HOST:PORT'}")
        if args.action == "trust":
            print(asyncio.run(trust_node(args.address, token=find_token(args.token_file))))
            return 0
        address = Address.parse(args.address)
        if args.action == "add":
            added = add_peer(address)
            print(f"{'saved' if added else 'already saved'}: {address.text} ({peers_path()})")
            return 0
        if not remove_peer(address):
            err.print(f"lanfarm nodes: {address} is not a saved peer", highlight=False)
            return 1
        print(f"removed: {address}")
        return 0
    except BrokenPipeError:
        raise  # the reader of stdout left (`| head`): `lanfarm` ends quietly
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
    nodes, unreached, sleeping = asyncio.run(
        _discover(find_token(args.token_file), peers, only_on, mdns=not args.no_discovery, wait=args.wait)
    )
    if args.json:
        json.dump(
            {
                "nodes": [n.to_dict() for n in nodes],
                "unreached": [{"address": str(u.address), "source": u.source, "error": u.error} for u in unreached],
                "asleep": [
                    {
                        "id": z.sleeper.id,
                        "name": z.sleeper.name,
                        "address": z.sleeper.address,
                        "macs": list(z.sleeper.macs),
                        "state": z.state,
                    }
                    for z in sleeping
                ],
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print_table(nodes, unreached, Console(soft_wrap=False), wide=args.wide, sleeping=sleeping)
    return 0 if any(n.state is NodeState.ONLINE for n in nodes) else 1


async def _discover(
    token: str | None, peers: list[Address], interfaces: list[str], *, mdns: bool, wait: float
) -> tuple[list[NodeRecord], list[Unreached], list[SleepingNode]]:
    settings = FarmSettings(
        token=token or "",
        use_local=False,
        mdns=mdns,
        interfaces=tuple(interfaces),
        peers=tuple(peers),
        probe_timeout=PROBE_TIMEOUT,
    )
    async with Farm.open(settings, registry=Registry([])) as farm:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        await wait_for_answer(farm, wait, mdns=mdns, usable_only=False)  # the first answer, ``wait`` at most
        if mdns:  # then others keep arriving as mDNS resolves them: listen until it has been quiet a moment
            news = asyncio.Event()
            unsubscribe = farm.subscribe(lambda event: news.set() if isinstance(event, NodeEvent) else None)
            try:
                while (left := deadline - loop.time()) > 0:
                    news.clear()
                    try:
                        async with asyncio.timeout(min(SETTLE, left)):
                            await news.wait()
                    except TimeoutError:
                        break
            finally:
                unsubscribe()
        # every address known by then answers or fails once (a probe is never cut short)
        await farm.wait_for_nodes(PROBE_TIMEOUT * 2, mdns_grace=0)
        return farm.nodes(), farm.unreached(), farm.sleeping()


def print_table(
    nodes: list[NodeRecord],
    unreached: list[Unreached],
    console: Console,
    *,
    wide: bool = False,
    sleeping: list[SleepingNode] | None = None,
) -> None:
    """Nodes as a table that fits the terminal: the address is never cut, engines and models are
    shortened to the first ones (``wide``: all). Cells are plain text (never rich markup)."""
    sleeping = sleeping or []
    if not nodes and not unreached and not sleeping:
        console.print(
            "No nodes found. Start `lanfarm node` on another PC, or add one by address "
            "with `lanfarm nodes add HOST:PORT` if your network blocks mDNS."
        )
        return
    addresses = [n.address.text for n in nodes] + [u.address.text for u in unreached]
    addresses += [z.sleeper.address for z in sleeping]
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("Name", overflow="fold", min_width=6)
    table.add_column("Address", no_wrap=True, min_width=max(len(a) for a in addresses))
    table.add_column("State", no_wrap=True)
    table.add_column("GPU", overflow="fold" if wide else "ellipsis", min_width=3, max_width=None if wide else 12)
    table.add_column("VRAM", no_wrap=True)
    table.add_column("Engines", overflow="fold", min_width=7)
    table.add_column("Models", overflow="fold", min_width=6)
    table.add_column("Free", no_wrap=True)
    table.add_column("Version", no_wrap=True)
    styles = {"online": "green", "unauthorised": "yellow", "untrusted": "red", "offline": "red"}
    for n in nodes:
        slots = n.slots
        info = n.info
        engines = [engine_name(e.id) for e in info.available_engines] if info else [engine_name(e) for e in n.engines]
        models = [m.name for m in info.models] if info else []
        table.add_row(
            Text(n.name),
            Text(n.address.text),  # http://... for a plain (--no-tls) node
            Text(n.state_label, style=styles.get(str(n.state), "") if n.availability.available else "yellow"),
            Text(n.gpu),
            Text(_vram(n.vram_mb)),
            Text(_short(engines, wide)),
            Text(_short(models, wide)),
            Text(f"{slots[0]}/{slots[1]}" if slots else "—"),
            Text(info.version if info and info.version else "—"),
        )
    for u in unreached:
        table.add_row(Text("—"), Text(u.address.text), Text("offline", style="red"), *[Text("")] * 6)
    for z in sleeping:
        table.add_row(Text(z.sleeper.name), Text(z.sleeper.address), Text(z.state, style="blue"), *[Text("")] * 6)
    console.print(table)
    for u in unreached:  # why, below the table, so that the table stays narrow
        console.print(Text.assemble((str(u.address), "bold"), f" is offline ({u.error})"))
    for n in nodes:
        if n.state is NodeState.UNTRUSTED:
            console.print(Text.assemble((n.name, "bold"), f" is untrusted: {n.problem}"))
    if any(n.state == "unauthorised" for n in nodes):
        console.print(
            "[yellow]unauthorised[/]: the node has another farm token; copy this PC's token "
            "(`lanfarm token`) to it, or pass --token-file."
        )


def _short(names: list[str], wide: bool) -> str:
    if not names:
        return "—"
    if wide or len(names) <= SHORT_ENGINES:
        return ", ".join(names)
    return f"{', '.join(names[:SHORT_ENGINES])} +{len(names) - SHORT_ENGINES}"


def _vram(mb: int) -> str:
    if mb <= 0:
        return "—"
    return f"{mb / 1024:.0f} GB" if mb >= 1024 else f"{mb} MB"
