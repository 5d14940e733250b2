"""`lanfarm run` as a new user meets it (issue 17): reruns, folders, masks, engines, checks up front,
skipped files, library noise, peers and nodes. Each test runs the real command in a subprocess."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import LANFARM, box_mask, png_bytes, scene, subprocess_env
from tests.farm.cli.test_run import run_cli
from tests.node.helpers import TOKEN, node_env, start_node, stop_node


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _shoot(root: Path, names: tuple[str, ...] = ("a", "b")) -> Path:
    """Images with their masks in a masks/ folder beside them."""
    for i, name in enumerate(names):
        _write(root / f"{name}.png", png_bytes(scene(seed=i)))
        _write(root / "masks" / f"{name}.png", png_bytes(box_mask()))
    return root


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# 1 ------------------------------------------------------------------------------------------------
def test_a_rerun_keeps_up_to_date_outputs_and_redoes_changed_ones(tmp_path: Path) -> None:
    src, out = _shoot(tmp_path / "in"), tmp_path / "out"
    first = run_cli("run", str(src), "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert _files(out) == ["a.png", "b.png"]
    before = {name: (out / name).stat().st_mtime_ns for name in ("a.png", "b.png")}

    again = run_cli("run", str(src), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "done 0, failed 0, up to date 2" in again.stdout
    assert "nothing to do: 2 outputs already match their inputs and this edit" in again.stdout
    assert _files(out) == ["a.png", "b.png"]  # no a-1.png
    assert {name: (out / name).stat().st_mtime_ns for name in before} == before

    _write(src / "b.png", png_bytes(scene(seed=9)))  # a changed input is done again, the other kept
    changed = run_cli("run", str(src), "--out", str(out), "--json")
    summary = json.loads(changed.stdout)
    assert [Path(p).name for p in summary["up_to_date"]] == ["a.png"]
    assert [Path(p).name for p in summary["done"]] == ["b-1.png"]  # the earlier output is never overwritten

    other_edit = run_cli("run", str(src), "--out", str(out), "--param", "radius=7", "--json")
    assert len(json.loads(other_edit.stdout)["done"]) == 2  # another edit is not up to date

    redo = run_cli("run", str(src), "--out", str(out), "--overwrite")
    assert redo.returncode == 0 and "done 2" in redo.stdout
    assert (out / "a.png").stat().st_mtime_ns != before["a.png"]


def test_rerunning_a_batch_that_had_failures_does_not_call_it_interrupted(tmp_path: Path) -> None:
    src, out = _shoot(tmp_path / "in"), tmp_path / "out"
    good = png_bytes(scene(seed=5))
    _write(src / "c.png", good[: len(good) // 2])
    _write(src / "masks" / "c.png", png_bytes(box_mask()))
    first = run_cli("run", str(src), "--out", str(out))
    assert first.returncode == 1 and "done 2, failed 1" in first.stdout
    _shoot(src, ("d",))  # and a new image since
    second = run_cli("run", str(src), "--out", str(out))
    assert second.returncode == 1
    assert "interrupted" not in second.stderr and "resuming" not in second.stderr
    assert "done 1, failed 1, up to date 2" in second.stdout  # the failed one tried again, the new one done
    assert "cut.png" not in second.stdout and "c.png: corrupt" in second.stderr
    assert _files(out) == ["a.png", "b.png", "d.png"]


# 2 ------------------------------------------------------------------------------------------------
def test_subfolders_are_mirrored_and_masks_folders_are_never_input(tmp_path: Path) -> None:
    src, out = tmp_path / "shoot", tmp_path / "out"
    _shoot(src, ("dusk",))
    _shoot(src / "day2", ("dusk", "noon"))  # the same name in a subfolder does not collide
    masks = _shoot(tmp_path / "given-masks", ("dusk",))  # a --mask folder inside the inputs: never input
    result = run_cli("run", str(src), "--out", str(out), "--op", "inpaint", "--json")
    assert result.returncode == 0, result.stderr
    assert _files(out) == ["day2/dusk.png", "day2/noon.png", "dusk.png"]
    # masks/ beside the images was used: the masked box changed, the rest is byte-identical
    edited = cv2.imread(str(out / "day2" / "noon.png"))
    original = scene(seed=1)
    outside = box_mask() == 0
    assert np.array_equal(edited[outside], original[outside]) and not np.array_equal(edited, original)
    with_mask = run_cli("run", str(tmp_path / "given-masks"), "--mask", str(masks / "masks"), "--out", str(out / "g"))
    assert with_mask.returncode == 0, with_mask.stderr
    assert _files(out / "g") == ["dusk.png"]


# 3 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mask", "missing-masks"], "error: mask missing-masks: no such file or folder"),
        (["--max-megapixels", "-1"], "argument --max-megapixels: -1 is not above 0"),
        (["--quality", "0"], "argument --quality: 0 is not from 1 to 100"),
        (["--jobs", "0"], "argument --jobs: 0 is not above 0"),
        (["--priority", "5000"], "argument --priority: 5000 is not from -1000 to 1000"),
        (["--param", "radius=999"], "error: param 'radius' must be at most 64, got 999"),
        (["--device", "tpu"], "error: unknown device 'tpu'"),
        (["--local-only", "--no-local"], "error: --local-only and --no-local leave no worker"),
        (["--no-local"], "error: --no-local leaves no worker: discovery is off and no peer"),
    ],
)
def test_what_is_knowable_is_refused_up_front_once(tmp_path: Path, args: list[str], message: str) -> None:
    src = _shoot(tmp_path / "in", ("a", "b", "c"))
    out = tmp_path / "out"
    result = subprocess.run(
        [*LANFARM, "run", "in", "--out", "out", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count(message) == 1, result.stderr
    assert result.stderr.count("error") == 1 and "Traceback" not in result.stderr
    assert not out.exists() and _files(src) == ["a.png", "b.png", "c.png", "masks/a.png", "masks/b.png", "masks/c.png"]


def test_images_without_a_mask_are_one_message_that_says_how_to_give_one(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        _write(tmp_path / "in" / f"{name}.png", png_bytes(scene()))
    result = run_cli("run", str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.count("error:") == 1
    assert "3 images without a mask, and opencv needs one: give --mask FILE_OR_FOLDER" in result.stderr
    assert "NAME_mask.png beside each image or NAME.png in a masks/ folder" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


# 4 ------------------------------------------------------------------------------------------------
def test_the_operation_picks_its_engine_and_an_engine_implies_its_operation(tmp_path: Path) -> None:
    src = _shoot(tmp_path / "in")
    upscale = run_cli("run", str(src), "--out", str(tmp_path / "up"), "--op", "upscale", "--local-only")
    assert upscale.returncode == 2  # said once, before any image: not "engine 'cv2' cannot upscale" per image
    assert upscale.stderr.count("error:") == 1 and "cv2" not in upscale.stderr
    assert "no engine here can upscale" in upscale.stderr
    assert not (tmp_path / "up").exists()
    mismatch = run_cli("run", str(src), "--out", str(tmp_path / "x"), "--engine", "opencv", "--op", "upscale")
    assert mismatch.returncode == 2
    assert "engine 'opencv' cannot upscale (it does: inpaint); drop --engine" in mismatch.stderr
    by_name = run_cli("run", str(src), "--out", str(tmp_path / "new"), "--engine", "opencv")  # implies inpaint
    by_old_id = run_cli("run", str(src), "--out", str(tmp_path / "old"), "--engine", "cv2")
    by_op = run_cli("run", str(src), "--out", str(tmp_path / "op"), "--op", "inpaint")
    assert by_name.returncode == by_old_id.returncode == by_op.returncode == 0, by_name.stderr + by_old_id.stderr
    assert (tmp_path / "new" / "a.png").read_bytes() == (tmp_path / "old" / "a.png").read_bytes()
    assert (tmp_path / "op" / "a.png").read_bytes() == (tmp_path / "old" / "a.png").read_bytes()
    unknown = run_cli("run", str(src), "--out", str(tmp_path / "u"), "--engine", "nope", "--local-only")
    assert unknown.returncode == 2 and "unknown engine 'nope' (known here: opencv" in unknown.stderr


def test_skipped_files_are_counted_and_library_noise_stays_off_the_terminal(tmp_path: Path) -> None:
    src = _shoot(tmp_path / "in")
    _write(src / "vector.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    whole = png_bytes(scene(seed=3))
    _write(src / "cut.png", whole[: len(whole) // 2])  # libpng prints "PNG input buffer is incomplete"
    _write(src / "masks" / "cut.png", png_bytes(box_mask()))
    result = run_cli("run", str(src), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "done 2, failed 1; outputs in" in result.stdout
    assert "skipped 1 file that is not an image: vector.svg" in result.stdout
    assert "cut.png: corrupt image data" in result.stderr
    assert "libpng" not in result.stderr and "WARN" not in result.stderr, result.stderr
    loud = run_cli("-v", "run", str(src), "--out", str(tmp_path / "loud"))  # -v lets it through: it is real
    assert "libpng error: PNG input buffer is incomplete" in loud.stderr


# 5 ------------------------------------------------------------------------------------------------
def test_a_dead_peer_is_reported_at_the_start_while_this_pc_works(tmp_path: Path) -> None:
    src = _shoot(tmp_path / "in")
    port = _closed_port()
    result = run_cli("run", str(src), "--out", str(tmp_path / "out"), "--peer", f"127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    assert f"warning: peer 127.0.0.1:{port} not reached: connection refused" in result.stderr
    assert "done 2, failed 0" in result.stdout


@pytest.fixture
def sim_node(tmp_path: Path) -> Iterator[str]:
    """A real node on 127.0.0.1 with the SIMULATED engine (which this PC lacks unless --simulate)."""
    home = tmp_path / "node"
    args = ("--host", "127.0.0.1", "--port", "0", "--no-advertise", "--name", "gpu-box", "--simulate")
    proc, url = start_node(home, *args, env=node_env(home))
    try:
        yield url.removeprefix("https://")
    finally:
        stop_node(proc)


def test_only_nodes_the_first_answer_ends_the_wait_and_a_missing_engine_is_refused(
    sim_node: str, tmp_path: Path
) -> None:
    src = _shoot(tmp_path / "in")
    token = _write(tmp_path / "token", TOKEN.encode())
    common = ["--peer", sim_node, "--token-file", str(token), "--wait", "600"]  # a cap, not a wait
    result = run_cli("run", str(src), "--out", str(tmp_path / "out"), "--engine", "sim", "--no-local", *common)
    assert result.returncode == 0, result.stderr
    assert "gpu-box" in result.stdout and "done 2, failed 0" in result.stdout
    missing = run_cli("run", str(src), "--out", str(tmp_path / "o2"), "--engine", "esrgan", "--no-local", *common)
    assert missing.returncode == 2
    assert "(no node has it)" in missing.stderr and missing.stderr.count("error:") == 1


# 8 ------------------------------------------------------------------------------------------------
def test_iopaint_spellings_priority_and_concat(tmp_path: Path) -> None:
    src = _shoot(tmp_path / "in", ("a",))
    out = tmp_path / "out"
    result = run_cli("run", "--image", str(src), "--output", str(out), "--concat", "--priority", "7")
    assert result.returncode == 0, result.stderr
    side_by_side = cv2.imread(str(out / "a.png"))
    assert side_by_side.shape == (120, 480, 3)  # image | mask | result
    assert np.array_equal(side_by_side[:, :160], scene(seed=0))
    assert np.array_equal(side_by_side[:, 160:320, 0], box_mask())
    model_as_engine = run_cli("run", "-i", str(src), "-o", str(tmp_path / "m"), "--model", "cv2")  # IOPaint's --model
    assert model_as_engine.returncode == 0, model_as_engine.stderr
    store = next((Path(subprocess_env()["LANFARM_HOME"])).rglob("queue.sqlite3"))
    with sqlite3.connect(store) as db:
        assert {row[0] for row in db.execute("SELECT priority FROM jobs")} == {7, 0}
    again = run_cli("run", "--image", str(src), "--output", str(out), "--concat", "--priority", "7")
    assert "up to date 1" in again.stdout  # the side-by-side output is what was recorded


def test_ctrl_c_ends_with_130_and_says_how_to_resume(tmp_path: Path) -> None:
    import signal
    import time

    src, out = tmp_path / "in", tmp_path / "out"
    rng = np.random.default_rng(2)
    n = 80
    for i in range(n):
        _write(src / f"p{i:03d}.png", png_bytes(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)))
        _write(src / "masks" / f"p{i:03d}.png", png_bytes(box_mask(320, 240, (100, 80, 220, 160))))
    args = [*LANFARM, "run", str(src), "--out", str(out), "--jobs", "1", "--param", "radius=12"]
    proc = subprocess.Popen(args, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60  # a bound on the test, not a timed assertion
    while time.monotonic() < deadline and proc.poll() is None and len(list(out.glob("p*.png"))) < 5:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted: run the same command again to resume" in stderr and "Traceback" not in stderr
    first = len(list(out.glob("p*.png")))
    assert 5 <= first < n, "the run was not interrupted mid-batch"
    _shoot(src, ("zz",))  # a new image after the interruption: said, and edited by the next run
    again = subprocess.run(args, env=subprocess_env(), capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert f"resuming an interrupted run: {first} already done" in again.stderr
    assert "note: 1 file came after the interrupted run (zz.png): run the same command again" in again.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"p{i:03d}.png" for i in range(n)]
    last = subprocess.run(args, env=subprocess_env(), capture_output=True, text=True, timeout=120, check=False)
    assert last.returncode == 0 and f"done 1, failed 0, up to date {n}" in last.stdout, last.stdout + last.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([f"p{i:03d}.png" for i in range(n)] + ["zz.png"])
