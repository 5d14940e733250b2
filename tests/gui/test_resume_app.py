"""The app stopped mid-queue and started again resumes: finished outputs are not redone, the rest runs."""

from __future__ import annotations

from pathlib import Path

from farm.core.job import JobState
from farm.core.spec import EditSpec
from farm.engines.installed import default_registry
from gui.app import LanFarmApp
from gui.settings import SettingsStore
from tests.gui.conftest import running, until, write_inputs

SLOW = EditSpec(engine="sim", params={"seconds_per_mp": 15.0})  # SIMULATED GPU: ~0.3 s per 160x120 image


def test_unfinished_edits_resume_after_a_restart(qloop, store: SettingsStore, tmp_path: Path) -> None:
    images = write_inputs(tmp_path / "in", 6)
    out = tmp_path / "out"
    first = LanFarmApp(store=store, registry=default_registry(simulate=True), use_tray=False)
    stamps: dict[str, int] = {}

    async def interrupted() -> None:
        async with running(first):
            jobs = await first.controller.add_paths(images, SLOW)
            assert len(jobs) == 6
            await until(lambda: any(j.state is JobState.DONE for j in jobs), what="a first edit")
        # read once the app has stopped: an edit may end between the first one and the stop
        stamps.update({p.name: p.stat().st_mtime_ns for p in out.glob("img*.png")})
        assert len(stamps) < 6, "everything finished before the app stopped"

    qloop(interrupted())
    second = LanFarmApp(store=SettingsStore(), registry=default_registry(simulate=True), use_tray=False)

    async def resumed() -> None:
        async with running(second):
            farm = second.controller.farm
            assert farm is not None
            assert len(farm.jobs) == 6 - len(stamps), "only the unfinished edits come back"
            await until(
                lambda: all(j.state is JobState.DONE for j in farm.jobs.values()), timeout=30, what="the resumed edits"
            )

    qloop(resumed())
    assert sorted(p.name for p in out.iterdir()) == [f"img{i}.png" for i in range(6)]
    assert all((out / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())
