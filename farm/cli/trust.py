"""``lanfarm nodes trust NAME``: accept the new TLS certificate of a node the farm refuses.

The old pin is dropped; the node is then asked at once (at its pinned address) to prove the farm token
bound to the certificate it shows now, and that certificate is pinned. A node that cannot prove it
stays unpinned and gets no work (farm.runtime.trust).
"""

from __future__ import annotations

import asyncio

import aiohttp

from farm.errors import FarmError
from farm.local.pins import colons, load_pins
from farm.local.token import find_token
from farm.runtime.client import NodeClient, NodeError, connector
from farm.runtime.trust import Trust


async def trust_node(name: str, *, token: str | None = None) -> str:
    """Drop the pin of the node ``name`` (name, id or address) and pin what it proves now; a line to print.
    FarmError when no pinned node has that name."""
    trust = Trust()
    pins = [p for p in load_pins(trust.path).values() if p.matches(name)]
    if not pins:
        known = ", ".join(sorted(p.name for p in load_pins(trust.path).values())) or "none"
        raise FarmError(f"no pinned node is called {name!r} (pinned: {known})")
    await trust.trust(name)
    lines = []
    async with aiohttp.ClientSession(connector=connector()) as session:
        for pin in pins:
            old = colons(pin.fingerprint)
            client = NodeClient(session, pin.address, token or find_token() or "", trust=trust)
            try:
                _node_id, fingerprint = await asyncio.wait_for(client.identity(), 10)
            except (NodeError, TimeoutError) as exc:
                lines.append(
                    f"{pin.name}: its old certificate ({old}) is no longer trusted; the new one is pinned once it "
                    f"proves the farm token (now: {exc or 'no answer'})"
                )
                continue
            lines.append(f"{pin.name}: trusted its new certificate SHA-256 {colons(fingerprint, 0)} (was {old})")
    return "\n".join(lines)
