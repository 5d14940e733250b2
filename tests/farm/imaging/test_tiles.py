"""One image split into tiles and stitched back: the grid, the blend, staging, the streamed PNG, memory."""

from __future__ import annotations

import io
import itertools
import os
import random
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from farm.core.spec import EditSpec, OutputSpec
from farm.core.tiling import round_overlap, tile_windows
from farm.errors import ImageError
from farm.imaging import png_stream
from farm.imaging.codec import Picture, decode_image
from farm.imaging.png_stream import PngWriter
from farm.imaging.tiles import BAND_ROWS, Stitch, Tile, cut_tile, grid_for, plan_tiles
from tests.conftest import scene, subprocess_env

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def nearest(window_png: bytes, scale: int) -> bytes:
    """A deterministic per-pixel 'upscaler': what a worker returns for a tile."""
    img = decode_image(window_png).color
    up = cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    return cv2.imencode(".png", up)[1].tobytes()


def stitched(tmp: Path, pic: Picture, tiles: list[Tile], scale: int, results: dict[int, bytes], name: str) -> Path:
    stitch = Stitch(tmp / f"stage-{name}", pic.width, pic.height, tiles, scale)
    for index, data in results.items():
        stitch.save(index, data)
    out = tmp / f"{name}.png"
    stitch.write(out, pic, OutputSpec("png"))
    return out


# --- the grid -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "tile", "overlap", "multiple"),
    [(100, 76, 24, 16, 1), (1000, 700, 512, 32, 1), (301, 203, 100, 10, 8), (64, 64, 16, 8, 4), (50, 40, 512, 32, 1)],
)
def test_the_grid_is_the_in_node_upscales(width: int, height: int, tile: int, overlap: int, multiple: int) -> None:
    """Same tile (rounded down to the multiple, as choose_tile does) and overlap (rounded up, as
    UpscaleEngine.run does) as the engine's own tiling."""
    torch = pytest.importorskip("torch")
    from farm.engines.upscale import choose_tile

    side = choose_tile(torch.device("cpu"), 4, multiple, half=False, requested=tile)
    over = round_overlap(overlap, multiple)
    rows, cols = tile_windows(height, side, over), tile_windows(width, side, over)
    tiles = plan_tiles(width, height, tile=tile, overlap=overlap, multiple=multiple)
    assert [(t.row, t.col) for t in tiles] == list(itertools.product(range(len(rows)), range(len(cols))))
    for t in tiles:
        y0, y1, wy0, wy1 = rows[t.row]
        x0, x1, wx0, wx1 = cols[t.col]
        assert (t.core.x0, t.core.y0, t.core.x1, t.core.y1) == (x0, y0, x1, y1)
        assert (t.window.x0, t.window.y0, t.window.x1, t.window.y1) == (wx0, wy0, wx1, wy1)
    assert [t.index for t in tiles] == list(range(len(tiles)))


def coverage(width: int, height: int, tiles: list[Tile]) -> np.ndarray:
    count = np.zeros((height, width), np.int32)
    for t in tiles:
        count[t.core.y0 : t.core.y1, t.core.x0 : t.core.x1] += 1
        assert 0 <= t.window.x0 <= t.core.x0 < t.core.x1 <= t.window.x1 <= width
        assert 0 <= t.window.y0 <= t.core.y0 < t.core.y1 <= t.window.y1 <= height
    return count


@pytest.mark.parametrize(("width", "height"), [(4000, 3000), (6000, 4000), (3000, 4000), (5000, 1200), (1000, 1000)])
@pytest.mark.parametrize("parts", [1, 2, 3, 4, 6, 8, 12, 16])
def test_grid_for_gives_about_n_near_square_tiles_covering_each_pixel_once(width: int, height: int, parts: int) -> None:
    tiles = grid_for(width, height, parts, overlap=30, multiple=8, min_tile=256)
    assert (coverage(width, height, tiles) == 1).all()
    assert parts / 2 <= len(tiles) <= parts * 2
    full = [t for t in tiles if t.core.x1 < width and t.core.y1 < height] or tiles[:1]
    for t in full:  # the last row and column may be short
        w, h = t.core.x1 - t.core.x0, t.core.y1 - t.core.y0
        assert w % 8 == 0 and h % 8 == 0 and min(w, h) >= 256
        assert max(w, h) / min(w, h) <= 2.5 or len(tiles) == 1, (w, h)
    overlap = round_overlap(30, 8)
    assert all(t.window.x0 == max(0, t.core.x0 - overlap) for t in tiles)


