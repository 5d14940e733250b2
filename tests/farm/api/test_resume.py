"""The serve's durable queue: after a stop, edits of paths run again and are listed; uploads of the
previous run are cancelled (their callers are gone) and their files removed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiohttp

from farm.api.app import EDITS
from farm.core.job import JobState
from farm.runtime.farm import FarmSettings
from tests.farm.api.helpers import box, encode, scene, serving
from tests.farm.runtime.test_farm import samples

SPEC = {"schema": 1, "op": "inpaint", "engine": "cv2", "params": {}}


async def test_path_edits_resume_and_old_uploads_are_cancelled(tmp_path: Path) -> None:
    folder, out, store = samples(tmp_path), tmp_path / "out", tmp_path / "queue.sqlite3"
    stopped = FarmSettings(nodes=False, use_local=False, store=store, retry_failed_on_resume=False)
    async with serving(tmp_path, stopped) as s:  # no worker: everything stays queued until the stop
        async with s.http.post(
            s.url + "/farm/v1/edits", json={"spec": SPEC, "paths": [str(folder)], "out_dir": str(out)}
        ) as r:
            assert r.status == 202
        form = aiohttp.FormData()
        form.add_field("spec", json.dumps(SPEC))
        form.add_field("image", io.BytesIO(encode(scene(64, 64))), filename="i.png")
        form.add_field("mask", io.BytesIO(encode(box(64, 64, (8, 8, 30, 30)))), filename="m.png")
        async with s.http.post(s.url + "/farm/v1/edits", data=form) as r:
            assert r.status == 202
        assert s.farm.queued() == 5
    assert any((tmp_path / "serve" / "uploads").iterdir())
    again = FarmSettings(nodes=False, store=store, retry_failed_on_resume=False)
    async with serving(tmp_path, again) as s:
        assert not (tmp_path / "serve" / "uploads").exists()  # the previous run's uploads are gone
        resumed, stale = await s.app[EDITS].resume()
        await s.farm.wait()
        assert len(resumed) == 4 and len(stale) == 1 and stale[0].state is JobState.CANCELLED
        async with s.http.get(s.url + "/farm/v1/edits") as r:
            listed = (await r.json())["edits"]
    assert sorted(Path(e["input"]).name for e in listed) == ["dusk.png", "harbour.png", "meadow.png", "studio.png"]
    assert {e["state"] for e in listed} == {"done"}
    assert sorted(p.name for p in out.iterdir()) == ["dusk.png", "harbour.png", "meadow.png", "studio.png"]
