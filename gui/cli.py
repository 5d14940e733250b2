"""``lanfarm app``: the desktop app. Qt is imported only when the command runs, so ``lanfarm`` itself
(which imports every subcommand to build its parser) works where PySide6 is not installed."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HELP = "start the desktop app"  # `lanfarm --help` lists it so


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="images or folders to queue (handed to the running app if there is one)",
    )
    parser.add_argument(
        "--no-tray", action="store_true", help="run as a normal window even where the desktop has a system tray"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    missing = [m for m in ("PySide6", "qasync") if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"lanfarm app: needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            "installed; install the desktop extra: pip install 'lanfarm[gui]'",
            file=sys.stderr,
        )
        return 2
    from gui.app import run

    return run(args.files, tray=not args.no_tray)
