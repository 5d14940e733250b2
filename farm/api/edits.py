"""Edits that other programs send, through the farm: bytes in, a farm job, bytes out.

:class:`Edits` writes an uploaded image (and mask) into the serve's work folder, hands it to
:meth:`farm.Farm.submit_masked` like the app's mask editor does, follows the job through the farm's
event stream, and reads the result back. The farm decides where it runs (this PC or a node) and runs
it again elsewhere when a node goes away. Finished edits are kept for ``retention`` seconds so that
the native API can serve their results; their files are removed after that.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.core.job import Job, JobState
from farm.core.spec import EditSpec
from farm.errors import FarmError
from farm.local.files import read_bytes
from farm.runtime.farm import Batch, Farm, FarmEvent, JobEvent

log = logging.getLogger(__name__)
RETENTION = 3600.0
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}
_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}


class EditFailed(FarmError):
    """The farm ran the edit and it failed (or was cancelled); the message says why."""

    def __init__(self, job: Job) -> None:
        super().__init__(job.error or f"the edit was {job.state.value}")
        self.job = job


@dataclass(slots=True)
class Edit:
    """One edit the API took: its farm job, where it came from, and (uploads) its folder."""

    job: Job
    source: str  # "upload", "paths" or "iopaint"
    created: float
    folder: Path | None = None  # the upload's own folder (removed when the edit expires)
    progress: float = 0.0
    finished: float | None = None
    done: asyncio.Future[Job] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def id(self) -> str:
        return self.job.id


ProgressListener = Callable[[Edit, float], None]
EndListener = Callable[[Edit], None]


class Edits:
    """The API's edits: submit, wait, read results, cancel; one listener on the farm feeds them."""

    def __init__(self, farm: Farm, work_dir: Path, *, retention: float = RETENTION) -> None:
        self.farm = farm
        self.work_dir = work_dir
        self.retention = retention
        self._edits: OrderedDict[str, Edit] = OrderedDict()
        self.progress_listeners: list[ProgressListener] = []
        self.end_listeners: list[EndListener] = []
        self._unsubscribe = farm.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()
        for edit in self._edits.values():
            if not edit.done.done():
                edit.done.cancel()

    # ------------------------------------------------------------------ submitting
    async def submit_upload(
        self, image: bytes, image_format: str, mask: bytes | None, spec: EditSpec, *, source: str = "upload"
    ) -> Edit:
        """An uploaded image (and mask) as one farm job; the files live in a folder of their own."""
        self.expire()
        folder = self.work_dir / "uploads" / uuid.uuid4().hex
        suffix = _SUFFIXES.get(image_format, ".png")

        def write() -> tuple[Path, Path | None]:
            folder.mkdir(parents=True)
            image_path = folder / f"image{suffix}"
            image_path.write_bytes(image)
            mask_path = None
            if mask is not None:
                mask_path = folder / "mask.png"
                mask_path.write_bytes(mask)
            return image_path, mask_path

        image_path, mask_path = await asyncio.to_thread(write)
        out = folder / "out"
        try:
            if mask_path is not None:
                batch = await self.farm.submit_masked(image_path, mask_path, spec, out)
            else:
                batch = await self.farm.submit_paths([image_path], None, spec, out)
            [job] = _jobs_of(batch)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        return self._track(job, source, folder)

    async def submit_paths(
        self, paths: Sequence[Path], mask: Path | None, spec: EditSpec, out_dir: Path
    ) -> tuple[list[Edit], Batch]:
        """Files and folders on the serving PC (masks matched by name, as ``lanfarm run`` does)."""
        self.expire()
        batch = await self.farm.submit_paths(list(paths), mask, spec, out_dir, only_masked=mask is None)
        return [self._track(job, "paths", None) for job in batch.jobs], batch

    async def resume(self) -> tuple[list[Edit], list[Job]]:
        """The durable queue's unfinished batches run again: edits of paths are followed again (the
        farm API lists them); uploads of a previous run are cancelled, since whoever sent them is gone."""
        uploads = (self.work_dir / "uploads").resolve()
        resumed, stale = [], []
        for batch in await self.farm.resume_unfinished():
            for job in batch.jobs:
                if job.input.resolve().is_relative_to(uploads):
                    stale.append(job)
                else:
                    resumed.append(self._track(job, "paths", None))
        self.farm.cancel([job.id for job in stale])  # before anything runs: nothing awaited since
        return resumed, stale

    def _track(self, job: Job, source: str, folder: Path | None) -> Edit:
        edit = Edit(job, source, time.time(), folder)
        self._edits[job.id] = edit
        if job.state.finished:  # it ended before we listened (never in practice: the farm runs on this loop)
            self._ended(edit)
        return edit

    # ------------------------------------------------------------------ following
    def get(self, edit_id: str) -> Edit | None:
        return self._edits.get(edit_id)

    def all(self) -> list[Edit]:
        return list(self._edits.values())

    async def wait(self, edit: Edit) -> Job:
        """Until the edit ends; EditFailed unless it is done. Cancelling the wait cancels the edit."""
        try:
            job = await asyncio.shield(edit.done)
        except asyncio.CancelledError:
            if not edit.done.done():
                self.farm.cancel([edit.id])
            raise
        if job.state is not JobState.DONE:
            raise EditFailed(job)
        return job

    async def result(self, edit: Edit) -> bytes:
        return await asyncio.to_thread(read_bytes, edit.job.output)

    async def run(self, image: bytes, image_format: str, mask: bytes | None, spec: EditSpec) -> tuple[bytes, Job]:
        """An IOPaint-style call: submit, wait, read, forget (the files go at once)."""
        edit = await self.submit_upload(image, image_format, mask, spec, source="iopaint")
        try:
            job = await self.wait(edit)
            return await self.result(edit), job
        finally:
            self._forget(edit)

    def cancel(self, edit: Edit) -> None:
        self.farm.cancel([edit.id])

    def worker_name(self, job: Job) -> str:
        if not job.worker:
            return ""
        return next((w.name for w in self.farm.workers() if w.id == job.worker), job.worker)

    def to_dict(self, edit: Edit) -> dict[str, Any]:
        job = edit.job
        return {
            "id": edit.id,
            "state": job.state.value,
            "progress": 1.0 if job.state is JobState.DONE else round(edit.progress, 4),
            "error": job.error,
            "worker": job.worker,
            "worker_name": self.worker_name(job),
            "attempts": job.attempts,
            "source": edit.source,
            "input": str(job.input) if edit.source == "paths" else None,
            "output": str(job.output) if edit.source == "paths" else None,
            "content_type": CONTENT_TYPES.get(job.output.suffix, "application/octet-stream"),
            "spec": job.spec.to_dict(),
            "created": edit.created,
            "finished": edit.finished,
        }

    # ------------------------------------------------------------------ internals
    def _on_event(self, event: FarmEvent) -> None:
        if not isinstance(event, JobEvent):
            return
        edit = self._edits.get(event.job.id)
        if edit is None:
            return
        if event.progress is not None:
            edit.progress = event.progress
            for listener in list(self.progress_listeners):
                _call(listener, edit, event.progress)
        elif event.job.state.finished:
            self._ended(edit)
        elif event.job.state is JobState.QUEUED and edit.done.done():  # retried (farm.retry): follow it again
            edit.done = asyncio.get_running_loop().create_future()
            edit.finished = None

    def _ended(self, edit: Edit) -> None:
        edit.finished = time.time()
        if not edit.done.done():
            edit.done.set_result(edit.job)
        for listener in list(self.end_listeners):
            _call(listener, edit)

    def _forget(self, edit: Edit) -> None:
        self._edits.pop(edit.id, None)
        if edit.folder is not None:
            shutil.rmtree(edit.folder, ignore_errors=True)

    def expire(self, now: float | None = None) -> None:
        """Finished edits older than ``retention`` go, with their uploaded files and results."""
        now = time.time() if now is None else now
        for edit in list(self._edits.values()):
            if edit.finished is not None and now - edit.finished > self.retention:
                self._forget(edit)


def _jobs_of(batch: Batch) -> list[Job]:
    if not batch.jobs:
        why = "; ".join(str(p) for p in batch.problems) or "the image was not accepted"
        raise FarmError(why)
    return batch.jobs


def _call(listener: Callable[..., None], *args: Any) -> None:
    try:
        listener(*args)
    except Exception:
        log.exception("edit listener failed")
