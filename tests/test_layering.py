"""The project's layers, checked on its import graph (tests/layering.py reads it with ast).

The first tests hold the real tree to the rules; the rest build small fake trees that break each
rule, to show that the checker sees it (a checker that cannot fail proves nothing). The last ones do
the same for the suite's other structural check, the thread-leak fixture of tests/conftest.py.
"""

from __future__ import annotations

import _thread
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import conftest, layering
from tests.conftest import REPO


@pytest.fixture(scope="module")
def graph() -> layering.Graph:
    return layering.build_graph(REPO)


def violations(found: list[str]) -> str:
    return "\n" + "\n".join(found)


# --- the real tree ------------------------------------------------------------------------------


def test_the_graph_sees_the_whole_tree(graph: layering.Graph) -> None:
    """The checker reads every package and the kinds of import the rules depend on."""
    for package in layering.PROJECT_PACKAGES:
        assert package in graph.modules and sum(m.startswith(package + ".") for m in graph.modules) >= 3, package
    edges = graph.edges()
    # `from farm.engines import lama, ...` resolves to the submodules, not to the package
    installed = set(edges["farm.engines.installed"])
    assert {"farm.engines.catalogue", "farm.engines.lama"} <= installed and "farm.engines" not in installed
    assert any(imp.in_function for imp in graph.imports)
    assert any(imp.type_checking for imp in graph.imports)


def test_farm_node_and_gui_stay_apart(graph: layering.Graph) -> None:
    """farm never imports gui or node; node never imports gui; gui never imports node."""
    found = layering.packages_apart(graph)
    assert not found, violations(found)


def test_the_core_is_pure(graph: layering.Graph) -> None:
    """farm.core imports only farm.core, farm.errors and the pure standard library: no sockets, files,
    clocks, threads, event loops, Qt, images or AI, not even under TYPE_CHECKING or in a function."""
    found = layering.core_is_pure(graph)
    assert not found, violations(found)


def test_no_import_cycles(graph: layering.Graph) -> None:
    found = layering.import_cycles(graph)
    assert not found, violations(found)


def test_the_model_catalogue_never_imports_an_engine_loader(graph: layering.Graph) -> None:
    """The catalogue (listing models without torch) reaches no loader module and no AI library."""
    found = layering.catalogue_is_torch_free(graph)
    assert not found, violations(found)


# --- the checker fails when a rule is broken ----------------------------------------------------


