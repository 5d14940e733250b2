"""``lanfarm version``."""

from __future__ import annotations

import argparse

from farm.core.protocol import PROTOCOL_VERSION
from farm.version import __version__


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(handler=handle)


def handle(_args: argparse.Namespace) -> int:
    print(f"lanfarm {__version__} (protocol {PROTOCOL_VERSION})")
    return 0
