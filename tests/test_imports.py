"""The package's import graph, read from the source with `ast` by `uvhmr.code_deps` (nothing is
imported): no module reaches itself through its imports, and the code that runs trained models
(cache, evaluate, predict, report, the benchmarks) imports nothing from `uvhmr.train`, which only
trains.

Every import counts, at module level or inside a function: a function-level import is still a
dependency, and hiding one in a function does not remove a loop.
"""
from pathlib import Path

from uvhmr.code_deps import PACKAGE, ImportGraph

REPO = Path(__file__).resolve().parents[1]
# Where `uvhmr.train` must not be imported (paths relative to the repository root).
NO_TRAIN = ("src/uvhmr/cache", "src/uvhmr/evaluate", "src/uvhmr/report", "src/uvhmr/predict.py",
            "src/uvhmr/predict_cli.py", "src/uvhmr/predict_scores.py", "bench")
GRAPH = ImportGraph(code_only=False)


def test_the_graph_sees_imports_and_loops(tmp_path):
    """A guard against a test that passes because it reads nothing: the real graph has cli's
    imports, and a toy package with a loop hidden in a function shows that loop."""
    assert "uvhmr.config" in GRAPH.imports("uvhmr.cli")
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from uvhmr import b\n")
    (pkg / "b.py").write_text("def f():\n    from uvhmr.a import x\n")
    (pkg / "c.py").write_text("import uvhmr.a\n")
    assert ImportGraph(pkg, code_only=False).cycles() == [["uvhmr.a", "uvhmr.b"]]


def test_no_import_cycles():
    assert GRAPH.cycles() == []


def test_only_training_imports_train():
    files = []
    for place in NO_TRAIN:
        p = REPO / place
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    assert len(files) > 10
    modules = {f: m for m, f in GRAPH.files.items()}
    bad = {str(f.relative_to(REPO)): sorted(m for m in (GRAPH.imports(modules[f]) if f in modules else GRAPH.file_imports(f))
                                            if m.startswith(f"{PACKAGE}.train"))
           for f in files}
    bad = {f: ms for f, ms in bad.items() if ms}
    assert not bad, f"import uvhmr.train (only training may): {bad}"