def make_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` under ``root``, with an empty ``__init__.py`` in every folder that lacks one."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    for folder in [root / p for p in layering.PROJECT_PACKAGES] + [p for p in root.rglob("*") if p.is_dir()]:
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").touch()
    return root


CLEAN = {
    "farm/errors.py": "class FarmError(Exception): ...\n",
    "farm/core/spec.py": """
        from __future__ import annotations
        import json
        from dataclasses import dataclass
        from typing import TYPE_CHECKING
        from farm.errors import FarmError
        from . import params
        if TYPE_CHECKING:
            from pathlib import Path
        """,
    "farm/core/params.py": "from pathlib import PurePosixPath\n",
    "farm/engines/catalogue.py": "import json\nfrom farm.local import paths\n",
    "farm/engines/lama.py": "import farm.engines.catalogue\ndef load():\n    import torch\n",
    "farm/engines/installed.py": "from farm.engines import catalogue, lama\n",
    "farm/local/paths.py": "import os\n",
    "farm/__init__.py": "from farm.engines.installed import *\nfrom farm.core.spec import FarmError\n",
    "node/app.py": "import aiohttp\nfrom farm.core import spec\nfrom farm import FarmError\n",
    "gui/app.py": "from PySide6 import QtCore\nimport farm.engines.installed\nfrom .rows import Row\n",
    "gui/rows.py": "from farm.core.spec import FarmError as Row\n",
}


def rules(root: Path) -> dict[str, list[str]]:
    graph = layering.build_graph(root)
    return {
        "apart": layering.packages_apart(graph),
        "pure": layering.core_is_pure(graph),
        "cycles": layering.import_cycles(graph),
        "catalogue": layering.catalogue_is_torch_free(graph),
    }


def broken(tmp_path: Path, changes: dict[str, str]) -> dict[str, list[str]]:
    """The rules' findings on the clean tree with ``changes`` (file -> text) made to it."""
    return rules(make_tree(tmp_path, CLEAN | changes))


def test_a_clean_tree_has_no_violations(tmp_path: Path) -> None:
    assert rules(make_tree(tmp_path, CLEAN)) == {"apart": [], "pure": [], "cycles": [], "catalogue": []}


def test_resolution_of_relative_and_from_imports(tmp_path: Path) -> None:
    graph = layering.build_graph(make_tree(tmp_path, CLEAN))
    edges = graph.edges()
    assert set(edges["farm.core.spec"]) == {"farm.errors", "farm.core.params"}  # `from . import params`
    assert set(edges["farm.engines.installed"]) == {"farm.engines.catalogue", "farm.engines.lama"}
    assert set(edges["gui.app"]) == {"farm.engines.installed", "gui.rows"}  # `from .rows import Row`
    assert set(edges["node.app"]) == {"farm.core.spec", "farm"}  # `from farm import FarmError`: the package
    (torch,) = [imp for imp in graph.imports if imp.target == "torch"]
    assert torch.in_function and not torch.type_checking and torch.line == 3
    (path,) = [imp for imp in graph.imports if imp.target == "pathlib" and imp.importer == "farm.core.spec"]
    assert path.type_checking and path.names == ("Path",)


def test_a_relative_import_above_the_top_package_is_an_error(tmp_path: Path) -> None:
    make_tree(tmp_path, CLEAN | {"farm/core/bad.py": "from ... import x\n"})
    with pytest.raises(ImportError, match="beyond the top-level package"):
        layering.build_graph(tmp_path)


def test_a_circle_hidden_in_a_function_is_found(tmp_path: Path) -> None:
    found = broken(
        tmp_path,
        {
            "farm/local/store.py": "from farm.local.peers import known\n",
            "farm/local/peers.py": """
                def known():
                    from .. import local
                    from farm.local import token
                """,
            "farm/local/token.py": "import os\n\n\nclass T:\n    def load(self):\n        import farm.local.store\n",
        },
    )
    assert found["apart"] == found["pure"] == found["catalogue"] == []
    (cycle,) = found["cycles"]
    assert cycle.startswith("import cycle among 3 modules: farm.local.peers -> farm.local.token -> farm.local.store")
    assert cycle.split("  [")[0].endswith("-> farm.local.peers")
    assert "farm.local.peers (farm/local/peers.py:3): from farm.local import token [inside a function]" in cycle
    assert "farm.local.token (farm/local/token.py:6): import farm.local.store [inside a function]" in cycle
    assert "farm.local.store (farm/local/store.py:1): from farm.local.peers import known]" in cycle


def test_a_cycle_through_a_package_init_is_found(tmp_path: Path) -> None:
    found = broken(tmp_path, {"farm/engines/catalogue.py": "from farm import FarmError\n"})
    # farm/__init__ -> installed -> catalogue -> farm (the package: FarmError is its attribute)
    assert found["cycles"] == [
        "import cycle among 4 modules: farm -> farm.engines.installed -> farm.engines.catalogue -> farm  "
        "[farm (farm/__init__.py:1): from farm.engines.installed import *; "
        "farm.engines.installed (farm/engines/installed.py:1): from farm.engines import catalogue, lama; "
        "farm.engines.catalogue (farm/engines/catalogue.py:1): from farm import FarmError]"
    ]


def test_a_core_module_importing_socket_is_found(tmp_path: Path) -> None:
    found = broken(tmp_path, {"farm/core/net.py": "import json\nimport socket as s\n"})
    assert found["pure"] == ["the core must not import socket: farm.core.net (farm/core/net.py:2): import socket as s"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from os import path", "the core must not import os: farm.core.x (farm/core/x.py:1): from os import path"),
        ("import asyncio.events", "the core must not import asyncio"),
        ("from time import monotonic", "the core must not import time"),
        ("from concurrent.futures import Future", "the core must not import concurrent"),
        ("def f():\n    import threading", "import threading [inside a function]"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import numpy as np",
            "the core must not import numpy: farm.core.x (farm/core/x.py:3): import numpy as np [under TYPE_CHECKING]",
        ),
        ("import typing\nif typing.TYPE_CHECKING:\n    import torch", "must not import torch"),
        ("from PySide6.QtCore import QObject", "must not import PySide6"),
        ("import cv2", "must not import cv2"),
        ("from PIL import Image", "must not import PIL"),
        ("import aiohttp", "must not import aiohttp"),
        ("import zeroconf", "must not import zeroconf"),
        ("import sqlite3", "must not import sqlite3"),
        ("import subprocess", "must not import subprocess"),
        ("import yaml", "the core may import only the standard library, not yaml"),
        (
            "from pathlib import Path",
            "pathlib's Path only under TYPE_CHECKING (a type): farm.core.x (farm/core/x.py:1)",
        ),
        ("import pathlib", "pathlib's Path only under TYPE_CHECKING"),
        ("from pathlib import PurePath, Path", "pathlib's Path only under TYPE_CHECKING"),
        ("from farm.engines import catalogue", "only farm.core.* and farm.errors, not farm.engines.catalogue"),
        ("from farm import errors, engines", "only farm.core.* and farm.errors, not farm.engines: farm.core.x"),
        ("from .. import local", "only farm.core.* and farm.errors, not farm.local: farm.core.x"),
        ("import farm", "only farm.core.* and farm.errors, not farm: farm.core.x"),
        ("import node.app", "only farm.core.* and farm.errors, not node.app"),
    ],
)
def test_every_impurity_of_the_core_is_found(tmp_path: Path, text: str, expected: str) -> None:
    found = broken(tmp_path, {"farm/core/x.py": text + "\n"})
    assert len(found["pure"]) == 1 and expected in found["pure"][0], found["pure"]


def test_farm_errors_is_held_to_the_cores_rules(tmp_path: Path) -> None:
    found = broken(tmp_path, {"farm/errors.py": "import logging\nimport threading\n"})
    assert found["pure"] == ["the core must not import threading: farm.errors (farm/errors.py:2): import threading"]


def test_the_core_in_a_subpackage_is_checked_too(tmp_path: Path) -> None:
    found = broken(tmp_path, {"farm/core/scheduler/clock.py": "from time import monotonic as now\n"})
    assert found["pure"] == [
        "the core must not import time: farm.core.scheduler.clock (farm/core/scheduler/clock.py:1): "
        "from time import monotonic as now"
    ]


def test_a_farm_module_importing_gui_is_found(tmp_path: Path) -> None:
    found = broken(tmp_path, {"farm/runtime/front.py": "from gui import rows\n\n\ndef show():\n    import node.app\n"})
    assert found["apart"] == [
        "farm must not import gui: farm.runtime.front (farm/runtime/front.py:1): from gui import rows",
        "farm must not import node: farm.runtime.front (farm/runtime/front.py:5): import node.app [inside a function]",
    ]


@pytest.mark.parametrize(
    ("module", "text", "expected"),
    [
        ("node/api.py", "from gui.rows import Row", "node must not import gui: node.api (node/api.py:1)"),
        (
            "gui/feed.py",
            "from node import app",
            "gui must not import node: gui.feed (gui/feed.py:1): from node import app",
        ),
        ("gui/feed.py", "from ..node import app", None),  # above the top package: an ImportError, see below
        ("farm/__init__.py", "import gui", "farm must not import gui: farm (farm/__init__.py:1): import gui"),
    ],
)
def test_every_crossing_between_the_packages_is_found(
    tmp_path: Path, module: str, text: str, expected: str | None
) -> None:
    if expected is None:
        with pytest.raises(ImportError):
            broken(tmp_path, {module: text + "\n"})
        return
    found = broken(tmp_path, {module: text + "\n"})
    assert len(found["apart"]) == 1 and found["apart"][0].startswith(expected), found["apart"]


def test_the_catalogue_reaching_a_loader_is_found(tmp_path: Path) -> None:
    found = broken(tmp_path, {"farm/local/paths.py": "def models():\n    from farm.engines.lama import load\n"})
    assert found["catalogue"] == [
        "farm.engines.catalogue imports the engine loader farm.engines.lama: "
        "farm.engines.catalogue -> farm.local.paths -> farm.engines.lama  "
        "[farm.engines.catalogue (farm/engines/catalogue.py:2): from farm.local import paths; "
        "farm.local.paths (farm/local/paths.py:2): from farm.engines.lama import load [inside a function]]",
        # and through the loader, its torch
        "farm.engines.catalogue imports torch via farm.engines.catalogue -> farm.local.paths -> farm.engines.lama: "
        "farm.engines.lama (farm/engines/lama.py:3): import torch [inside a function]",
    ]
    assert len(found["cycles"]) == 1  # lama imports the catalogue back


@pytest.mark.parametrize("loader", sorted(layering.ENGINE_LOADERS))
def test_each_loader_is_refused_to_the_catalogue(tmp_path: Path, loader: str) -> None:
    found = broken(tmp_path, {"farm/engines/catalogue.py": f"import {loader}\n", loader.replace(".", "/") + ".py": ""})
    assert any(
        f"imports the engine loader {loader}: farm.engines.catalogue -> {loader}" in v for v in found["catalogue"]
    )


def test_the_catalogue_importing_torch_itself_is_found(tmp_path: Path) -> None:
    found = broken(
        tmp_path,
        {"farm/engines/catalogue.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import spandrel\n"},
    )
    assert found["catalogue"] == [
        "farm.engines.catalogue imports spandrel via farm.engines.catalogue: "
        "farm.engines.catalogue (farm/engines/catalogue.py:3): import spandrel [under TYPE_CHECKING]"
    ]


# --- the suite's other structural check, tests/conftest.py's thread-leak fixture, fails too ---------


@pytest.fixture
def thread_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[Iterator[None]]:
    """The body of the autouse verify_threads_ended fixture, begun (its snapshot taken), grace 0.3 s."""
    monkeypatch.setattr(conftest, "THREAD_GRACE_S", 0.3)
    check = conftest.threads_ended()
    next(check)
    yield check
    check.close()


def finish(check: Iterator[None]) -> None:
    """Run the check's end; it must pass (end of the generator)."""
    with pytest.raises(StopIteration):
        next(check)


def test_the_thread_check_reports_a_thread_left_running(thread_check: Iterator[None]) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="left-behind", daemon=True)
    thread.start()
    try:
        with pytest.raises(pytest.fail.Exception) as failed:
            next(thread_check)
    finally:
        stop.set()
        thread.join()
    report = str(failed.value)
    assert report.startswith("the test left 1 thread(s) running 0.3 s after it ended:\n")
    assert "'left-behind' (Event.wait, daemon), started at:\n" in report
    assert (
        "tests/test_layering.py:" in report
        and "in test_the_thread_check_reports_a_thread_left_running: thread.start()" in report
    )


def test_the_thread_check_waits_for_a_finishing_thread(thread_check: Iterator[None]) -> None:
    threading.Thread(target=time.sleep, args=(0.1,), name="finishing").start()
    finish(thread_check)


def test_the_thread_check_ignores_threads_from_before_the_test() -> None:
    stop = threading.Event()
    older = threading.Thread(target=stop.wait, name="older")
    older.start()
    try:
        check = conftest.threads_ended()
        next(check)
        finish(check)
    finally:
        stop.set()
        older.join()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a foreign thread's end is read from /proc")
def test_the_thread_check_sees_foreign_threads_while_they_run(thread_check: Iterator[None]) -> None:
    """A thread started outside threading (as Qt starts its QThreads) is reported while it runs, and
    not once it has ended, though Python 3.11 keeps listing it as an alive _DummyThread."""
    running, stop = threading.Event(), threading.Event()
    dummies: list[threading.Thread] = []

    def foreign() -> None:
        dummies.append(threading.current_thread())
        running.set()
        stop.wait()

    _thread.start_new_thread(foreign, ())
    assert running.wait(10)
    (dummy,) = dummies
    leaked = conftest.leaked_threads(set(), 0)
    assert dummy in leaked
    assert conftest.describe_thread(dummy).endswith(
        ", not started by Python's threading (a Qt or C library thread that ran Python code)"
    )
    stop.set()
    deadline = time.monotonic() + 10
    while Path(f"/proc/self/task/{dummy.native_id}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dummy in threading.enumerate() and dummy not in conftest.leaked_threads(set(), 0)
    finish(thread_check)