def test_grid_for_picks_the_obvious_grids_and_respects_the_minimum_tile() -> None:
    tiles = grid_for(4000, 3000, 12, overlap=32)
    assert len(tiles) == 12 and {(t.core.x1 - t.core.x0, t.core.y1 - t.core.y0) for t in tiles} == {(1000, 1000)}
    assert len(grid_for(4000, 3000, 4, overlap=32)) == 4
    assert len(grid_for(1000, 300, 8, overlap=32, min_tile=256)) == 3  # 300 px: one row; 1000 px: three columns
    assert len(grid_for(200, 100, 8, overlap=32, min_tile=256)) == 1  # smaller than one tile: not split


def test_cut_tile_is_the_window_in_8_bits() -> None:
    img16 = scene(90, 70).astype(np.uint16) * 257
    pic = Picture(color=img16, alpha=np.full((70, 90), 9, np.uint16))
    tile = plan_tiles(90, 70, tile=32, overlap=8)[4]
    got = cv2.imdecode(np.frombuffer(cut_tile(pic, tile), np.uint8), cv2.IMREAD_UNCHANGED)
    w = tile.window
    assert got.dtype == np.uint8 and got.shape == (w.y1 - w.y0, w.x1 - w.x0, 3)
    assert np.array_equal(got, scene(90, 70)[w.y0 : w.y1, w.x0 : w.x1])


