"""The farm's remembered measurements on disk (``measurements.json`` in the data folder).

A cache of hints (:mod:`farm.core.remembered`): a missing, unreadable or foreign file reads as nothing
remembered, never as an error; it is written whole or not at all. Deleting it makes the next batch start
from nothing, as on a new PC.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from farm.core.remembered import Remembered
from farm.local.files import write_atomic
from farm.local.paths import data_dir

log = logging.getLogger(__name__)

#: Bigger than any file this farm writes (32 figures a worker): a file past it is not read.
MAX_BYTES = 4 << 20


def measurements_path() -> Path:
    return data_dir() / "measurements.json"


def load_measurements(path: Path) -> Remembered:
    try:
        if path.stat().st_size > MAX_BYTES:
            log.warning("%s: over %d bytes, not read (the farm starts from nothing)", path, MAX_BYTES)
            return Remembered()
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return Remembered()
    except (OSError, ValueError) as exc:
        log.warning("%s: not read (%s); the farm starts from nothing", path, exc)
        return Remembered()
    return Remembered.from_dict(data)


def save_measurements(data: Mapping[str, Any], path: Path) -> None:
    """Write ``data`` (:meth:`Remembered.to_dict`, taken where the figures change) in place of the file."""
    body = json.dumps(data, indent=1, sort_keys=True) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, body.encode(), overwrite=True)
    except OSError as exc:  # a full disk or a read-only folder costs the next batch its head start, no more
        log.warning("%s: not written (%s)", path, exc)
