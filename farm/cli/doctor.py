"""``lanfarm doctor``: "why isn't my node found?" — one verdict line per check, with the fix.

The checks are farm.runtime.doctor's (the app's Nodes tab runs the same ones); this is their shell.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

from farm.core.address import Address
from farm.errors import FarmError
from farm.local.peers import load_peers
from farm.local.settings import discovery_enabled, interfaces
from farm.local.token import find_token
from farm.runtime.doctor import FIREWALL, MDNS_FIX, Verdict, blocked_between_pcs, check_node, examine, hears_itself

__all__ = ["FIREWALL", "MDNS_FIX", "Verdict", "blocked_between_pcs", "check_node", "examine", "hears_itself"]

HELP = "check why a node is not found: multicast, ports, TLS and pins, token and protocol, with the fix for each"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--peer", action="append", default=[], metavar="HOST:PORT", help="also check this node")
    parser.add_argument(
        "--discover-on",
        dest="interface",
        action="append",
        default=[],
        metavar="ADDR",
        help="check mDNS on this interface address (repeatable; default: all)",
    )
    parser.add_argument("--no-discovery", action="store_true", help="check only the given and saved peers")
    parser.add_argument("--token-file", type=Path, help="file holding the farm token")
    parser.add_argument("--wait", type=float, default=3.0, help="seconds to listen for mDNS (default 3)")
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        token = find_token(args.token_file) or ""
        peers = [*load_peers(), *(Address.parse(p) for p in args.peer)]
        mdns = discovery_enabled(False if args.no_discovery else None).value
        only_on = list(interfaces(args.interface).value)
    except (FarmError, OSError, ValueError) as exc:
        print(f"lanfarm doctor: {exc}", file=sys.stderr)
        return 2
    verdicts = asyncio.run(examine(token, peers, only_on, mdns=mdns, wait=args.wait))
    if args.json:
        print(json.dumps([asdict(v) for v in verdicts], indent=2))
    else:
        for v in verdicts:
            print(v.text())
    return 0 if all(v.ok for v in verdicts) else 1
