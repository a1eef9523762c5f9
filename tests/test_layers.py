"""The layers of the house, read from the source with ``ast`` (nothing is imported or run).

``fsve`` is the bottom layer: it imports neither ``energy`` nor ``export`` nor ``apps``;
``energy`` and ``export`` do not import ``apps``; and no module imports itself back through a
chain of imports. Function-local imports count (they run when the function does); imports under
``if TYPE_CHECKING:`` do not. An edge goes to the most specific module named: ``from a.b import
c`` reaches ``a.b.c`` when that is a module, otherwise ``a.b`` (its ``__init__``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fsve", "energy", "export", "apps")
FORBIDDEN = {  # importer's top package -> top packages it must not import
    "fsve": {"energy", "export", "apps"},
    "energy": {"apps"},
    "export": {"apps"},
}
Graph = Mapping[str, set[str]]
# Cycles being removed on another branch of issue 14 (fsve/train split into losses, loop and
# commands). Each entry must still be a cycle: delete it once the split has landed.
KNOWN_CYCLES: list[list[str]] = []


def module_files(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` under the packages."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth, except under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str, known: Iterable[str]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (``None``: not ours)."""
    known = set(known)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in known:
            return prefix
    return None


def imported_modules(module: str, path: Path, known: Iterable[str]) -> set[str]:
    """Our modules that ``module`` imports (absolute and relative imports)."""
    known = set(known)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _imports(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
            names = [n if _resolve(n, known) == n else base for n in names]
        found |= {target for n in names if (target := _resolve(n, known)) is not None}
    found.discard(module)
    return found


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of the packages it imports."""
    files = module_files(root, packages)
    return {name: imported_modules(name, path, files) for name, path in files.items()}


def layer_violations(graph: Graph) -> list[str]:
    """``"a.b imports c.d"`` for every edge into a layer above the importer."""
    bad = []
    for module, targets in sorted(graph.items()):
        banned = FORBIDDEN.get(module.split(".")[0], set())
        bad += [f"{module} imports {t}" for t in sorted(targets) if t.split(".")[0] in banned]
    return bad


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, set(c)) for c in sorted(components)]


def _cycle_in(graph: Graph, component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first search)."""
    start = min(component)
    parents: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while (parent := parents[path[-1]]) is not None:
                        path.append(parent)
                    return [*reversed(path), start]
                if w in component and w not in parents:
                    parents[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle in component {sorted(component)}")


def test_toy_graph_is_caught():
    """The checks can fail: a bottom layer importing an application, and a three-module cycle."""
    toy = {
        "fsve.a": {"fsve.b", "apps.demo"},
        "fsve.b": {"fsve.c"},
        "fsve.c": {"fsve.a"},
        "energy.x": {"fsve.a", "export.y"},
        "export.y": {"apps.demo"},
        "apps.demo": {"fsve.a", "energy.x"},
    }
    assert layer_violations(toy) == ["export.y imports apps.demo", "fsve.a imports apps.demo"]
    assert cycles(toy) == [["apps.demo", "fsve.a", "apps.demo"]]  # one component of all six
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"a"}, "b": {"a"}}) == [["a", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_toy_sources_are_parsed(tmp_path):
    """Relative, function-local and ``from package import module`` imports all become edges."""
    files = {
        "fsve/__init__.py": "",
        "fsve/low.py": "def f():\n    from energy.costs import PJ\n",
        "fsve/pkg/__init__.py": "from .mod import X\n",
        "fsve/pkg/mod.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    import apps\nfrom .. import low\nfrom fsve.pkg import mod\nX = 1\n",
        "energy/__init__.py": "",
        "energy/costs.py": "import numpy\nimport fsve.pkg.mod as m\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, ("fsve", "energy"))
    assert graph == {
        "fsve": set(),
        "fsve.low": {"energy.costs"},
        "fsve.pkg": {"fsve.pkg.mod"},
        "fsve.pkg.mod": {"fsve.low"},  # `from fsve.pkg import mod` is itself; TYPE_CHECKING off
        "energy": set(),
        "energy.costs": {"fsve.pkg.mod"},
    }
    assert layer_violations(graph) == ["fsve.low imports energy.costs"]
    assert cycles(graph) == [["energy.costs", "fsve.pkg.mod", "fsve.low", "energy.costs"]]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_sees_the_packages(graph):
    """A sanity check on the real tree, so an empty graph cannot pass the tests below."""
    assert {"fsve.checkpoint", "energy.costs", "apps.demo", "apps.reports.energy"} <= set(graph)
    assert "energy.costs" in graph["apps.reports.energy"]


def test_library_imports_no_layer_above_it(graph):
    assert layer_violations(graph) == []


def test_no_import_cycles(graph):
    found = cycles(graph)
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert new == [], "import cycles: " + "; ".join(" -> ".join(c) for c in new)
    gone = [c for c in KNOWN_CYCLES if c not in found]
    assert gone == [], "no longer cycles, delete from KNOWN_CYCLES: " + repr(gone)
