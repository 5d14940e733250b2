"""The front door: ``Farm.open`` with this PC alone, with a real node app on 127.0.0.1, and with a store."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from farm import Batch, BatchEnded, EditSpec, Farm, FarmError, FarmEvent, FarmSettings, JobEvent, JobState, NodeEvent
from farm.core.scheduler import LOCAL
from farm.engines.installed import default_registry
from tests.conftest import REPO
from tests.farm.runtime.test_discovery import node
from tests.node.helpers import TOKEN

SAMPLES = REPO / "resources" / "samples"


def samples(tmp_path: Path) -> Path:
    """A copy of the sample images with their masks as NAME_mask.png beside them."""
    folder = tmp_path / "in"
    folder.mkdir()
    for image in sorted(SAMPLES.glob("*.png")):
        shutil.copy(image, folder / image.name)
        shutil.copy(SAMPLES / "masks" / image.name, folder / f"{image.stem}_mask.png")
    return folder


def events(farm: Farm) -> list[FarmEvent]:
    seen: list[FarmEvent] = []
    farm.subscribe(seen.append)
    return seen


async def test_this_pc_alone_runs_a_batch_and_says_when_it_ended(tmp_path: Path) -> None:
    folder, out = samples(tmp_path), tmp_path / "out"
    async with Farm.open(FarmSettings(nodes=False, local_slots=2)) as farm:
        seen = events(farm)
        batch = await farm.submit_paths([folder], None, EditSpec(), out)
        await farm.wait()
        assert batch.total == 4 and not batch.problems and not batch.unmasked
        assert all(j.state is JobState.DONE and j.output.exists() for j in batch.jobs)
        [ended] = [e for e in seen if isinstance(e, BatchEnded)]
        assert ended.batch is batch and (batch.done, batch.failed) == (4, 0) and batch.finished
        assert {e.job.id for e in seen if isinstance(e, JobEvent)} == {j.id for j in batch.jobs}
        [local] = farm.workers()
        assert local.id == LOCAL and local.local and local.stats.done == 4
        assert farm.stats()[LOCAL].done == 4 and set(farm.jobs) == {j.id for j in batch.jobs}
        assert farm.nodes() == [] and farm.unreached() == []
        with pytest.raises(FarmError, match="uses no nodes"):
            await farm.add_peer("127.0.0.1:9")


async def test_inputs_without_a_mask_are_left_out_when_the_engine_needs_one(tmp_path: Path) -> None:
    folder = samples(tmp_path)
    (folder / "dusk_mask.png").unlink()
    async with Farm.open(FarmSettings(nodes=False)) as farm:
        batch = await farm.submit_paths([folder], None, EditSpec(), tmp_path / "out", only_masked=True)
        await farm.wait()
    assert batch.unmasked == [folder / "dusk.png"]
    assert sorted(j.input.name for j in batch.jobs) == ["harbour.png", "meadow.png", "studio.png"]


async def test_a_resumable_batch_with_a_failure_runs_only_what_is_left_next_time(tmp_path: Path) -> None:
    folder, out, store = samples(tmp_path), tmp_path / "out", tmp_path / "queue.sqlite"
    (folder / "meadow.png").write_bytes(b"not a png")  # fails as the input's own fault
    settings = FarmSettings(nodes=False, store=store)
    async with Farm.open(settings) as farm:
        first = await farm.submit_paths([folder], None, EditSpec(), out, resumable=True)
        await farm.wait()
    assert (first.done, first.failed, first.resumed) == (3, 1, False)
    shutil.copy(SAMPLES / "meadow.png", folder / "meadow.png")  # the user fixes the file
    async with Farm.open(settings) as farm:
        second = await farm.submit_paths([folder], None, EditSpec(), out, resumable=True)
        await farm.wait()
    assert second.resumed and [j.input.name for j in second.jobs] == ["meadow.png"]
    assert len(second.earlier) == 3 and second.jobs[0].state is JobState.DONE
    assert sorted(p.name for p in out.iterdir()) == ["dusk.png", "harbour.png", "meadow.png", "studio.png"]
    async with Farm.open(settings) as farm:  # finished now: the same arguments make a new batch
        third = await farm.submit_paths([folder], None, EditSpec(), out, resumable=True)
        await farm.wait()
    assert not third.resumed and len(third.jobs) == 4


async def test_resume_unfinished_brings_back_what_never_ended(tmp_path: Path) -> None:
    folder, out, store = samples(tmp_path), tmp_path / "out", tmp_path / "queue.sqlite"
    settings = FarmSettings(nodes=False, use_local=False, store=store, retry_failed_on_resume=False)
    async with Farm.open(settings) as farm:  # no worker: the jobs stay queued until the farm closes
        batch = await farm.submit_paths([folder], None, EditSpec(), out)
        assert farm.queued() == 4
    async with Farm.open(FarmSettings(nodes=False, store=store, retry_failed_on_resume=False)) as farm:
        [again] = await farm.resume_unfinished()
        await farm.wait()
    assert again.resumed and again.total == batch.total and again.done == 4
    async with Farm.open(FarmSettings(nodes=False, store=store)) as farm:
        assert await farm.resume_unfinished() == []


async def test_a_node_by_address_works_and_a_new_token_makes_it_unauthorised(tmp_path: Path) -> None:
    folder, out = samples(tmp_path), tmp_path / "out"
    async with node("n1", "attic") as (_, address):
        settings = FarmSettings(token=TOKEN, use_local=False, mdns=False, peers=(address,), heartbeat_interval=0.1)
        async with Farm.open(settings, registry=default_registry()) as farm:
            seen = events(farm)
            await farm.wait_for_nodes(5.0)
            [record] = farm.nodes()
            assert (record.id, record.name, record.state) == ("n1", "attic", "online")
            assert record.info is not None and "cv2" in record.info.engine_ids
            assert farm.worker_ids == {"n1"}
            batch: Batch = await farm.submit_paths([folder], None, EditSpec(), out)
            await farm.wait()
            assert all(j.state is JobState.DONE and j.worker == "n1" for j in batch.jobs)
            [snapshot] = farm.workers()
            assert snapshot.address == address.url and snapshot.info is not None and snapshot.stats.done == 4

            farm.ignore_node("n1", True)
            assert farm.worker_ids == frozenset()
            farm.ignore_node("n1", False)
            assert farm.worker_ids == {"n1"}

            farm.set_token("another farm's token")
            async with asyncio.timeout(5):
                while farm.worker_ids:
                    await asyncio.sleep(0.05)
            refused = [e for e in seen if isinstance(e, NodeEvent) and not e.authorised]
            assert refused and refused[-1].worker_id == "n1" and "401" in refused[-1].reason
            assert farm.nodes()[0].state == "unauthorised"
            farm.set_token(TOKEN)
            async with asyncio.timeout(5):
                while not farm.worker_ids:
                    await asyncio.sleep(0.05)


async def test_a_peer_that_does_not_answer_is_named(tmp_path: Path) -> None:
    async with Farm.open(FarmSettings(token=TOKEN, use_local=False, mdns=False)) as farm:
        with pytest.raises(FarmError, match=r"127\.0\.0\.1:9 did not answer \(connection refused\)"):
            await farm.add_peer("127.0.0.1:9", wait=3.0)
        assert farm.nodes() == []


async def test_a_workers_errors_can_be_read_and_reset(tmp_path: Path) -> None:
    folder = samples(tmp_path)
    registry = default_registry(simulate=True, sim_fail=True)  # the SIMULATED engine fails every job
    settings = FarmSettings(nodes=False, unrunnable_after=0.5)  # a blocklisted only worker: jobs end, not wait
    async with Farm.open(settings, registry=registry) as farm:
        batch = await farm.submit_paths([folder], None, EditSpec(engine="sim"), tmp_path / "out")
        await farm.wait()
        assert all(j.state is JobState.FAILED for j in batch.jobs)
        stats = farm.stats()[LOCAL]
        assert stats.failed >= 1 and stats.errors
        farm.reset_errors(LOCAL)
        assert (farm.stats()[LOCAL].failed, farm.stats()[LOCAL].errors) == (0, [])
