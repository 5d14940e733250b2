"""The project's import graph, read from the source with ``ast`` (nothing is imported), and its rules.

Every ``import`` and ``from ... import`` statement of every module under the project's packages is
read: those at the top of a module, inside functions and methods, under ``if TYPE_CHECKING:`` and in
``try:`` blocks alike. A statement's target is resolved as Python would resolve it:

* relative imports against the importing module's package (a package's ``__init__`` is its own
  package);
* ``from pkg import name`` to the submodule ``pkg.name`` when that is a module of the project, else
  to ``pkg`` itself (``name`` is then an attribute of ``pkg/__init__.py``, which the import runs);
* ``import a.b.c`` to ``a.b.c``.

Choice: importing ``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``, but the graph has no
edges to those parent packages. Python imports a submodule while its parent package is still half
initialised, so parent edges never make a real cycle; adding them would turn every package whose
``__init__`` re-exports a submodule (``farm`` re-exports ``farm.engines.installed.default_registry``)
into a cycle with each module below it, and would blame each module for what its parents import.
Nothing escapes the rules for it: every ``__init__`` is a module of the graph, and its own imports
are checked like any other module's. What importing a module really loads, parents included, is
checked by running it: tests/test_imports.py.

Imports by name at run time (``importlib.import_module``, entry points) are not in the graph: that is
how ``farm.cli`` reaches the node and app commands (registered as entry points) without depending on
them, on purpose.
"""

from __future__ import annotations

import ast
import itertools
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_PACKAGES = ("farm", "node", "gui")

# Each package's project imports that it must never make: farm is the core of both front ends.
FORBIDDEN_PACKAGES: dict[str, frozenset[str]] = {
    "farm": frozenset({"gui", "node"}),
    "node": frozenset({"gui"}),
    "gui": frozenset({"node"}),
}

CORE = "farm.core"
# What the pure core may import of the project besides itself. farm.errors is held to the core's
# rules too: the core imports it, so it is part of what the core loads.
CORE_MAY_IMPORT = frozenset({"farm.errors"})
# Modules the core must not import, even under TYPE_CHECKING or inside a function: sockets, files,
# processes, clocks, threads and event loops; the GUI toolkit, image and AI libraries. The core may
# import the standard library's pure modules only, so any other third-party module is refused too.
CORE_FORBIDDEN = frozenset(
    {
        # the ones named in the layering rules
        "asyncio",
        "socket",
        "threading",
        "time",
        "subprocess",
        "sqlite3",
        "os",
        "aiohttp",
        "zeroconf",
        "PySide6",
        "cv2",
        "PIL",
        "torch",
        "numpy",
        # their siblings: threads, processes, the network, files
        "_thread",
        "concurrent",
        "multiprocessing",
        "selectors",
        "select",
        "signal",
        "ssl",
        "http",
        "urllib",
        "shutil",
        "tempfile",
        "glob",
    }
)
# pathlib: Path does file I/O, so the core may name it as a type only (under TYPE_CHECKING, which
# `from __future__ import annotations` makes enough for annotations), or use the pure path classes.
PURE_PATHLIB_NAMES = frozenset({"PurePath", "PurePosixPath", "PureWindowsPath"})

CATALOGUE = "farm.engines.catalogue"
# The engines and their loaders (the model loaders: lama, upscale, sd_inpaint, spandrel_loader,
# torch_image) import the catalogue; farm.engines.installed joins the two. docs/architecture.md.
ENGINE_LOADERS = frozenset(
    f"farm.engines.{name}"
    for name in ("lama", "upscale", "sd_inpaint", "spandrel_loader", "torch_image", "opencv_inpaint", "simulated")
) | {"farm.engines.installed"}
AI_LIBRARIES = frozenset({"torch", "torchvision", "spandrel", "diffusers", "transformers", "accelerate"})


