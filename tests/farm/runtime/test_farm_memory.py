"""The farm remembers what it measured: a real node app on 127.0.0.1 (https), two batches through
``Farm.open`` with one measurements file. The first batch starts from nothing; the next places the
node by what the first timed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from farm import EditSpec, Farm, FarmEvent, FarmSettings, JobEvent, JobState
from farm.core.address import Address
from farm.core.remembered import edit_key
from farm.core.scheduler import LOCAL
from farm.engines.installed import default_registry
from tests.farm.runtime.test_discovery import node
from tests.farm.runtime.test_farm import SAMPLES
from tests.node.helpers import TOKEN


def inputs(folder: Path, n: int = 12) -> Path:
    """``n`` inputs made of the sample images (and their masks), cycled."""
    folder.mkdir(parents=True)
    images = sorted(SAMPLES.glob("*.png"))
    for i in range(n):
        image = images[i % len(images)]
        shutil.copy(image, folder / f"p{i:02d}.png")
        shutil.copy(SAMPLES / "masks" / image.name, folder / f"p{i:02d}_mask.png")
    return folder


def ahead_of_first_start(seen: list[tuple[str, JobState, str | None]], worker: str) -> int:
    """How many jobs went to ``worker`` before its first job started there."""
    sent: set[str] = set()
    for job_id, state, where in seen:
        if where == worker and state is JobState.RUNNING:
            return len(sent)
        if where == worker and state is JobState.DISPATCHED:
            sent.add(job_id)
    raise AssertionError(f"no job started on {worker}")


async def batch(settings: FarmSettings, folder: Path, out: Path) -> list[tuple[str, JobState, str | None]]:
    """Run the batch; every job event as it came: (job, its state then, its worker then)."""
    seen: list[tuple[str, JobState, str | None]] = []

    def note(event: FarmEvent) -> None:
        if isinstance(event, JobEvent):
            seen.append((event.job.id, event.job.state, event.job.worker))

    async with Farm.open(settings, registry=default_registry()) as farm:
        farm.subscribe(note)
        await farm.wait_for_nodes(5.0)
        assert farm.worker_ids == {"n1", LOCAL}
        done = await farm.submit_paths([folder], None, EditSpec(), out)
        await farm.wait()
        assert [j.state for j in done.jobs] == [JobState.DONE] * len(done.jobs), [j.error for j in done.jobs]
    return seen


def settings_for(address: Address, memory: Path) -> FarmSettings:
    return FarmSettings(token=TOKEN, mdns=False, peers=(address,), heartbeat_interval=0.1, measurements=memory)


async def test_the_next_batch_starts_from_what_the_last_one_measured(tmp_path: Path) -> None:
    """First batch: the node (2 slots), not timed, gets a job for each slot and none ahead until one
    starts (its speed unknown). Its speed and link rate, and this PC's, are written down as the batch
    ends; the next batch recalls them, and the node takes a job ahead of its first from the start."""
    folder, memory = inputs(tmp_path / "in"), tmp_path / "measurements.json"
    async with node("n1", "attic") as (_, address):
        first = await batch(settings_for(address, memory), folder, tmp_path / "out1")
        assert ahead_of_first_start(first, "n1") == 2
        data = json.loads(memory.read_text())
        key = edit_key(EditSpec())
        assert data["speeds"]["n1"][key][0] > 0 and data["speeds"][LOCAL][key][0] > 0
        assert data["links"]["n1"]["127.0.0.1"][0] > 0 and LOCAL not in data["links"]

        second = await batch(settings_for(address, memory), folder, tmp_path / "out2")
        assert ahead_of_first_start(second, "n1") == 3


async def test_a_damaged_measurements_file_costs_only_the_head_start(tmp_path: Path) -> None:
    """Half a file (a crash mid-write elsewhere, a disk error): the batch runs from nothing measured, and
    the file is written whole again as it ends."""
    folder, memory = inputs(tmp_path / "in"), tmp_path / "measurements.json"
    memory.write_text('{"version": 1, "speeds": {"n1": {"x": [0.')
    async with node("n1", "attic") as (_, address):
        seen = await batch(settings_for(address, memory), folder, tmp_path / "out")
    assert ahead_of_first_start(seen, "n1") == 2
    assert json.loads(memory.read_text())["speeds"]["n1"]
