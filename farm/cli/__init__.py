"""The ``lanfarm`` command. farm's own subcommands are listed here; the node's and the app's
register themselves as ``lanfarm.commands`` entry points (pyproject.toml), or are handed to
:func:`main` by the frozen bundle's entry script, so ``farm`` never imports ``node`` or ``gui``.
Each subcommand module is imported only to build the parser; its heavy parts load when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from farm.version import __version__

ENTRY_POINTS = "lanfarm.commands"  # name = "module" of a package that adds a subcommand
# name -> (module, help) of the commands the core brings.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("farm.cli.demo", "a whole farm on this PC (2 nodes on 127.0.0.1 + this PC) editing the samples"),
    "run": ("farm.cli.run", "edit images in a batch (files or folders)"),
    "engines": ("farm.cli.engines", "list this PC's engines: operations, models, params with ranges and defaults"),
    "models": ("farm.cli.models", "list or add AI models"),
    "version": ("farm.cli.version", "print the version"),
    "nodes": ("farm.cli.nodes", "list the farm's nodes"),
    "doctor": ("farm.cli.doctor", "check why a node is not found: multicast, ports, token and protocol, with the fix"),
    "token": ("farm.cli.token", "print this PC's farm token (share it with the farm's other PCs)"),
    "serve": ("farm.cli.serve", "serve the farm to other programs: IOPaint's HTTP API and the farm API (127.0.0.1)"),
}
#: Commands that work but are not listed in ``lanfarm --help`` (``lanfarm --version`` says the same).
UNLISTED = frozenset({"version"})


def registered() -> dict[str, str]:
    """Subcommands other installed packages register (``node``, ``app``): name -> module."""
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINTS)}


def commands(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every subcommand: name -> module (farm's, the registered ones, then ``extra``)."""
    return {**{name: module for name, (module, _help) in SUBCOMMANDS.items()}, **registered(), **(extra or {})}


def build_parser(extra: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lanfarm",
        description="LAN Farm: a render farm for AI image edits on the PCs of your local network.",
    )
    parser.add_argument("--version", action="version", version=f"lanfarm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in sorted(commands(extra).items(), key=lambda item: _order(item[0])):
        known = SUBCOMMANDS.get(name)
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:  # an optional part (Qt, say) is not installed
            help_text = known[1] if known else name
            p = sub.add_parser(name, help=f"{help_text} (unavailable: {exc.name} is not installed)")
            p.set_defaults(handler=_missing(name, exc))
            continue
        help_text = known[1] if known else str(getattr(mod, "HELP", name))
        if name in UNLISTED:  # no help: argparse leaves it out of the command list
            p = sub.add_parser(name, description=help_text)
        else:
            p = sub.add_parser(name, help=help_text, description=help_text)
        mod.configure(p)
    return parser


def _order(name: str) -> int:
    """farm's commands in their listed order, then the registered ones."""
    names = list(SUBCOMMANDS)
    return names.index(name) if name in names else len(names)


def _missing(name: str, exc: ImportError) -> Callable[[argparse.Namespace], int]:
    def handler(_args: argparse.Namespace) -> int:
        print(f"lanfarm {name}: needs {exc.name}, which is not installed ({exc})", file=sys.stderr)
        return 2

    return handler


def main(argv: Sequence[str] | None = None, *, extra: Mapping[str, str] | None = None) -> int:
    """Run ``lanfarm``; ``extra`` adds subcommands (name -> module) where entry points are not installed."""
    parser = build_parser(extra)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()
    except BrokenPipeError:  # `lanfarm nodes --json | head`: the reader left; say nothing more
        _silence_stdout()
        return 141  # as if killed by SIGPIPE, like other tools in a pipe
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that flushing it again at exit raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
