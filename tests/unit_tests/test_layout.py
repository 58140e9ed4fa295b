"""The package's layout: a folder per stage of the question's path, imports that only go down.

The import graph is read from the source with ``ast``, not by importing anything. Its
nodes are the package's modules (a package is its ``__init__``); an edge ``A -> B`` is any
import of ``B`` by ``A``: at module level, inside a function (a lazy import) or under
``if TYPE_CHECKING:`` alike. A lazy import defers loading a module; it does not take
the dependency away, and a loop closed by one is still a loop. Importing ``P.m`` from
outside the package ``P`` also runs ``P/__init__``, so it adds the edge to ``P`` too
(``from P import m`` for a submodule ``m`` of the importer's own package does not).

The rules:

- **No loop**: the graph has no cycle.
- **No upward import**, of two kinds. (a) A module never takes names from a package that
  contains it (``from langchain_domain_router import X`` in ``graph/``, or
  ``from langchain_domain_router.graph import X`` in ``graph/_nodes.py``): that would run
  the package's facade from inside it. (b) ``LEVELS`` orders the top-level modules and
  stage folders along the question's path; a module never imports one on a later level
  (same level is fine; the loop rule covers it). The package ``__init__``, the facade
  that re-exports the public names, is the one module above every level.
- **Size**: at most ``MAX_TOP_LEVEL`` modules at the top (besides ``__init__`` and
  ``__main__``), of which at most ``MAX_PRIVATE_TOP_LEVEL`` are private (``_name``), and
  no module over ``MAX_LINES`` lines.
"""

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = "langchain_domain_router"
PACKAGE = Path(__file__).resolve().parents[2] / ROOT
MAX_TOP_LEVEL = 15
MAX_PRIVATE_TOP_LEVEL = 3
MAX_LINES = 400

LEVELS: tuple[frozenset[str], ...] = (
    # shared vocabulary and helpers: names, types, files, redaction, the input edge
    frozenset(
        {
            "schema",
            "taxonomy",
            "profiles",
            "routes",
            "data",
            "feedback",
            "audit",
            "settings_files",
            "_inputs",
            "_redact",
            "_text",
        }
    ),
    frozenset({"classifier"}),  # text -> prediction
    frozenset({"config"}),  # the router config names the classifier's settings
    frozenset({"graph", "quality", "platform"}),  # prediction -> expert -> answer
    frozenset({"router"}),  # DomainRouter binds classifier and graph
    frozenset({"server", "training"}),  # HTTP; training, evaluation, calibration
    frozenset({"cli", "__main__"}),  # the domain-router command
)
"""Top-level modules and stage folders, in the order of the question's path."""


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package is its ``__init__``)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _inside(module: str, package: str) -> bool:
    return module.startswith(package + ".")


def _imports(name: str, path: Path, modules: Mapping[str, Path]) -> Iterable[tuple[str, bool]]:
    """``(target, names_from_package)`` for each package import in the module's source."""
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((a.name, False) for a in node.names if a.name.split(".")[0] == ROOT)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != ROOT:
                continue
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            yield from ((module, False) for module in submodules)
            if len(submodules) < len(node.names):
                yield base, True


def import_graph(modules: Mapping[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    """The import graph, and the imports that take names from a containing package."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    upward = []
    for name, path in modules.items():
        for target, names_from_package in _imports(name, path, modules):
            if names_from_package and _inside(name, target):
                upward.append(f"{name} takes names from {target}, a package containing it")
            graph[name].add(target)
            parts = target.split(".")
            for depth in range(2, len(parts)):
                package = ".".join(parts[:depth])
                if name != package and not _inside(name, package):
                    graph[name].add(package)
    return graph, upward


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None`` when it has none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        path.append(node)
        for successor in sorted(graph.get(node, ())):
            if successor in path:
                return [*path[path.index(successor) :], successor]
            if successor not in done and (cycle := visit(successor)):
                return cycle
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if node not in done and (cycle := visit(node)):
            return cycle
    return None


def level_of(module: str) -> int | None:
    """The ``LEVELS`` index of a module's top-level name; ``None`` for the package itself."""
    top = module.split(".")[1] if "." in module else None
    if top is None:
        return None
    return next((i for i, names in enumerate(LEVELS) if top in names), -1)


MODULES = module_files()
GRAPH, TAKES_FROM_CONTAINER = import_graph(MODULES)


def _write_package(root: Path, files: Mapping[str, str]) -> dict[str, Path]:
    for name, source in files.items():
        path = root / ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return module_files(root / ROOT)


def test_a_loop_closed_by_a_lazy_or_type_checking_import_is_found(tmp_path):
    modules = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "def f():\n    from langchain_domain_router.b import g\n",
            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from langchain_domain_router import a\n",
            "c.py": "import langchain_domain_router.a\n",
        },
    )
    graph, _ = import_graph(modules)
    assert find_cycle(graph) == [f"{ROOT}.a", f"{ROOT}.b", f"{ROOT}.a"]
    del graph[f"{ROOT}.b"]
    assert find_cycle(graph) is None


def test_a_loop_through_a_package_init_and_an_upward_import_are_found(tmp_path):
    modules = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "top.py": "from langchain_domain_router.stage._part import x\n",
            "stage/__init__.py": "from langchain_domain_router.stage._part import x\n",
            "stage/_part.py": "from langchain_domain_router.stage import _other\nx = 1\n",
            "stage/_other.py": "from langchain_domain_router.stage import x\n"
            "from langchain_domain_router.top import y\n",
        },
    )
    graph, upward = import_graph(modules)
    assert f"{ROOT}.stage" in graph[f"{ROOT}.top"]  # running stage/__init__ first
    assert f"{ROOT}.stage" not in graph[f"{ROOT}.stage._part"]  # a sibling, not the facade
    assert upward == [f"{ROOT}.stage._other takes names from {ROOT}.stage, a package containing it"]
    assert find_cycle(graph) is not None


def test_no_import_loop():
    assert find_cycle(GRAPH) is None


def test_no_module_takes_names_from_a_package_that_contains_it():
    assert TAKES_FROM_CONTAINER == []


def test_every_top_level_module_and_folder_has_a_level():
    tops = {name.split(".")[1] for name in MODULES if "." in name}
    assert sorted(top for top in tops if level_of(f"{ROOT}.{top}") == -1) == []


def test_no_module_imports_a_later_stage():
    upward = [
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if (here := level_of(name)) is not None
        and (there := level_of(target)) is not None
        and there > here
    ]
    assert upward == []


def test_the_top_level_stays_small():
    top = [p.stem for p in PACKAGE.glob("*.py") if p.stem not in {"__init__", "__main__"}]
    private = [name for name in top if name.startswith("_")]
    assert len(top) <= MAX_TOP_LEVEL, sorted(top)
    assert len(private) <= MAX_PRIVATE_TOP_LEVEL, sorted(private)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_the_size_limit(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(PACKAGE)}: {lines} lines"
