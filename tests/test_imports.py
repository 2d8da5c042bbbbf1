"""The package's import graph, read from the source with `ast` (nothing is imported): no module
reaches itself through its imports, and the code that runs trained models (cache, evaluate,
predict, report, the benchmarks) imports nothing from `uvhmr.train`, which only trains.

Every import counts, at module level or inside a function: a function-level import is still a
dependency, and hiding one in a function does not remove a loop.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "uvhmr"
# Where `uvhmr.train` must not be imported (paths relative to the repository root).
NO_TRAIN = ("src/uvhmr/cache", "src/uvhmr/evaluate", "src/uvhmr/report", "src/uvhmr/predict.py",
            "src/uvhmr/predict_cli.py", "bench")


def module_name(path: Path) -> str:
    """src/uvhmr/a/b.py -> uvhmr.a.b; src/uvhmr/a/__init__.py -> uvhmr.a."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """The uvhmr modules `path` imports anywhere in its body. `from uvhmr.a import b` names the
    module uvhmr.a.b when that is a module, else uvhmr.a (b is a name defined there)."""
    here = module_name(path) if path.is_relative_to(SRC) else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:       # relative: from .x import y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != PACKAGE:
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m in known}


def import_graph() -> dict[str, set[str]]:
    known = package_modules()
    return {name: imported(path, known) - {name} for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}          # 1 on the current path, 2 finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_graph_is_read():
    """The parser sees the imports it is meant to check (a guard against a test that passes
    because it reads nothing)."""
    graph = import_graph()
    assert "uvhmr.cli" in graph and "uvhmr.config" in graph["uvhmr.cli"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_only_training_imports_train():
    known = package_modules()
    files = []
    for place in NO_TRAIN:
        p = REPO / place
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    assert files
    bad = {str(f.relative_to(REPO)): sorted(m for m in imported(f, known) if m.startswith(f"{PACKAGE}.train"))
           for f in files}
    bad = {f: ms for f, ms in bad.items() if ms}
    assert not bad, f"import uvhmr.train (only training may): {bad}"
