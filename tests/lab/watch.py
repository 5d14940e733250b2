"""Run ``Discovery`` (mDNS on one interface) and print its events as JSON lines; SIGTERM stops it.

``python -m tests.lab.watch --interface 10.77.0.2 --token T [--interval S]``: one line per event,
``{"event": "ready"|"up"|"changed"|"down", ...}``; lab tests run it inside a host namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import Any

from farm.runtime.discovery import Discovery, NodeListener, NodeRecord

T0 = time.monotonic()


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": round(time.monotonic() - T0, 3), **fields}), flush=True)


class Printer(NodeListener):
    def on_node_up(self, record: NodeRecord) -> None:
        emit("up", node=record.to_dict())

    def on_node_changed(self, record: NodeRecord) -> None:
        emit("changed", node=record.to_dict())

    def on_node_down(self, node_id: str, reason: str) -> None:
        emit("down", id=node_id, reason=reason)


async def main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Discovery(
        args.token,
        interfaces=args.interface,
        listeners=[Printer()],
        heartbeat_interval=args.interval,
        misses=3,
        timeout=1.0,
    ):
        emit("ready")
        await stop.wait()
    emit("stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--interface", action="append", required=True)
    parser.add_argument("--token")
    parser.add_argument("--interval", type=float, default=0.5)
    asyncio.run(main(parser.parse_args()))
