"""``lanfarm node pause [--for 2h] | resume | status``: the owner's controls of the node running on this PC.

The node is found by its run file (``--port`` picks one when several run); the farm token comes from
the same place the node reads it (``--token-file``, ``LANFARM_TOKEN``, node.toml, the token file).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable

from farm.core.availability import Availability, parse_duration
from farm.core.nodeinfo import NodeInfo
from farm.errors import FarmError
from farm.local.runfiles import pick
from farm.local.settings import Origin
from farm.runtime import owner
from farm.runtime.client import NodeError
from node.config import NodeConfig

ACTIONS = ("pause", "resume", "status")


def describe_until(a: Availability, now: float) -> str:
    if a.until is None:
        return ""
    left = max(0, int(a.until - now))
    return f" until {time.strftime('%a %H:%M', time.localtime(a.until))} (in {left // 3600}h {left % 3600 // 60:02d}m)"


def status_lines(info: NodeInfo, url: str, now: float) -> list[str]:
    a = info.availability
    return [
        f"{info.name} ({url}, node {info.id})",
        f"  state:  {a.state}{': ' + a.reason if a.reason and not a.available else ''}{describe_until(a, now)}",
        f"  slots:  {info.slots_total - info.slots_free} of {info.slots_total} busy, {info.queue} queued",
        f"  jobs:   {info.jobs_done} done, {info.jobs_failed} failed",
        f"  page:   {url}/",
        *([f"  nimby:  {info.nimby}"] if info.nimby else []),
    ]


def handle(
    args: argparse.Namespace, config: NodeConfig, origin: Origin, token_of: Callable[[NodeConfig, Origin], str]
) -> int:
    """Run one control action; ``token_of(config, origin)`` is :func:`node.cli.node_token`."""
    try:
        seconds = parse_duration(args.pause_for) if args.pause_for else None
        if args.pause_for and args.action != "pause":
            raise FarmError("--for goes with `lanfarm node pause`")
        node = pick(args.port)
        token = token_of(config, origin)
        if args.action == "status":
            info = asyncio.run(owner.status(node, token))
            print("\n".join(status_lines(info, node.url, time.time())))
            return 0 if info.availability.available else 3
        if args.action == "pause":
            a = asyncio.run(owner.pause(node, token, seconds, args.reason or ""))
        else:
            a = asyncio.run(owner.resume(node, token))
        print(f"{node.name}: {a.label()}{describe_until(a, time.time())}")
        return 0
    except (FarmError, NodeError, ValueError, OSError) as exc:
        print(f"lanfarm node {args.action}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) and not isinstance(exc, FarmError) else 1
