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


def add_actions(parser: argparse.ArgumentParser) -> None:
    """``lanfarm node [run|pause|resume|status]`` and the options that go with the owner's actions."""
    a = parser.add_argument
    a(
        "action",
        nargs="?",
        default="run",
        choices=["run", *ACTIONS],
        help="run the node (default), or pause/resume/status the node running on this PC",
    )
    a(
        "--for",
        dest="pause_for",
        metavar="DURATION",
        help="with pause: for this long (2h, 90m, 1h30m; default: until resumed)",
    )
    a("--reason", help="with pause: a line shown in the farm (default: paused by its owner)")
    a(
        "--schedule",
        action="append",
        metavar="WINDOW",
        help="take jobs only in this weekly window, e.g. 'mon-fri 19:00-08:00' or 'sat-sun' (repeatable; local time)",
    )


def add_owner_settings(parser: argparse.ArgumentParser) -> None:
    """The owner's node settings on the command line (node.toml and LANFARM_* hold them too)."""
    a = parser.add_argument
    a("--timezone", help="the schedule's time zone, e.g. Europe/Berlin (default: this PC's)")
    for state, when, default in (
        ("pause", "its owner pauses it", "finish"),
        ("schedule", "its schedule window closes", "finish"),
        ("nimby", "its user comes back (NIMBY)", "yield"),
    ):
        a(
            f"--on-{state}",
            choices=["finish", "yield"],
            help=f"a running job when {when}: finish it there, or yield it to the farm (default {default})",
        )
    a(
        "--nimby",
        action="append",
        choices=["input", "gpu"],
        help="yield to this PC's user: input (keyboard/mouse in use), gpu (another program uses the GPU); repeatable",
    )
    a("--nimby-idle-minutes", type=float, help="idle minutes before a NIMBY-held node offers itself again (default 10)")
    a("--nimby-gpu-mb", type=float, help="other programs' GPU memory that counts as the GPU in use (default 1024)")
    a(
        "--metrics-open",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve GET /metrics without a signed request (default: no)",
    )


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