# --- the blend ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "tile", "overlap"), [(3, 40, 12), (4, 32, 8), (2, 64, 0), (1, 30, 20), (4, 8, 20)])
def test_stitching_a_per_pixel_upscaler_equals_the_untiled_result(
    tmp_path: Path, scale: int, tile: int, overlap: int
) -> None:
    """Feathering identical data is the identity: tiled nearest-neighbour == whole-image nearest-neighbour,
    alpha resized band by band == the whole alpha resized as pipeline._scaled does, ICC kept."""
    w, h = 157, 111
    rng = np.random.default_rng(5)
    pic = Picture(color=scene(w, h, seed=2), alpha=rng.integers(0, 256, (h, w), dtype=np.uint8), icc=ICC)
    tiles = plan_tiles(w, h, tile=tile, overlap=overlap)
    assert len(tiles) > 4
    out = stitched(tmp_path, pic, tiles, scale, {t.index: nearest(cut_tile(pic, t), scale) for t in tiles}, "out")
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    want = cv2.resize(pic.color, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
    assert got.shape == (h * scale, w * scale, 4)
    assert np.array_equal(got[:, :, :3], want)
    assert pic.alpha is not None
    want_alpha = cv2.resize(pic.alpha, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(got[:, :, 3], want_alpha)
    with Image.open(out) as im:
        assert im.info.get("icc_profile") == ICC


def test_the_overlap_is_a_linear_ramp_and_the_image_border_is_not(tmp_path: Path) -> None:
    """Two tiles of flat, different colours: the output ramps linearly across the middle of their
    shared strip (2 x overlap wide, the ramp 1 x overlap), and is each tile's own colour elsewhere."""
    w, h, scale, overlap = 200, 40, 2, 20
    tiles = plan_tiles(w, h, tile=100, overlap=overlap)
    assert len(tiles) == 2
    pic = Picture(color=np.zeros((h, w, 3), np.uint8))
    results = {}
    for t, value in zip(tiles, (40, 200), strict=True):
        flat = np.full((t.height * scale, t.width * scale, 3), value, np.uint8)
        results[t.index] = cv2.imencode(".png", flat)[1].tobytes()
    row = cv2.imread(str(stitched(tmp_path, pic, tiles, scale, results, "ramp")))[h, :, 0].astype(int)
    boundary, half = 100 * scale, overlap * scale // 2
    assert (row[: boundary - half] == 40).all() and (row[boundary + half :] == 200).all()
    ramp = row[boundary - half : boundary + half]
    expected = 40 + (200 - 40) * (np.arange(2 * half) + 0.5) / (2 * half)
    assert np.abs(ramp - expected).max() <= 0.5 + 1e-6
    assert (np.diff(ramp) > 0).all()


@pytest.fixture(scope="module")
def upscaler_registry(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A random-weight Real-ESRGAN Compact x4, saved as a user's file and loaded the user's way."""
    pytest.importorskip("torch")
    pytest.importorskip("spandrel")
    from farm.engines.installed import default_registry
    from tests.farm.engines import builders

    folder = tmp_path_factory.mktemp("upscalers")
    builders.save_safetensors(builders.compact_state_dict(scale=4), folder / "compact-x4.safetensors")
    return default_registry(folder, device="cpu")


def seam_scores(out: np.ndarray, seams: list[int], scale: int, axis: int) -> list[float]:
    """How far the mean gradient across each seam line stands out from the lines elsewhere.

    A random-weight model's pixel shuffle draws a pattern of period ``scale``, so a seam line is
    compared with the lines of the same phase away from any seam: |its mean gradient - theirs| in units
    of their spread. A visible seam (a jump, or the flattened edge of a tile without context) stands
    out; a seamless one is one more line like the others.
    """
    lines = out.astype(np.float64) if axis == 1 else out.astype(np.float64).transpose(1, 0, 2)
    grad = np.abs(np.diff(lines, axis=1)).mean(axis=(0, 2))  # grad[x]: between output columns x and x+1
    cuts = [s * scale - 1 for s in seams]
    scores = []
    for cut in cuts:
        peers = [x for x in range(len(grad)) if x % scale == cut % scale and min(abs(x - c) for c in cuts) > 2 * scale]
        scores.append(float(abs(grad[cut] - grad[peers].mean()) / grad[peers].std()))
    return scores


def test_a_real_upscaler_stitched_equals_a_one_worker_tiled_run_with_no_seam(tmp_path: Path, upscaler_registry) -> None:  # type: ignore[no-untyped-def]
    from farm.engines.base import CancelToken
    from farm.imaging.pipeline import execute

    model = "compact-x4.safetensors"
    engine = upscaler_registry.engine("upscale", model)
    w, h, tile, overlap, scale = 160, 120, 48, 16, engine.descriptor.scale
    img = scene(w, h, seed=3)
    pic = Picture(color=img)
    tiles = plan_tiles(w, h, tile=tile, overlap=overlap, multiple=engine.descriptor.size_multiple)

    def one_worker(t: int, o: int) -> np.ndarray:
        return engine.run(img, None, {"tile": t, "overlap": o}, lambda _f: None, CancelToken()).astype(int)

    def farm(tiles: list[Tile], name: str) -> np.ndarray:
        spec = EditSpec(op="upscale", engine="upscale", model=model)  # as a node runs one tile job
        results = {t.index: execute(cut_tile(pic, t), None, spec, upscaler_registry) for t in tiles}
        return cv2.imread(str(stitched(tmp_path, pic, tiles, scale, results, name))).astype(int)

    single = one_worker(tile, overlap)
    out = farm(tiles, "farm")
    assert out.shape == single.shape == (h * scale, w * scale, 3)
    assert np.abs(out - single).max() <= 1
    xs = sorted({t.core.x0 for t in tiles if t.core.x0}), sorted({t.core.y0 for t in tiles if t.core.y0})
    assert len(xs[0]) == 3 and len(xs[1]) == 2
    assert max(seam_scores(out, xs[0], scale, 1) + seam_scores(out, xs[1], scale, 0)) < 3
    # The statistic can fail: a hard cut with too little overlap (none), stitched or in one worker.
    hard = farm(plan_tiles(w, h, tile=tile, overlap=0), "hard")
    assert np.abs(hard - single).max() > 8
    assert min(seam_scores(hard, xs[0], scale, 1) + seam_scores(hard, xs[1], scale, 0)) > 4
    assert min(seam_scores(one_worker(tile, 0), xs[0], scale, 1)) > 4


def test_the_grid_matches_the_windows_the_engine_runs_on(upscaler_registry) -> None:  # type: ignore[no-untyped-def]
    """The engine's own tiling, watched from its model: the same window sizes in the same order."""
    from farm.engines.base import CancelToken

    engine = upscaler_registry.engine("upscale", "compact-x4.safetensors")
    seen: list[tuple[int, int]] = []
    model = engine._model
    engine._model = lambda x: seen.append((int(x.shape[3]), int(x.shape[2]))) or model(x)
    try:
        engine.run(scene(100, 70), None, {"tile": 32, "overlap": 10}, lambda _f: None, CancelToken())
    finally:
        engine._model = model
    assert seen == [(t.width, t.height) for t in plan_tiles(100, 70, tile=32, overlap=10)]


# --- staging and the one write ------------------------------------------------------------------


@pytest.fixture
def small_job() -> tuple[Picture, list[Tile], dict[int, bytes]]:
    pic = Picture(color=scene(130, 90, seed=4), icc=ICC)
    tiles = plan_tiles(130, 90, tile=32, overlap=8)
    return pic, tiles, {t.index: nearest(cut_tile(pic, t), 2) for t in tiles}


def test_results_saved_in_any_order_give_the_same_bytes(tmp_path: Path, small_job) -> None:  # type: ignore[no-untyped-def]
    pic, tiles, results = small_job
    first = stitched(tmp_path, pic, tiles, 2, results, "in-order").read_bytes()
    for n in range(3):
        keys = list(results)
        random.Random(n).shuffle(keys)
        assert stitched(tmp_path, pic, tiles, 2, {k: results[k] for k in keys}, f"shuffled{n}").read_bytes() == first


def test_a_wrong_result_is_refused_naming_the_tile(tmp_path: Path, small_job) -> None:  # type: ignore[no-untyped-def]
    pic, tiles, results = small_job
    stitch = Stitch(tmp_path / "stage", pic.width, pic.height, tiles, 2)
    t = tiles[5]
    wrong = cv2.imencode(".png", np.zeros((t.height * 2, t.width * 2 + 1, 3), np.uint8))[1].tobytes()
    with pytest.raises(ImageError, match=rf"tile 5 \(row {t.row}, column {t.col}\): result is {t.width * 2 + 1}x"):
        stitch.save(5, wrong)
    with pytest.raises(ImageError, match=r"tile 5 .*not an image"):
        stitch.save(5, b"garbage")
    with pytest.raises(ImageError, match="no tile 99"):
        stitch.save(99, results[0])
    assert 5 in stitch.missing


def test_a_missing_tile_makes_write_refuse(tmp_path: Path, small_job) -> None:  # type: ignore[no-untyped-def]
    pic, tiles, results = small_job
    stitch = Stitch(tmp_path / "stage", pic.width, pic.height, tiles, 2)
    for index, data in results.items():
        if index not in (3, 7):
            stitch.save(index, data)
    assert stitch.missing == [3, 7]
    with pytest.raises(ImageError, match="tiles 3, 7 have no result"):
        stitch.write(tmp_path / "out.png", pic, OutputSpec("png"))
    assert not (tmp_path / "out.png").exists()
    # a new Stitch on the same folder (this process restarted) sees what was saved
    again = Stitch(tmp_path / "stage", pic.width, pic.height, tiles, 2)
    assert again.missing == [3, 7]
    again.save(3, results[3])
    again.save(7, results[7])
    again.write(tmp_path / "out.png", pic, OutputSpec("png"))
    again.discard()
    assert not (tmp_path / "stage").exists() and (tmp_path / "out.png").exists()


def test_an_error_midway_leaves_no_output(tmp_path: Path, small_job, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    pic, tiles, results = small_job
    stitch = Stitch(tmp_path / "stage", pic.width, pic.height, tiles, 2)
    for index, data in results.items():
        stitch.save(index, data)
    real = PngWriter.write_rows
    calls = []

    def failing(self: PngWriter, rows: np.ndarray) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(self, rows)

    monkeypatch.setattr(PngWriter, "write_rows", failing)
    out = tmp_path / "out" / "x.png"
    out.parent.mkdir()
    monkeypatch.setattr("farm.imaging.tiles.BAND_ROWS", 16)
    with pytest.raises(Exception, match="No space left"):
        stitch.write(out, pic, OutputSpec("png"))
    assert os.listdir(out.parent) == []  # neither the output nor its temp file
    monkeypatch.setattr(PngWriter, "write_rows", real)
    stitch.write(out, pic, OutputSpec("png"))
    assert os.listdir(out.parent) == ["x.png"]


KILLED_WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from farm.core.spec import OutputSpec
from farm.imaging import tiles as T
from farm.imaging.codec import Picture
from farm.imaging.png_stream import PngWriter

folder = Path(sys.argv[1])
w, h = 120, 90
tiles = T.plan_tiles(w, h, tile=40, overlap=8)
stitch = T.Stitch(folder / "stage", w, h, tiles, 2)
for t in tiles:
    stitch._path(t.index).write_bytes(np.full((t.height * 2, t.width * 2, 3), 7, np.uint8).tobytes())
T.BAND_ROWS = 4
real = PngWriter.write_rows
bands = []
def slow(self, rows):
    real(self, rows)
    bands.append(1)
    if len(bands) == 3:
        print("midway", flush=True)
    time.sleep(0.05)
PngWriter.write_rows = slow
print("writing", flush=True)
stitch.write(folder / "out" / "x.png", Picture(color=np.zeros((h, w, 3), np.uint8)), OutputSpec("png"))
print("done", flush=True)
"""


def test_a_writer_killed_midway_leaves_no_output(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_WRITER), str(tmp_path)],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
            assert proc.stdout.readline() == b"midway\n"  # 3 of 45 bands written, 0.05 s each
            assert [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".part")]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "out" / "x.png").exists()  # only the hidden temp file is left


def test_an_existing_output_is_refused_unless_overwrite(tmp_path: Path, small_job) -> None:  # type: ignore[no-untyped-def]
    pic, tiles, results = small_job
    stitch = Stitch(tmp_path / "stage", pic.width, pic.height, tiles, 2)
    for index, data in results.items():
        stitch.save(index, data)
    for suffix, spec in ((".png", OutputSpec("png")), (".jpg", OutputSpec("jpeg", 90))):
        out = tmp_path / f"taken{suffix}"
        out.write_bytes(b"mine")
        with pytest.raises(FileExistsError):
            stitch.write(out, pic, spec)
        assert out.read_bytes() == b"mine"
        stitch.write(out, pic, spec, overwrite=True)
        assert decode_image(out.read_bytes()).width == pic.width * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage", "taken.jpg", "taken.png"]


def test_other_formats_are_encoded_like_any_output(tmp_path: Path, small_job) -> None:  # type: ignore[no-untyped-def]
    """JPEG (``keep`` on a JPEG source: its quality and EXIF) and WebP, through encode_image."""
    from farm.imaging.codec import encode_image

    _, tiles, results = small_job
    jpeg_src = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "LAN Farm test camera"
    Image.fromarray(scene(130, 90, seed=4)[:, :, ::-1].copy()).save(jpeg_src, format="JPEG", quality=83, exif=exif)
    source = decode_image(jpeg_src.getvalue())
    stitch = Stitch(tmp_path / "stage", 130, 90, tiles, 2)
    for index, data in results.items():
        stitch.save(index, data)
    for name, spec in (("keep.jpg", OutputSpec("keep")), ("out.webp", OutputSpec("webp", 90))):
        stitch.write(tmp_path / name, source, spec)
        whole = Picture(
            color=cv2.imdecode(np.frombuffer(stitched_png(tmp_path, stitch, source), np.uint8), cv2.IMREAD_COLOR),
            icc=source.icc,
            source=source.source,
        )
        assert (tmp_path / name).read_bytes() == encode_image(whole, spec)
    with Image.open(tmp_path / "keep.jpg") as im:
        assert im.getexif().get(0x010F) == "LAN Farm test camera"
    assert sorted(p.name for p in (tmp_path / "stage").iterdir() if not p.name.startswith("tile-")) == []


def stitched_png(tmp_path: Path, stitch: Stitch, source: Picture) -> bytes:
    out = tmp_path / "reference.png"
    stitch.write(out, source, OutputSpec("png"), overwrite=True)
    return out.read_bytes()


# --- the streamed PNG ---------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_the_png_writer_decodes_to_the_same_pixels(channels: int) -> None:
    rng = np.random.default_rng(channels)
    shape = (83, 71) if channels == 1 else (83, 71, channels)
    img = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (0, 0), 1.0)
    img[:5] = rng.integers(0, 256, img[:5].shape, dtype=np.uint8)  # noise too: every byte value wraps
    buf = io.BytesIO()
    writer = PngWriter(buf, 71, 83, channels, icc=ICC)
    start = 0
    for n in (1, 7, 0, 30, 45):
        writer.write_rows(img[start : start + n])
        start += n
    writer.close()
    data = buf.getvalue()
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), img)
    with Image.open(io.BytesIO(data)) as pil:
        assert pil.info.get("icc_profile") == ICC
        rgb = np.asarray(pil)
    order = {1: img, 3: img[:, :, ::-1] if channels == 3 else img, 4: img[:, :, [2, 1, 0, 3]] if channels == 4 else img}
    assert np.array_equal(rgb, order[channels])
    assert decode_image(data).icc == ICC


def test_the_png_writer_refuses_short_or_wrong_rows() -> None:
    writer = PngWriter(io.BytesIO(), 10, 4, 3)
    with pytest.raises(ValueError, match="expected"):
        writer.write_rows(np.zeros((2, 11, 3), np.uint8))
    writer.write_rows(np.zeros((3, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="rows for a 4-row PNG"):
        writer.write_rows(np.zeros((2, 10, 3), np.uint8))
    with pytest.raises(ImageError, match="after 3 of 4 rows"):
        writer.close()
    assert png_stream.chunk(b"IEND", b"")[-4:] == bytes.fromhex("ae426082")  # the well-known IEND CRC


def test_a_grey_source_gives_a_grey_png(tmp_path: Path) -> None:
    pic = Picture(color=cv2.cvtColor(scene(70, 50)[:, :, 0], cv2.COLOR_GRAY2BGR), grey=True)
    tiles = plan_tiles(70, 50, tile=32, overlap=8)
    out = stitched(tmp_path, pic, tiles, 2, {t.index: nearest(cut_tile(pic, t), 2) for t in tiles}, "grey")
    with Image.open(out) as im:
        assert im.mode == "L"
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(got, cv2.resize(pic.color[:, :, 0], (140, 100), interpolation=cv2.INTER_NEAREST))


# --- memory -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_stitching_a_large_output_holds_a_few_bands_not_the_image(tmp_path: Path) -> None:
    """An 8000x6000 output (144 MB of pixels) from 12 tiles: the write's peak of traced allocations
    (numpy's arrays, zlib's output, Python's bytes) stays under a bound made from the band size,
    far under one row of tiles, let alone the image."""
    w, h, scale = 2000, 1500, 4
    tiles = grid_for(w, h, 12, overlap=32)
    stitch = Stitch(tmp_path / "stage", w, h, tiles, scale)
    for t in tiles:  # smooth content, staged straight from a cheap stored (level 0) PNG
        yy, xx = np.mgrid[0 : t.height * scale, 0 : t.width * scale]
        tile_px = np.dstack([(xx // 7) % 256, (yy // 5) % 256, ((xx + yy) // 11) % 256]).astype(np.uint8)
        stitch.save(t.index, cv2.imencode(".png", tile_px, [cv2.IMWRITE_PNG_COMPRESSION, 0])[1].tobytes())
        del yy, xx, tile_px
    output_bytes = w * scale * h * scale * 3
    band_bytes = BAND_ROWS * w * scale * 3  # one band of output rows, 8-bit
    tile_row_bytes = max(t.height for t in tiles) * scale * w * scale * 3
    source = Picture(color=np.zeros((h, w, 3), np.uint8))  # the input, held by the caller anyway
    tracemalloc.start()
    try:
        stitch.write(tmp_path / "big.png", source, OutputSpec("png"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decode_image((tmp_path / "big.png").read_bytes(), max_pixels=10**9).width == w * scale
    assert peak < 16 * band_bytes, f"peak {peak >> 20} MB for bands of {band_bytes >> 20} MB"
    assert peak < tile_row_bytes / 3 and peak < output_bytes / 8
