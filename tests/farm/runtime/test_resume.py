"""A `lanfarm run` SIGKILLed mid-batch and run again with the same arguments does only the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from farm.core.job import JobState
from farm.local.store import QueueStore, batch_key
from tests.conftest import LANFARM, box_mask, png_bytes, subprocess_env

N = 120


def _inputs(src: Path) -> None:
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(N):
        (src / f"p{i:03d}.png").write_bytes(png_bytes(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)))
        (src / f"p{i:03d}_mask.png").write_bytes(png_bytes(box_mask(320, 240, (100, 80, 220, 160))))


def test_killed_run_resumes_exactly(tmp_path: Path, lanfarm_home: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    _inputs(src)
    args = [*LANFARM, "run", str(src), "--out", str(out), "--jobs", "1", "--param", "radius=12"]
    env = subprocess_env(LANFARM_HOME=str(lanfarm_home))
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and len(list(out.glob("p*.png"))) >= 10:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("p*.png")}
    assert 10 <= len(first) < N, "the run was not interrupted mid-batch"

    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert again.returncode == 0, again.stderr
    assert f"already done, {N - len(first)} to do" in again.stderr or f"{len(first)} already done" in again.stderr, (
        again.stderr
    )
    names = sorted(os.listdir(out))
    assert names == [f"p{i:03d}.png" for i in range(N)], "missing, doubled or partial outputs"
    for name, stamp in first.items():  # finished outputs were not redone
        st = (out / name).stat()
        assert (st.st_ino, st.st_mtime_ns) == stamp


def test_store_round_trip_marks_existing_outputs_done(tmp_path: Path) -> None:
    from farm import EditSpec
    from farm.core.job import Job

    store = QueueStore(tmp_path / "q.sqlite3")
    batch = store.new_batch(batch_key("x"))
    jobs = [Job(input=tmp_path / f"{n}.png", spec=EditSpec(), output=tmp_path / "out" / f"{n}.png") for n in "abc"]
    (tmp_path / "out").mkdir()
    store.add_jobs(batch, jobs)
    jobs[0].move(JobState.DISPATCHED)
    jobs[0].move(JobState.RUNNING)
    jobs[0].move(JobState.DONE)
    store.update([jobs[0]])
    (tmp_path / "out" / "b.png").write_bytes(b"written before the crash")
    (tmp_path / "out" / ".c.png.123.abcd.part").write_bytes(b"half")
    assert store.unfinished_batch(batch_key("x")) == batch
    resumed = store.resume(batch)
    assert [j.output.name for j in resumed.done] == ["a.png", "b.png"]
    assert [j.output.name for j in resumed.todo] == ["c.png"] and resumed.todo[0].id == jobs[2].id
    assert not (tmp_path / "out" / ".c.png.123.abcd.part").exists()
    store.finish_batch(batch)
    assert store.unfinished_batch(batch_key("x")) is None
    store.close()


def test_an_output_is_up_to_date_only_while_it_and_its_sources_are_unchanged(tmp_path: Path) -> None:
    image, mask, out = tmp_path / "a.png", tmp_path / "a_mask.png", tmp_path / "out"
    image.write_bytes(b"image one")
    mask.write_bytes(b"mask one")
    out.mkdir()
    output = out / "a.png"
    output.write_bytes(b"result")
    store = QueueStore(tmp_path / "queue.sqlite3")
    try:
        assert store.up_to_date(image, mask, "edit", out) is None  # nothing recorded yet
        store.record_output(output, image, mask, "edit")
        assert store.up_to_date(image, mask, "edit", out) == output.resolve()
        assert store.up_to_date(image, mask, "another edit", out) is None
        assert store.up_to_date(image, None, "edit", out) is None  # another mask (none)
        assert store.up_to_date(image, mask, "edit", tmp_path) is None  # another output folder
        os.utime(image, ns=(1, 1))  # touched, same content: still up to date
        assert store.up_to_date(image, mask, "edit", out) == output.resolve()
        mask.write_bytes(b"mask two")
        assert store.up_to_date(image, mask, "edit", out) is None
        mask.write_bytes(b"mask one")
        output.write_bytes(b"edited by hand")  # the output is no longer what was written
        assert store.up_to_date(image, mask, "edit", out) is None
        store.record_output(output, image, mask, "edit")
        output.unlink()
        assert store.up_to_date(image, mask, "edit", out) is None
    finally:
        store.close()
