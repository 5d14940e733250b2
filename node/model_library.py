"""The node's models folder: models with their content ids, a disk budget for pushed models, and the
engines refreshed when a model arrives or goes.

Only models that arrived by push (recorded in ``.lanfarm-pushed.json`` in the folder) are ever
evicted to make room, least recently pushed first, and never one that a queued or running job names.
Files a person put there are never touched. Everything blocking here runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from farm.engines import Registry
from farm.engines.catalogue import ModelFile
from farm.engines.installed import ai_entries
from farm.engines.model_ids import ModelCard, ModelIds
from farm.errors import OutputError
from farm.local.files import write_atomic
from node.errors import DiskFull, OverBudget

log = logging.getLogger(__name__)

PUSHED_FILE = ".lanfarm-pushed.json"
STAGING_DIR = ".incoming"
#: Disk left free beside the models, whatever the budget: a full disk breaks more than this node.
DISK_RESERVE = 256 << 20


class ModelLibrary:
    """Models in ``folder`` as cards with ids, the budget ``budget`` bytes (None: the disk is the limit)
    for pushed models, and the ``registry`` kept in step with the folder."""

    def __init__(
        self,
        folder: Path,
        registry: Registry,
        *,
        budget: int | None = None,
        device: str | None = None,
        in_use: Callable[[], set[str]] = set,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = folder
        self.registry = registry
        self.budget = budget
        self.device = device
        self.in_use = in_use  # names of models that active jobs need (read on the loop: pass a copy)
        self.clock = clock
        self.ids = ModelIds(folder)
        self._lock = threading.Lock()

    @property
    def staging(self) -> Path:
        return self.folder / STAGING_DIR

    # -- what it holds ---------------------------------------------------------------------------
    def cards(self) -> list[ModelCard]:
        return self.ids.cards()

    def pushed(self) -> dict[str, float]:
        """Names of pushed models -> when they arrived."""
        try:
            data = json.loads((self.folder / PUSHED_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def pushed_bytes(self) -> int:
        names = self.pushed()
        return sum(c.size for c in self.cards() if c.name in names)

    def space(self) -> int:
        """Bytes a push may bring now (without evicting): the budget's rest, and the disk's."""
        disk = self._disk_free() - DISK_RESERVE
        if self.budget is not None:
            disk = min(disk, self.budget - self.pushed_bytes())
        return max(0, disk)

    # -- making room -----------------------------------------------------------------------------
    def make_room(self, size: int, busy: set[str]) -> list[str]:
        """Evict pushed models not in ``busy`` (oldest first) until ``size`` bytes fit; return the names
        evicted. Raises OverBudget / DiskFull, evicting nothing, when even that would not make room."""
        with self._lock:
            if self.budget is not None and size > self.budget:
                raise OverBudget(
                    f"the model is {size / (1 << 20):.1f} MB, more than this node's model budget of "
                    f"{self.budget / (1 << 20):.0f} MB (raise it with --models-budget-mb)"
                )
            cards = {c.name: c for c in self.cards()}
            pushed = self.pushed()
            used = sum(cards[n].size for n in pushed if n in cards)
            disk = self._disk_free() - DISK_RESERVE
            victims, freed = [], 0

            def fits(freed: int) -> bool:
                in_budget = self.budget is None or used - freed + size <= self.budget
                return in_budget and disk + freed >= size

            for name, _when in sorted(pushed.items(), key=lambda kv: kv[1]):
                if fits(freed):
                    break
                if name in busy or name not in cards:
                    continue
                victims.append(name)
                freed += cards[name].size
            if self.budget is not None and used - freed + size > self.budget:
                raise OverBudget(
                    f"no room for {size / (1 << 20):.1f} MB in this node's model budget of "
                    f"{self.budget / (1 << 20):.0f} MB: the pushed models there are in use"
                )
            if disk + freed < size:
                raise DiskFull(
                    f"the disk of this node's models folder has {max(0, disk) / (1 << 20):.1f} MB free "
                    f"(beyond a {DISK_RESERVE >> 20} MB reserve), the model needs {size / (1 << 20):.1f} MB"
                )
            for name in victims:
                self._remove(cards[name].path)
                log.info("evicted pushed model %s to make room", name)
            if victims:
                self._write_pushed({k: v for k, v in pushed.items() if k not in victims})
        if victims:
            self.refresh_engines()
        return victims

    # -- a pushed model arrives ------------------------------------------------------------------
    def installed(self, model: ModelFile, model_id: str, architecture: str | None, scale: int | None) -> None:
        """Record a model just renamed into the folder, and offer it to the engines."""
        self.ids.record(model, model_id, architecture=architecture, scale=scale)
        with self._lock:
            pushed = self.pushed()
            pushed[model.name] = self.clock()
            self._write_pushed(pushed)
        self.refresh_engines()

    def refresh_engines(self) -> None:
        """Rebuild the AI engines' entries from the folder (their descriptors list the models)."""
        for entry in ai_entries(self.folder, device=self.device):
            self.registry.replace(entry)

    # -- internals -------------------------------------------------------------------------------
    def _disk_free(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.folder).free

    def _write_pushed(self, pushed: dict[str, float]) -> None:
        with contextlib.suppress(OSError, OutputError):
            write_atomic(self.folder / PUSHED_FILE, json.dumps(pushed, indent=1).encode(), overwrite=True)

    @staticmethod
    def _remove(path: Path | None) -> None:
        if path is None:
            return
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
