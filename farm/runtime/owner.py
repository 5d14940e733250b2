"""The owner's controls of a node running on this PC (``lanfarm node pause|resume|status``, the app's tray).

The node is found by its run file (:mod:`farm.local.runfiles`); requests are signed with the farm
token like every other request, so the token never leaves this PC either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from farm.core.availability import Availability
from farm.core.nodeinfo import NodeInfo
from farm.local.runfiles import RunningNode
from farm.runtime.client import NodeClient

T = TypeVar("T")
TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)


async def _with_client(node: RunningNode, token: str, call: Callable[[NodeClient], Awaitable[T]]) -> T:
    # a node's own certificate is often self-signed; the request is signed either way, so the token is safe
    connector = aiohttp.TCPConnector(ssl=False) if node.url.startswith("https:") else None
    async with aiohttp.ClientSession(connector=connector) as session:
        return await call(NodeClient(session, node.url, token, timeout=TIMEOUT))


async def status(node: RunningNode, token: str) -> NodeInfo:
    return await _with_client(node, token, lambda c: c.info())


async def pause(node: RunningNode, token: str, seconds: float | None = None, reason: str = "") -> Availability:
    return await _with_client(node, token, lambda c: c.pause(seconds, reason))


async def resume(node: RunningNode, token: str) -> Availability:
    return await _with_client(node, token, lambda c: c.resume())
