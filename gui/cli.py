"""``lanfarm app``: the desktop app. Qt is imported only when the command runs, so ``lanfarm`` itself
(which imports every subcommand to build its parser) works where PySide6 is not installed."""

from __future__ import annotations

import argparse
import importlib.util
import os
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
    why = no_display()
    if why:
        print(
            f"lanfarm app: {why}, so the desktop app cannot open a window. On a headless PC run "
            "`lanfarm node` instead (the farm's other PCs then use this one), or edit from the command "
            "line with `lanfarm run`.",
            file=sys.stderr,
        )
        return 2
    from gui.app import run

    return run(args.files, tray=not args.no_tray)


def no_display(env: dict[str, str] | None = None, platform: str = sys.platform) -> str:
    """Why Qt would find no display here ("" when it should find one): checked before Qt is loaded,
    because Qt aborts the process (exit 134) when its platform plugin has nothing to connect to."""
    env = dict(os.environ) if env is None else env
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return ""  # Windows and macOS always have one; an explicit Qt platform (offscreen, say) is the user's call
    if env.get("WAYLAND_DISPLAY"):
        return ""
    display = env.get("DISPLAY", "")
    if not display:
        return "there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    local = display.startswith(":") and display[1:].split(".", 1)[0].isdigit()
    if local and not os.path.exists(f"/tmp/.X11-unix/X{display[1:].split('.', 1)[0]}"):
        return f"the display {display} is not running"
    return ""