@dataclass(frozen=True)
class Import:
    """One resolved target of one import statement."""

    importer: str  # the importing module
    path: Path  # its file
    line: int
    statement: str  # the statement's source, on one line
    target: str  # the resolved module (a project module, or the dotted name of an outside one)
    names: tuple[str, ...] = ()  # for `from X import a, b`: the names that resolved to this target
    type_checking: bool = False  # under `if TYPE_CHECKING:`
    in_function: bool = False  # inside a def or lambda: runs only when called

    @property
    def top(self) -> str:
        return self.target.split(".")[0]

    def where(self, root: Path) -> str:
        """``module (path:line): statement [inside a function] [under TYPE_CHECKING]``."""
        try:
            shown = self.path.relative_to(root)
        except ValueError:
            shown = self.path
        notes = "".join(
            [" [inside a function]" if self.in_function else "", " [under TYPE_CHECKING]" if self.type_checking else ""]
        )
        return f"{self.importer} ({shown}:{self.line}): {self.statement}{notes}"


@dataclass
class Graph:
    root: Path
    packages: tuple[str, ...]
    modules: dict[str, Path] = field(default_factory=dict, repr=False)  # name -> file
    imports: list[Import] = field(default_factory=list, repr=False)

    def is_project(self, name: str) -> bool:
        return name.split(".")[0] in self.packages

    def project_imports(self) -> Iterator[Import]:
        return (imp for imp in self.imports if self.is_project(imp.target))

    def edges(self) -> dict[str, dict[str, Import]]:
        """module -> {imported project module: the first import statement that makes the edge}.

        Targets that are not modules of the tree (a name that does not exist) make no edge, and
        neither does a module importing its own package's names (``from . import x`` in an
        ``__init__``, x an attribute).
        """
        out: dict[str, dict[str, Import]] = {name: {} for name in self.modules}
        for imp in self.project_imports():
            if imp.target in self.modules and imp.target != imp.importer:
                out[imp.importer].setdefault(imp.target, imp)
        return out


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def build_graph(root: Path, packages: Iterable[str] = PROJECT_PACKAGES) -> Graph:
    """The import graph of every ``.py`` file under ``root/<package>/`` for each package."""
    graph = Graph(root=root, packages=tuple(packages))
    for package in graph.packages:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                graph.modules[module_name(root, path)] = path
    for name, path in graph.modules.items():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        is_package = path.name == "__init__.py"
        _Collector(graph, name, path, source, is_package).visit(tree)
    return graph


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, graph: Graph, module: str, path: Path, source: str, is_package: bool) -> None:
        self.graph, self.module, self.path, self.source = graph, module, path, source
        self.package = module if is_package else module.rpartition(".")[0]
        self.functions = 0
        self.type_checking = 0

    # --- where we are -------------------------------------------------------------------------------

    def _function(self, node: ast.AST) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.type_checking += 1
        for child in node.body:
            self.visit(child)
        self.type_checking -= 1
        for child in node.orelse:  # `else:` of `if TYPE_CHECKING:` runs
            self.visit(child)

    # --- the imports --------------------------------------------------------------------------------

    def _add(self, node: ast.Import | ast.ImportFrom, target: str, names: tuple[str, ...] = ()) -> None:
        statement = " ".join((ast.get_source_segment(self.source, node) or "").split())
        self.graph.imports.append(
            Import(
                importer=self.module,
                path=self.path,
                line=node.lineno,
                statement=statement,
                target=target,
                names=names,
                type_checking=self.type_checking > 0,
                in_function=self.functions > 0,
            )
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base_parts = self.package.split(".") if self.package else []
            if node.level > len(base_parts):
                raise ImportError(f"{self.path}:{node.lineno}: relative import beyond the top-level package")
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            base = ".".join([*base_parts, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        if base == "__future__":
            return
        by_target: dict[str, list[str]] = {}
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            target = sub if alias.name != "*" and sub in self.graph.modules else base
            by_target.setdefault(target, []).append(alias.name)
        for target, names in by_target.items():
            self._add(node, target, tuple(names))


# --- the rules: each returns its violations, one line each, empty when the rule holds ----------------


def packages_apart(graph: Graph) -> list[str]:
    """farm never imports gui or node; node never imports gui; gui never imports node."""
    out = []
    for imp in graph.project_imports():
        if imp.top in FORBIDDEN_PACKAGES.get(imp.importer.split(".")[0], ()):
            out.append(f"{imp.importer.split('.')[0]} must not import {imp.top}: {imp.where(graph.root)}")
    return out


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def core_is_pure(graph: Graph) -> list[str]:
    """farm.core (and farm.errors) import only farm.core, farm.errors and the pure standard library."""
    out = []
    for imp in graph.imports:
        if not (_in(imp.importer, CORE) or imp.importer in CORE_MAY_IMPORT):
            continue
        where = imp.where(graph.root)
        if graph.is_project(imp.target):
            if not (_in(imp.target, CORE) or imp.target in CORE_MAY_IMPORT):
                out.append(f"the core may import only farm.core.* and farm.errors, not {imp.target}: {where}")
        elif imp.top in CORE_FORBIDDEN:
            out.append(f"the core must not import {imp.top}: {where}")
        elif imp.top == "pathlib":
            if not imp.type_checking and not (imp.names and set(imp.names) <= PURE_PATHLIB_NAMES):
                out.append(f"the core may import pathlib's Path only under TYPE_CHECKING (a type): {where}")
        elif imp.top not in sys.stdlib_module_names:
            out.append(f"the core may import only the standard library, not {imp.top}: {where}")
    return out


def _strongly_connected(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module only."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _path(edges: dict[str, dict[str, Import]], start: str, goal: str, within: set[str] | None = None) -> list[str]:
    """The shortest import path start -> ... -> goal (breadth first), [] when there is none."""
    previous: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node]):
                if within is not None and child not in within:
                    continue
                if child == goal:
                    path = [child, node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return path[::-1]
                if child not in seen:
                    seen.add(child)
                    previous[child] = node
                    following.append(child)
        frontier = following
    return []


def _describe(graph: Graph, edges: dict[str, dict[str, Import]], path: list[str]) -> str:
    steps = "; ".join(edges[a][b].where(graph.root) for a, b in itertools.pairwise(path))
    return f"{' -> '.join(path)}  [{steps}]"


def import_cycles(graph: Graph) -> list[str]:
    """One cycle per group of modules that import each other, as module -> ... -> module with its lines."""
    edges = graph.edges()
    out = []
    for component in _strongly_connected(edges):
        start = component[0]
        cycle = _path(edges, start, start, set(component))
        out.append(f"import cycle among {len(component)} modules: {_describe(graph, edges, cycle)}")
    return out


def catalogue_is_torch_free(graph: Graph) -> list[str]:
    """farm.engines.catalogue reaches no engine loader module, and no AI library, by any import path."""
    if CATALOGUE not in graph.modules:
        return [f"{CATALOGUE} is not in the tree"]
    edges = graph.edges()
    out = []
    reached = {CATALOGUE}
    frontier = [CATALOGUE]
    while frontier:
        frontier = [c for n in frontier for c in edges[n] if c not in reached]
        reached.update(frontier)
    for loader in sorted(ENGINE_LOADERS & reached):
        path = _describe(graph, edges, _path(edges, CATALOGUE, loader))
        out.append(f"{CATALOGUE} imports the engine loader {loader}: {path}")
    for imp in graph.imports:
        if imp.importer in reached and imp.top in AI_LIBRARIES:
            via = _path(edges, CATALOGUE, imp.importer) if imp.importer != CATALOGUE else [CATALOGUE]
            out.append(f"{CATALOGUE} imports {imp.top} via {' -> '.join(via)}: {imp.where(graph.root)}")
    return out
