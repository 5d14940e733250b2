"""The ``lanfarm`` command: subcommands from farm, node and gui, each imported only when used."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from farm.version import __version__

# name -> (module, help). Modules outside farm/ are imported by name so farm never depends on them.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("farm.cli.demo", "a whole farm on this PC (2 nodes on 127.0.0.1 + this PC) editing the samples"),
    "run": ("farm.cli.run", "edit images in a batch (files or folders)"),
    "models": ("farm.cli.models", "list or add AI models"),
    "version": ("farm.cli.version", "print the version"),
    "node": ("node.cli", "run this PC as a farm node (headless)"),
    "nodes": ("farm.cli.nodes", "list the farm's nodes"),
    "app": ("gui.cli", "start the desktop app"),
    "token": ("farm.cli.token", "print this PC's farm token (share it with the farm's other PCs)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lanfarm", description="LAN Farm: a render farm for AI image edits on the PCs of your local network."
    )
    parser.add_argument("--version", action="version", version=f"lanfarm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:  # an optional part (Qt, say) is not installed
            p = sub.add_parser(name, help=f"{help_text} (unavailable: {exc.name} is not installed)")
            p.set_defaults(handler=_missing(name, exc))
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.configure(p)
    return parser


def _missing(name: str, exc: ImportError) -> Callable[[argparse.Namespace], int]:
    def handler(_args: argparse.Namespace) -> int:
        print(f"lanfarm {name}: needs {exc.name}, which is not installed ({exc})", file=sys.stderr)
        return 2

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
