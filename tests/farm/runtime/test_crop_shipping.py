"""Send the crop, not the photo: an inpaint through a real node is byte-identical to this PC's own run,
and the node never receives the whole image (its blob store is inspected)."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from farm import EditSpec, default_registry
from farm.core.job import JobState
from farm.core.scheduler import LOCAL, JobRequest, WorkerCaps
from farm.core.spec import HdStrategy, OutputSpec
from farm.imaging.shipping import cut
from farm.runtime.dispatch import Dispatcher, FarmOptions
from farm.runtime.planning import plan
from tests.node.helpers import TOKEN, node_env, start_node, stop_node

W, H = 1600, 1000
CROP = EditSpec(engine="cv2", output=OutputSpec("keep"))
RESIZE = EditSpec(engine="cv2", hd=HdStrategy("resize", resize_limit=640), output=OutputSpec("keep"))


def _photo(seed: int, channels: int = 3, dtype: type = np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W]
    base = np.dstack([x * 255 / W, y * 255 / H, (x + y) * 127 / (W + H), np.full((H, W), 200.0)])[:, :, :channels]
    img = np.clip(base + rng.normal(0, 8, base.shape), 0, 255)
    return (img * 257).astype(np.uint16) if dtype is np.uint16 else img.astype(np.uint8)


def _mask() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[400:470, 900:1010] = 255  # a watermark: 0.5 % of the frame
    return m


def _inputs(folder: Path) -> Path:
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "rgb.png"), _photo(1))
    cv2.imwrite(str(folder / "deep.png"), _photo(2, dtype=np.uint16))
    cv2.imwrite(str(folder / "alpha.png"), _photo(3, channels=4))
    jpeg = io.BytesIO()
    Image.fromarray(cv2.cvtColor(_photo(4), cv2.COLOR_BGR2RGB)).save(jpeg, "JPEG", quality=88)
    (folder / "photo.jpg").write_bytes(jpeg.getvalue())
    for stem in ("rgb", "deep", "alpha", "photo"):
        cv2.imwrite(str(folder / f"{stem}_mask.png"), _mask())
    return folder


def _batch(folder: Path, n: int, seed: int) -> Path:
    """``n`` photos with the watermark mask each."""
    folder.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"p{i}.png"), _photo(seed + i))
        cv2.imwrite(str(folder / f"p{i}_mask.png"), _mask())
    return folder


async def _run(src: Path, out: Path, spec: EditSpec, node: str | None, shipping: str = "crop") -> dict[str, bytes]:
    out.mkdir(parents=True)
    items, problems = plan([src], None, out, spec.output)
    assert not problems
    options = FarmOptions(use_local=node is None, shipping=shipping)
    async with Dispatcher(default_registry(), token=TOKEN, options=options) as farm:
        if node is not None:
            await farm.add_peer(node)
        jobs = await farm.submit(items, spec)
        await farm.wait()
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    assert ("local" in {j.worker for j in jobs}) == (node is None)
    return {i.output.name: i.output.read_bytes() for i in items}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    home = tmp_path / "node"
    env = node_env(home)  # LANFARM_HOME: its blobs are under home/cache
    proc: subprocess.Popen[bytes]
    proc, url = start_node(home, "--host", "127.0.0.1", "--port", "0", "--no-advertise", env=env)
    yield url, home
    stop_node(proc)


def _blob_sizes(home: Path) -> list[int]:
    return [p.stat().st_size for p in home.rglob("*") if p.is_file() and len(p.name) == 64]


@pytest.mark.parametrize("spec", [CROP, RESIZE], ids=["crop", "resize"])
async def test_a_shipped_inpaint_equals_a_local_one_and_only_the_crop_travels(
    tmp_path: Path, node: tuple[str, Path], spec: EditSpec
) -> None:
    url, home = node
    src = _inputs(tmp_path / "in")
    local = await _run(src, tmp_path / "local", spec, None)
    shipped = await _run(src, tmp_path / "shipped", spec, url)
    assert sorted(local) == ["alpha.png", "deep.png", "photo.jpg", "rgb.png"]
    assert shipped == local, [name for name in local if shipped.get(name) != local[name]]
    deep = cv2.imdecode(np.frombuffer(shipped["deep.png"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert deep.dtype == np.uint16
    assert cv2.imdecode(np.frombuffer(shipped["alpha.png"], np.uint8), cv2.IMREAD_UNCHANGED).shape[2] == 4
    untouched = _mask() == 0
    assert np.array_equal(deep[untouched], _photo(2, dtype=np.uint16)[untouched])  # every unmasked pixel
    sizes = _blob_sizes(home)
    assert len(sizes) >= 8, "the node stored too little (wrong blob folder?)"
    # what the engine sees, as raw 8-bit BGR: the crop box, or the whole frame scaled to 640 px
    seen = (70 + 2 * 128) * (110 + 2 * 128) if spec is CROP else 640 * 400
    assert max(sizes) <= seen * 3 * 1.01 + 1024, f"the node received {max(sizes)} bytes in one blob"
    whole = sum((src / n).stat().st_size for n in ("rgb.png", "deep.png", "alpha.png", "photo.jpg"))
    assert sum(sizes) < whole / (8 if spec is CROP else 3), (sum(sizes), whole)  # blobs up and results down


def test_a_small_edit_or_an_empty_mask_travels_whole() -> None:
    small = cv2.imencode(".png", _photo(5)[:600, :700])[1].tobytes()
    small_mask = cv2.imencode(".png", _mask()[:600, :700])[1].tobytes()
    assert cut(small, small_mask, CROP) is None  # under the trigger: the engine sees all of it
    photo = cv2.imencode(".png", _photo(5))[1].tobytes()
    assert cut(photo, cv2.imencode(".png", np.zeros((H, W), np.uint8))[1].tobytes(), CROP) is None
    shipment = cut(photo, cv2.imencode(".png", _mask())[1].tobytes(), CROP)
    assert shipment is not None and shipment.spec.hd.strategy == "original" and shipment.spec.output.format == "png"
    assert shipment.view.image.shape == (70 + 2 * 128, 110 + 2 * 128, 3)


@pytest.mark.parametrize(("shipping", "n", "seed"), [("whole", 3, 10), ("auto", 5, 30)])
async def test_whole_images_travel_when_asked_or_when_the_engine_is_light(
    tmp_path: Path, node: tuple[str, Path], shipping: str, n: int, seed: int
) -> None:
    """``whole``: the node gets the input as it is and does all of it. ``auto`` with OpenCV's inpaint, which
    costs less than decoding and encoding its frame (its descriptor says ``light``): a crop would cost this
    PC about as much as the edit, so every input travels whole, those sent once the link is measured and
    the cut not yet too (any other engine would then cut one to measure it). The outputs are the same."""
    assert default_registry().descriptor("cv2").light
    url, home = node
    src = _batch(tmp_path / "in", n, seed=seed)
    local = await _run(src, tmp_path / "local", CROP, None)
    assert await _run(src, tmp_path / shipping, CROP, url, shipping=shipping) == local
    inputs = {p.stat().st_size for p in src.glob("p?.png")}
    assert inputs <= set(_blob_sizes(home)), "a crop travelled: the whole inputs did not reach the node"


def test_whole_sends_do_not_make_a_crop_look_as_big_as_its_photo() -> None:
    """The scheduler counts what travels, crops and whole files alike; the crop-or-whole choice weighs what a
    crop would move. Whole sends must not teach it that crops are as big as photos (every input would then
    go whole, on any link, for the rest of the batch)."""
    mb = 1_000_000
    farm = Dispatcher(default_registry(), token=TOKEN, options=FarmOptions(use_local=False))
    farm.scheduler.worker_up(WorkerCaps("n", engines=frozenset({"lama"})), 0.0)
    farm.scheduler.link_measured("n", 12 * mb, 1.0)  # about 100 Mbit/s
    farm.cut_measured(1.0, 40 * mb)  # cutting a 40 MB PNG and pasting its result: 1 s here
    farm.shipped(0.03)
    for _ in range(10):
        farm.shipped(1.0, cut=False)
    assert farm.scheduler.ship_ratio > 0.9  # what travelled: mostly whole files
    assert not farm.prefer_whole("n", 40 * mb)  # a crop: 6.5 s less on the wire against 1 s of CPU here


def test_an_edit_on_the_simulated_gpu_sends_its_crop_where_the_whole_files_take_longer_than_the_edit() -> None:
    """This PC edits on the (SIMULATED) GPU in 2.4 s, cutting and pasting a 40 MB PNG costs it 2.2 s: over
    half the edit, but its CPU idles during its edits, and the whole files would add 6.5 s of link at
    100 Mbit/s, longer than the edit takes here. The crop goes (an edit on the CPU would send it whole)."""
    mb = 1_000_000
    farm = Dispatcher(default_registry(simulate=True), token=TOKEN, options=FarmOptions())
    s = farm.scheduler
    s.worker_up(WorkerCaps(LOCAL, engines=frozenset({"sim"}), local=True), 0.0)
    now = 0.0
    for i in range(3):  # this PC timed at 2.4 s a job
        s.add_jobs([JobRequest(f"warm{i}", "sim")], now)
        s.started(f"warm{i}", LOCAL, now)
        now += 2.4
        s.succeeded(f"warm{i}", LOCAL, now)
        s.committed(f"warm{i}", now)
    s.worker_up(WorkerCaps("n", engines=frozenset({"sim"})), now)
    s.link_measured("n", 12 * mb, 1.0)
    farm.cut_measured(2.2, 40 * mb)
    farm.shipped(0.03)
    s.add_jobs([JobRequest("photo", "sim")], now)
    assert farm.registry.off_cpu("sim")
    assert not farm.prefer_whole("n", 40 * mb, "photo")


async def test_crops_for_nodes_are_cut_and_pasted_one_at_a_time(
    tmp_path: Path, node: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cutting and pasting decode and encode whole frames on this PC: a burst of dispatches to a node must
    not run them all at once beside this PC's own edits (the real cut and paste, watched)."""
    import threading
    import time

    from farm.runtime import workers

    lock, inside, most = threading.Lock(), [0], [0]

    def watched(fn):  # type: ignore[no-untyped-def]
        def run(*args, **kwargs):  # type: ignore[no-untyped-def]
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            try:
                time.sleep(0.05)  # long enough that two dispatched together would overlap
                return fn(*args, **kwargs)
            finally:
                with lock:
                    inside[0] -= 1

        return run

    monkeypatch.setattr(workers, "cut", watched(workers.cut))
    monkeypatch.setattr(workers, "paste", watched(workers.paste))
    url, _home = node
    src = _batch(tmp_path / "in", 6, seed=20)
    local = await _run(src, tmp_path / "local", CROP, None)
    assert await _run(src, tmp_path / "shipped", CROP, url) == local
    assert most[0] == 1, f"{most[0]} cuts or pastes ran at once"


async def test_a_whole_input_goes_while_a_crop_is_being_cut_for_another_node(
    tmp_path: Path, node: tuple[str, Path]
) -> None:
    """Only crops take turns at this PC's CPU: a whole input (OpenCV's light inpaint, ``auto``) travels while
    another node's crop holds the cut (here held for the whole batch); it used to wait for that cut
    first, and in the lab a node idled 0.4 s for each. The batch ends; a wait for the cut never would."""
    import asyncio

    url, home = node
    src = _batch(tmp_path / "in", 2, seed=40)
    out = tmp_path / "out"
    out.mkdir()
    items, problems = plan([src], None, out, CROP.output)
    assert not problems
    async with Dispatcher(default_registry(), token=TOKEN, options=FarmOptions(use_local=False)) as farm:
        await farm.add_peer(url)
        async with farm._host_cpu:  # another node's crop being cut, all along
            jobs = await farm.submit(items, CROP)
            await asyncio.wait_for(farm.wait(), 30)
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    assert {p.stat().st_size for p in src.glob("p?.png")} <= set(_blob_sizes(home))
