"""Build the LAN Farm bundle: ``python scripts/build_bundle.py [--lite | --full]``.

Runs PyInstaller on pyinstaller.spec (with the Python running this script, which needs the ``dev``
extra) into ``build/dist/LANFarm``, then packs it for this platform:
- Linux: ``build/dist/LANFarm-<version>-linux-<arch>[-lite].tar.gz`` with a ``.desktop`` file, the icons
  and ``install.sh`` inside;
- Windows: with ``--installer``, Inno Setup's ``ISCC`` compiles packaging/windows/lanfarm.iss;
- macOS: the spec also writes ``build/dist/LAN Farm.app`` (sign it: packaging/macos/README.md).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from farm.version import __version__  # noqa: E402

PACKAGING = ROOT / "packaging"
ICONS = ROOT / "resources" / "icons"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def build(dist: Path, work: Path, mode: str) -> Path:
    """Run PyInstaller; return the bundle folder ``dist/LANFarm``."""
    env = dict(os.environ, LANFARM_BUNDLE=mode)
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(ROOT / "pyinstaller.spec"),
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
    ]
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return dist / "LANFarm"


def desktop_entry() -> str:
    """The .desktop file, its version from farm/version.py."""
    return (PACKAGING / "linux" / "lanfarm.desktop").read_text(encoding="utf-8").replace("@VERSION@", __version__)


def archive_name(lite: bool) -> str:
    arch = platform.machine().lower() or "unknown"
    return f"LANFarm-{__version__}-linux-{arch}{'-lite' if lite else ''}"


def make_archive(bundle: Path, out: Path, name: str) -> Path:
    """``out/NAME.tar.gz``: NAME/ holds the bundle, lanfarm.desktop, the icons and install.sh."""
    target = out / f"{name}.tar.gz"
    tmp = target.with_name(f".{target.name}.tmp")

    def add_text(tar: tarfile.TarFile, arcname: str, text: str, mode: int) -> None:
        data = text.encode("utf-8")
        info = tarfile.TarInfo(arcname)
        info.size, info.mode, info.mtime = len(data), mode, int(time.time())
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=f"{name}/LANFarm")
        add_text(tar, f"{name}/lanfarm.desktop", desktop_entry(), 0o644)
        install = (PACKAGING / "linux" / "install.sh").read_text(encoding="utf-8")
        add_text(tar, f"{name}/install.sh", install, 0o755)
        tar.add(ICONS / "lanfarm.svg", arcname=f"{name}/icons/lanfarm.svg")
        for size in ICON_SIZES:
            tar.add(ICONS / f"lanfarm-{size}.png", arcname=f"{name}/icons/lanfarm-{size}.png")
    tmp.replace(target)
    return target


def inno_setup(bundle: Path, out: Path) -> Path:
    """Compile the Windows installer with Inno Setup 6 (ISCC on PATH or in its usual folder)."""
    iscc = shutil.which("ISCC") or shutil.which("iscc")
    if iscc is None:
        default = Path(os.environ.get("PROGRAMFILES(X86)", r"C:\Program Files (x86)")) / "Inno Setup 6" / "ISCC.exe"
        iscc = str(default) if default.exists() else None
    if iscc is None:
        raise SystemExit("Inno Setup 6 not found: install it (https://jrsoftware.org/isinfo.php) or put ISCC on PATH")
    subprocess.run(
        [
            iscc,
            f"/DAppVersion={__version__}",
            f"/DBundleDir={bundle}",
            f"/O{out}",
            str(PACKAGING / "windows" / "lanfarm.iss"),
        ],
        check=True,
    )
    return out / f"LANFarm-{__version__}-setup.exe"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--lite",
        action="store_const",
        const="lite",
        dest="mode",
        help="OpenCV engines only: leave torch, spandrel, diffusers & co out even if installed",
    )
    kind.add_argument(
        "--full",
        action="store_const",
        const="full",
        dest="mode",
        help="bundle the AI engines (fails unless the ai extra is installed)",
    )
    parser.add_argument("--dist", type=Path, default=ROOT / "build" / "dist", help="output folder")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "work", help="PyInstaller's work folder")
    parser.add_argument("--no-archive", action="store_true", help="only the bundle folder (no .tar.gz)")
    parser.add_argument("--installer", action="store_true", help="Windows: also build the Inno Setup installer")
    args = parser.parse_args(argv)
    mode = args.mode or os.environ.get("LANFARM_BUNDLE", "auto")

    started = time.monotonic()
    bundle = build(args.dist.resolve(), args.work.resolve(), mode)
    print(f"bundle: {bundle} ({time.monotonic() - started:.0f} s)")
    lite = not (bundle / "_internal" / "torch").exists()
    if sys.platform.startswith("linux") and not args.no_archive:
        print(f"archive: {make_archive(bundle, args.dist.resolve(), archive_name(lite))}")
    if sys.platform == "win32" and args.installer:
        print(f"installer: {inno_setup(bundle, args.dist.resolve())}")
    if sys.platform == "darwin":
        print(f"app: {args.dist.resolve() / 'LAN Farm.app'} (sign it: packaging/macos/README.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
