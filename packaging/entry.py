"""Entry point of the frozen bundle (both executables): the desktop app or the ``lanfarm`` CLI.

No arguments, ``app``, or only file paths (a file dropped on the icon) start the app; anything else
is a ``lanfarm`` subcommand (``LANFarm node --token-file F`` runs a headless node).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# The subcommands outside farm/: an installed lanfarm registers them as entry points, but a frozen
# bundle carries no package metadata, so its entry script hands them to the CLI itself.
BUNDLED = {"node": "node.cli", "app": "gui.cli"}


def cli_args(argv: Sequence[str]) -> list[str]:
    """The ``lanfarm`` arguments meant by the bundle's command line ``argv`` (without the program)."""
    from farm.cli import SUBCOMMANDS

    names = {*SUBCOMMANDS, *BUNDLED}
    # Finder's old process serial number argument (macOS), never meant for us.
    args = [a for a in argv if not a.startswith("-psn_")]
    # `sys.executable -m farm.cli ...` is how the CLI starts helpers (lanfarm demo's nodes); frozen,
    # sys.executable is this bundle, so the same command line must mean the CLI.
    if args[:2] == ["-m", "farm.cli"]:
        args = args[2:]
    if not args:
        return ["app"]
    if args[0] not in names and not args[0].startswith("-"):
        return ["app", *args]
    return args


def main() -> int:
    from farm.cli import main as lanfarm

    return lanfarm(cli_args(sys.argv[1:]), extra=BUNDLED)


if __name__ == "__main__":
    sys.exit(main())
