"""``lanfarm nodes wake NAME``: send a known node its Wake-on-LAN magic packets, then wait until it answers."""

from __future__ import annotations

import argparse
import asyncio
import sys

from farm.core.address import Address
from farm.core.nodetable import NodeState
from farm.engines.registry import Registry
from farm.errors import FarmError
from farm.local.settings import discovery_enabled, interfaces
from farm.local.sleepers import SleeperBook
from farm.local.token import find_token
from farm.runtime.farm import Farm, FarmSettings


def wake_node(args: argparse.Namespace, probe_timeout: float) -> int:
    """Send a known node its magic packets, then wait (``--wait``) until it answers: it shows waking till then."""
    sleeper = SleeperBook().find(args.address)
    if sleeper is None:
        raise FarmError(
            f"no known node {args.address!r} to wake: a node is known once `lanfarm nodes` (or the app) "
            "has seen it with its MAC addresses"
        )
    settings = FarmSettings(
        token=find_token(args.token_file) or "",
        use_local=False,
        mdns=not args.no_discovery and discovery_enabled().value,
        interfaces=tuple(interfaces(args.interface).value),
        peers=(Address.parse(sleeper.address), *(Address.parse(p) for p in args.peer)),
        probe_timeout=probe_timeout,
    )
    return asyncio.run(_wake(settings, sleeper.id, sleeper.name, args.wait))


async def _wake(settings: FarmSettings, node_id: str, name: str, wait: float) -> int:
    async with Farm.open(settings, registry=Registry([])) as farm:
        sent = farm.wake(node_id)
        if not sent:
            print(f"{name}: no LAN address to send a magic packet to", file=sys.stderr)
            return 1
        print(f"{name}: waking (magic packet to {', '.join(f'{h}:{p}' for h, p in sent)})", flush=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while loop.time() < deadline:
            up = [n for n in farm.nodes() if n.id == node_id and n.state is NodeState.ONLINE]
            if up:
                print(f"{name}: awake, online at {up[0].address}")
                return 0
            await asyncio.sleep(0.1)
        states = {z.sleeper.id: z.state for z in farm.sleeping()}
        print(f"{name}: {states.get(node_id, 'asleep')}: no answer within {wait:g} s", file=sys.stderr)
        return 1
