"""Each package imports on its own, in a fresh interpreter, and the light entry points stay light.

A fresh ``python -c`` per case: in the test process everything is already imported by other tests,
so an import that only works because something else ran first, or a heavy library pulled in by a
light module, would go unnoticed there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, subprocess_env

# farm, node, gui, and every package below farm/ (found on disk, so a new one is checked too)
PACKAGES = ["farm", "node", "gui"] + sorted(
    ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "farm").rglob("*/__init__.py")
)
# The GUI toolkit and the AI stack: seconds to import and hundreds of MB; optional extras.
QT = ("PySide6", "shiboken6", "qasync")
AI = ("torch", "torchvision", "spandrel", "diffusers", "transformers", "accelerate")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_list_is_complete() -> None:
    assert {"farm.core", "farm.core.scheduler", "farm.engines", "farm.runtime", "farm.cli"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_in_a_fresh_interpreter(package: str) -> None:
    result = run_python(f"import {package}")
    assert result.returncode == 0, f"import {package} failed:\n{result.stderr[-4000:]}"


def test_every_module_imports() -> None:
    """Each module of farm/, node/ and gui/ (but the ``__main__`` scripts) imports, in one interpreter."""
    result = run_python(
        """
        import importlib, json, pathlib, traceback
        failed = {}
        for package in ("farm", "node", "gui"):
            for path in sorted(pathlib.Path(package).rglob("*.py")):
                parts = list(path.with_suffix("").parts)
                if parts[-1] == "__main__":
                    continue
                if parts[-1] == "__init__":
                    parts.pop()
                name = ".".join(parts)
                try:
                    importlib.import_module(name)
                except Exception:
                    failed[name] = traceback.format_exc(limit=-3)
        print(json.dumps(failed))
        """
    )
    assert result.returncode == 0, result.stderr[-4000:]
    failed = json.loads(result.stdout.splitlines()[-1])
    assert not failed, "modules that do not import:\n" + "\n".join(f"{n}:\n{tb}" for n, tb in failed.items())


@pytest.mark.parametrize(
    ("code", "heavy"),
    [
        ("import farm", QT + AI),
        ("import farm.runtime.dispatch", QT + AI),
        ("import farm.cli", QT + AI),
        # every `lanfarm` command builds the whole parser first, importing each subcommand's module
        ("import farm.cli; farm.cli.build_parser()", QT + AI),
        ("import farm.engines.catalogue", AI),
        # the pure core is light: farm's own re-exports load lazily, so no sockets, images or numbers here
        (
            "import farm.core.spec, farm.core.scheduler, farm.core.nodetable, farm.core.nodeinfo",
            (*QT, *AI, "aiohttp", "cv2", "numpy", "PIL", "zeroconf"),
        ),
        # the headless node: no Qt ever, and no AI stack until a model runs
        ("import node.app", QT + AI),
        ("import node.cli", QT + AI),
    ],
)
def test_light_entry_points_load_neither_qt_nor_torch(code: str, heavy: tuple[str, ...]) -> None:
    result = run_python(
        f"""
        import json, sys
        {code}
        print(json.dumps(sorted(sys.modules)))
        """
    )
    assert result.returncode == 0, f"{code} failed:\n{result.stderr[-4000:]}"
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert "farm" in loaded  # the check looks at the right interpreter's modules
    pulled = sorted({name.split(".")[0] for name in loaded} & set(heavy))
    assert not pulled, f"`{code}` loads {', '.join(pulled)}"


def test_the_check_sees_a_heavy_import() -> None:
    """The same check, on code that does load Qt: it must say so (or it proves nothing)."""
    result = run_python("import json, sys\nimport PySide6.QtCore\nprint(json.dumps(sorted(sys.modules)))")
    assert result.returncode == 0, result.stderr[-4000:]
    assert {"PySide6", "shiboken6"} <= {name.split(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}
