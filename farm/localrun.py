"""Running planned edits on this PC: read, execute, write atomically; one outcome per input."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from farm.batch import Planned
from farm.engines.base import CancelToken, ProgressFn, no_progress
from farm.engines.registry import Registry
from farm.errors import FarmError
from farm.imageio import DEFAULT_MAX_PIXELS, read_bytes, write_atomic
from farm.pipeline import execute
from farm.spec import EditSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one planned edit ended, and where it ran."""

    item: Planned
    error: str | None
    seconds: float
    worker: str = "local"

    @property
    def ok(self) -> bool:
        return self.error is None


def process(item: Planned, spec: EditSpec, registry: Registry, *, overwrite: bool = False,
            max_pixels: int = DEFAULT_MAX_PIXELS, resize_mask: bool = False,
            progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> None:
    """Edit one input into its output file; raises FarmError (or FileExistsError) on failure."""
    image = read_bytes(item.input)
    mask = read_bytes(item.mask) if item.mask is not None else None
    data = execute(image, mask, spec, registry, progress=progress, cancel=cancel,
                   max_pixels=max_pixels, resize_mask=resize_mask)
    write_atomic(item.output, data, overwrite=overwrite)


def describe_failure(exc: BaseException) -> str:
    """One line for a person; unexpected exceptions keep their type name."""
    if isinstance(exc, FarmError):
        return str(exc)
    if isinstance(exc, FileExistsError):
        return f"output {exc.filename or ''} appeared meanwhile; not overwritten".replace("  ", " ")
    return f"internal error: {type(exc).__name__}: {exc}"


def run_local(items: Sequence[Planned], spec: EditSpec, registry: Registry, *, jobs: int = 1,
              on_outcome: Callable[[Outcome], None] = lambda _o: None, **options: object) -> list[Outcome]:
    """Run every item on ``jobs`` threads (OpenCV and torch release the GIL); failures never stop the rest."""

    def one(item: Planned) -> Outcome:
        start = time.perf_counter()
        try:
            process(item, spec, registry, **options)  # type: ignore[arg-type]
            error = None
        except Exception as exc:
            if not isinstance(exc, FarmError | FileExistsError):
                log.exception("unexpected failure on %s", item.input)
            error = describe_failure(exc)
        outcome = Outcome(item, error, time.perf_counter() - start)
        on_outcome(outcome)
        return outcome

    if jobs <= 1:
        return [one(i) for i in items]
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="lanfarm-local") as pool:
        return list(pool.map(one, items))
