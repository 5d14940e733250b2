"""The help text is deliberate: each command's ``--help`` is compared with a snapshot in
``tests/farm/cli/help/``. After changing an option on purpose, regenerate them with
``LANFARM_UPDATE_HELP=1 python -m pytest tests/farm/cli/test_help.py`` and review the diff."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LANFARM, subprocess_env

SNAPSHOTS = Path(__file__).with_name("help")
COMMANDS = [(), ("run",), ("nodes",), ("engines",), ("models",), ("token",), ("node",), ("app",)]


def _help(command: tuple[str, ...]) -> str:
    result = subprocess.run(
        [*LANFARM, *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(COLUMNS="100", LANFARM_HOME="/nonexistent-lanfarm-home"),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "lanfarm")
def test_help_matches_its_snapshot(command: tuple[str, ...]) -> None:
    text = _help(command)
    snapshot = SNAPSHOTS / f"{'-'.join(command) or 'lanfarm'}.txt"
    if os.environ.get("LANFARM_UPDATE_HELP"):
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(text, encoding="utf-8")
    assert text == snapshot.read_text(encoding="utf-8"), f"{snapshot.name} differs; see this module's docstring"
    assert "simulate" not in text.lower() and "==SUPPRESS==" not in text  # test-only flags stay out of help
