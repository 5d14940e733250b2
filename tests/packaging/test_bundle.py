"""The packaged bundle (pyinstaller.spec): built lite, its node serves an edit identical to a local run.

The build (about 1.5 min) is cached under pytest's cache folder, keyed by a hash of the spec, the
entry script, every source and resource file, the PyInstaller version and the interpreter: running
the tests again on an unchanged tree reuses it; CI's fresh checkout always builds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import LANFARM, REPO, subprocess_env
from tests.node.helpers import auth_header, stop_node, unverified_context

TOKEN = "bundle-test-token-0123456789abcdef"
SAMPLES = REPO / "resources" / "samples"
BUILD_INPUTS = ("pyinstaller.spec", "packaging", "scripts/build_bundle.py", "farm", "node", "gui", "resources")
AI_PACKAGES = (
    "torch",
    "torchvision",
    "spandrel",
    "diffusers",
    "transformers",
    "accelerate",
    "safetensors",
    "tokenizers",
    "huggingface_hub",
)
EXE = ".exe" if sys.platform == "win32" else ""
# 127.0.0.1 only, never a proxy; the node's self-signed certificate is taken unchecked (the farm pins it)
NO_PROXY = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=unverified_context())
)


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_bundle = load_script(REPO / "scripts" / "build_bundle.py")
entry = load_script(REPO / "packaging" / "entry.py")


# --- fast checks of the packaging scripts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["app"]),
        (["app", "--no-tray"], ["app", "--no-tray"]),
        (["photo.png", "shoot/"], ["app", "photo.png", "shoot/"]),
        (["-psn_0_12345"], ["app"]),
        (["node", "--host", "127.0.0.1"], ["node", "--host", "127.0.0.1"]),
        (["-m", "farm.cli", "node", "--port", "0"], ["node", "--port", "0"]),
        (["--version"], ["--version"]),
        (["-v", "run", "x.png"], ["-v", "run", "x.png"]),
    ],
)
def test_entry_dispatches_app_or_cli(argv: list[str], expected: list[str]) -> None:
    assert entry.cli_args(argv) == expected


def test_linux_archive_layout(tmp_path: Path) -> None:
    """The .tar.gz holds the bundle, an executable install.sh, the icons and a versioned .desktop file."""
    from farm.version import __version__

    bundle = tmp_path / "LANFarm"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "LANFarm").write_text("stub")
    (bundle / "lanfarm-cli").write_text("stub")
    archive = build_bundle.make_archive(bundle, tmp_path, "LANFarm-x")
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        desktop = tar.extractfile(members["LANFarm-x/lanfarm.desktop"]).read().decode()  # type: ignore[union-attr]
    assert {
        "LANFarm-x/LANFarm/LANFarm",
        "LANFarm-x/LANFarm/lanfarm-cli",
        "LANFarm-x/icons/lanfarm.svg",
        "LANFarm-x/icons/lanfarm-256.png",
    } <= members.keys()
    assert members["LANFarm-x/install.sh"].mode & 0o111
    assert f"X-LANFarm-Version={__version__}\n" in desktop
    assert "Exec=LANFarm %F\n" in desktop and "Icon=lanfarm\n" in desktop and "@" not in desktop


def test_icons_exist_in_every_size() -> None:
    from PIL import Image

    icons = REPO / "resources" / "icons"
    for size in (16, 32, 48, 64, 128, 256, 512):
        with Image.open(icons / f"lanfarm-{size}.png") as im:
            assert im.size == (size, size) and im.mode == "RGBA"
    with Image.open(icons / "lanfarm.ico") as im:
        assert (256, 256) in im.info["sizes"] and (16, 16) in im.info["sizes"]
    with Image.open(icons / "lanfarm.icns") as im:
        assert im.size == (1024, 1024)
    assert (icons / "lanfarm.svg").read_text(encoding="utf-8").lstrip().startswith("<svg")


# --- the built bundle ------------------------------------------------------------------------------


def build_key() -> str:
    """A hash of everything the bundle is made from: sources (uncommitted edits included), the installed
    distributions (PyInstaller and its hooks among them) and the interpreter."""
    from importlib import metadata

    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    digest = hashlib.sha256("\0".join([sys.version, sys.prefix, "lite", *installed]).encode())
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", *BUILD_INPUTS], cwd=REPO, capture_output=True, text=True
    )
    if listed.returncode == 0:
        files = sorted(set(listed.stdout.splitlines()))
    else:  # not a git checkout: every file under the inputs
        files = sorted(
            str(p.relative_to(REPO))
            for name in BUILD_INPUTS
            for p in (REPO / name).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )
        files += [n for n in BUILD_INPUTS if (REPO / n).is_file()]
    for name in files:
        path = REPO / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lite bundle folder, built with this interpreter (torch & co excluded even when installed)."""
    cache = getattr(request.config, "cache", None)
    root = Path(cache.mkdir("lanfarm-bundle")) if cache is not None else tmp_path_factory.mktemp("bundle")
    key = build_key()
    dist = root / key
    if (dist / "complete").exists():
        return dist / "LANFarm"
    for old in root.iterdir():  # one cached bundle at most (each is ~300 MB)
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    work = tmp_path_factory.mktemp("pyinstaller-work")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANFARM_")}
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_bundle.py"),
            "--lite",
            "--no-archive",
            "--dist",
            str(dist),
            "--work",
            str(work),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    shutil.rmtree(work, ignore_errors=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    (dist / "complete").write_text(f"{time.monotonic() - started:.1f}\n")
    return dist / "LANFarm"


def frozen_env(home: Path, **extra: str) -> dict[str, str]:
    """The frozen executables' environment: their own LANFARM_HOME, no Python paths, no discovery."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LANFARM_", "PYTHON", "QT_")) and k not in ("VIRTUAL_ENV",)
    }
    env.update(LANFARM_HOME=str(home), LANFARM_DISCOVERY="off", **extra)
    return env


def get_json(url: str, auth: bool = False, timeout: float = 5.0) -> Any:
    headers = {"Authorization": auth_header("GET", urlsplit(url).path, token=TOKEN)} if auth else {}
    with NO_PROXY.open(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
        return json.loads(resp.read())


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "farm-token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def frozen_node(bundle: Path, home: Path, token_file: Path, timeout: float = 60) -> tuple[subprocess.Popen[bytes], str]:
    """``lanfarm-cli node`` on 127.0.0.1 (port 0, no mDNS), once it prints its address; and that URL."""
    proc = subprocess.Popen(
        [
            str(bundle / f"lanfarm-cli{EXE}"),
            "node",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-advertise",
            "--token-file",
            str(token_file),
        ],
        env=frozen_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    deadline, line = time.monotonic() + timeout, b""
    while time.monotonic() < deadline and proc.poll() is None and not line:
        if select.select([proc.stdout], [], [], 0.1)[0]:
            line = proc.stdout.readline()
    if not line.startswith(b"lanfarm node listening on "):
        code, err = stop_node(proc)
        raise AssertionError(f"the frozen node did not start ({code}): {line!r} {err[-4000:]}")
    return proc, line.decode().strip().rsplit(" ", 1)[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bundle_is_lite_and_complete(bundle: Path, record_property: Any) -> None:
    internal = bundle / "_internal"
    assert (bundle / f"LANFarm{EXE}").is_file() and (bundle / f"lanfarm-cli{EXE}").is_file()
    assert not [p for p in AI_PACKAGES if (internal / p).exists()], "AI packages in the lite bundle"
    for data in (
        "resources/icons/lanfarm.svg",
        "resources/icons/lanfarm-256.png",
        "resources/samples/harbour.png",
        "resources/samples/masks/harbour.png",
        "resources/lanfarm-node.service",
        "node/openapi.yaml",
    ):
        assert (internal / data).is_file(), data
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    record_property("bundle_mb", round(size / 2**20))
    print(f"\nlite bundle: {size / 2**20:.0f} MiB in {bundle}")
    out = subprocess.run(
        [str(bundle / f"lanfarm-cli{EXE}"), "--version"],
        env=frozen_env(bundle.parent / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    from farm.version import __version__

    assert out.returncode == 0 and out.stdout.strip() == f"lanfarm {__version__}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_frozen_node_edits_like_a_local_run(bundle: Path, tmp_path: Path, token_file: Path) -> None:
    proc, url = frozen_node(bundle, tmp_path / "node-home", token_file)
    try:
        assert get_json(f"{url}/v1/health")["ok"] is True
        info = get_json(f"{url}/v1/info", auth=True)
        assert info["lite"] is True
        assert "cv2" in {e["id"] for e in info["engines"]}
        assert info["hardware"]["backend"] == "cpu"

        port = url.rsplit(":", 1)[1]
        image, mask = SAMPLES / "harbour.png", SAMPLES / "masks" / "harbour.png"
        env = subprocess_env()
        farm = subprocess.run(
            [
                *LANFARM,
                "run",
                str(image),
                "--mask",
                str(mask),
                "--out",
                str(tmp_path / "farm"),
                "--peer",
                f"127.0.0.1:{port}",
                "--no-local",
                "--no-discovery",
                "--token-file",
                str(token_file),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert farm.returncode == 0, farm.stdout + farm.stderr
        local = subprocess.run(
            [*LANFARM, "run", str(image), "--mask", str(mask), "--out", str(tmp_path / "local"), "--local-only"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert local.returncode == 0, local.stdout + local.stderr
        assert get_json(f"{url}/v1/info", auth=True)["jobs"]["done"] == 1
        remote_out, local_out = tmp_path / "farm" / "harbour.png", tmp_path / "local" / "harbour.png"
        assert remote_out.read_bytes() == local_out.read_bytes()
        assert remote_out.read_bytes() != image.read_bytes()
    finally:
        code, err = stop_node(proc)
    assert code == 0, err
    assert "Traceback" not in err, err


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_frozen_node_start_time(bundle: Path, tmp_path: Path, token_file: Path, record_property: Any) -> None:
    """Process start -> /v1/health answering, median of 3 (first start after the build included)."""
    times = []
    for i in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        home = tmp_path / f"home{i}"
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                str(bundle / f"lanfarm-cli{EXE}"),
                "node",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-advertise",
                "--token-file",
                str(token_file),
            ],
            env=frozen_env(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while True:
                assert proc.poll() is None, "the frozen node exited"
                assert time.monotonic() - started < 60, "the frozen node did not answer within 60 s"
                try:
                    if get_json(f"https://127.0.0.1:{port}/v1/health", timeout=1)["ok"]:
                        break
                except OSError:
                    time.sleep(0.02)
            times.append(time.monotonic() - started)
        finally:
            code, err = stop_node(proc)  # type: ignore[arg-type]
        assert code == 0, err
    median = statistics.median(times)
    record_property("node_start_s", round(median, 3))
    print(f"\nfrozen node start -> /v1/health: median {median:.2f} s of {[round(t, 2) for t in times]}")
    assert median < 20


def app_command(bundle: Path) -> list[str]:
    """The frozen app; on Linux (CI: root, util-linux and iproute2 installed) inside its own network
    namespace, loopback only, so that not even a broken discovery switch could reach the LAN."""
    app = [str(bundle / f"LANFarm{EXE}"), "-v", "app"]
    if sys.platform.startswith("linux"):
        return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *app]
    return app


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_frozen_app_starts_offscreen(bundle: Path, tmp_path: Path) -> None:
    """The app runs a few seconds offscreen (discovery off) without an error, and exits on SIGTERM."""
    env = frozen_env(tmp_path / "app-home", QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen(app_command(bundle), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(6)
        assert proc.poll() is None, f"the app exited with {proc.returncode}: {proc.communicate()[1].decode()[-4000:]}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
            pytest.fail(f"the app ignored SIGTERM for 15 s: {err.decode(errors='replace')[-4000:]}")
    log = err.decode(errors="replace")
    assert "Traceback" not in log, log
    assert not [line for line in log.splitlines() if " ERROR " in line or " CRITICAL " in line], log
    assert "lanfarm app: needs" not in log, log  # PySide6/qasync bundled
