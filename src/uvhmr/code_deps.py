"""The package files each `uvhmr <subcommand>` runs: the code dependencies of the DAG.

Computed with `ast` over src/uvhmr, never typed by hand (docs/design.md, "Code is a dependency"):

- a module depends on every uvhmr module it imports, at module level or inside a function (a
  function-level import runs when the function does, and which functions run is not known), and
  on the `__init__.py` of each package above it (Python runs them first); imports under
  `if TYPE_CHECKING:` are skipped;
- `uvhmr.cli` is a dispatcher: a subcommand `uvhmr foo-bar` runs `cmd_foo_bar`, so its code is
  cli.py itself plus the closure of the modules that function reaches: the names it uses that
  cli.py imports (at module level or inside the function) and, recursively, the cli.py helpers it
  calls. cli.py's other imports serve other subcommands and are not followed;
- a function whose `def` line ends with `# not a code dependency` runs no code that shapes a
  command's outputs (faults.fault_types: the exception types, imported to word an error), and its
  imports are not followed.

The Snakefile's rules take `code_deps(subcommand)` as inputs at parse time (uvhmr.workflow), and
dvc.yaml lists the same files among each stage's deps, rewritten by `uvhmr dag-deps --write`
(`uvhmr dag-deps --check` fails when dvc.yaml is stale; tests/test_code_deps.py runs it).
"""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import Iterable, Optional

PACKAGE = "uvhmr"
PACKAGE_DIR = Path(__file__).resolve().parent
# How the files are named in dvc.yaml and the Snakemake rules: relative to the repository root.
REPO_PREFIX = "src/uvhmr"
CLI = "uvhmr.cli"


def _modules(pkg_dir: Path) -> dict[str, Path]:
    """{dotted module name: file} of every .py file in the package."""
    out = {}
    for f in sorted(pkg_dir.rglob("*.py")):
        rel = f.relative_to(pkg_dir).with_suffix("")
        parts = [PACKAGE, *rel.parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


NOT_A_DEP = "# not a code dependency"


def _walk_imports(tree: ast.AST, lines: list[str], skip_marked: bool = True) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement in `tree` (nested in functions too), but not under TYPE_CHECKING
    nor (with skip_marked) in a function marked NOT_A_DEP."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if skip_marked and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                lines[node.body[0].lineno - 2].rstrip().endswith(NOT_A_DEP):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


class ImportGraph:
    """uvhmr's modules and what each imports (of uvhmr), from the source alone.
    code_only (the DAG's code deps): an import also runs the packages above the module, and a
    function marked NOT_A_DEP is skipped. Without it, the plain module graph: one edge per
    imported module, every function's imports counted (what an import loop is made of)."""

    def __init__(self, pkg_dir: Path = PACKAGE_DIR, code_only: bool = True):
        self.pkg_dir, self.code_only = Path(pkg_dir), code_only
        self.files = _modules(self.pkg_dir)
        self._trees: dict[str, ast.Module] = {}
        self._lines: dict[str, list[str]] = {}

    def tree(self, module: str) -> ast.Module:
        if module not in self._trees:
            f = self.files[module]
            text = f.read_text(encoding="utf8")
            self._trees[module] = ast.parse(text, str(f))
            self._lines[module] = text.splitlines()
        return self._trees[module]

    def _package_of(self, module: str) -> str:
        return module if self.files[module].name == "__init__.py" else module.rpartition(".")[0]

    def targets(self, module: str, node: ast.Import | ast.ImportFrom) -> dict[str, set[str]]:
        """{name the statement binds: the uvhmr modules it imports} (binding '' for `import a.b`
        without `as`, whose name is the top package)."""
        out: dict[str, set[str]] = {}
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == PACKAGE:
                    out.setdefault(a.asname or "", set()).update(self._expand(a.name))
            return out
        if node.level:
            base = self._package_of(module).split(".")
            base = base[:len(base) - node.level + 1]
            src = ".".join(base + ([node.module] if node.module else []))
        else:
            src = node.module or ""
        if src.split(".")[0] != PACKAGE:
            return out
        for a in node.names:
            sub = f"{src}.{a.name}"
            if sub in self.files:            # `from uvhmr.train import dmp`: the submodule too
                mods = self._expand(sub) | (self._expand(src) if self.code_only else set())
            else:
                mods = self._expand(src)
            out.setdefault(a.asname or a.name, set()).update(mods)
        return out

    def _expand(self, module: str) -> set[str]:
        """An imported module -> what the graph counts: with its packages (code_only), or alone."""
        return self._with_parents(module) if self.code_only else ({module} & set(self.files))

    def _with_parents(self, module: str) -> set[str]:
        """The module and every package above it that exists as a file (Python imports them all)."""
        parts = module.split(".")
        return {m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in self.files}

    @functools.lru_cache(maxsize=None)
    def imports(self, module: str) -> frozenset[str]:
        """The uvhmr modules `module` imports directly (anywhere in the file), and its packages."""
        out = self._with_parents(module) - {module} if self.code_only else set()
        for node in _walk_imports(self.tree(module), self._lines[module], self.code_only):
            for mods in self.targets(module, node).values():
                out |= mods
        return frozenset(out - {module})

    def file_imports(self, path: Path) -> set[str]:
        """The uvhmr modules a file outside the package (a benchmark, a script) imports, with
        absolute imports."""
        text = Path(path).read_text(encoding="utf8")
        out: set[str] = set()
        for node in _walk_imports(ast.parse(text, str(path)), text.splitlines(), self.code_only):
            for mods in self.targets("", node).values():
                out |= mods
        return out

    def closure(self, roots: Iterable[str], leaves: Iterable[str] = ()) -> set[str]:
        """`roots` and every module they import, directly or not; `leaves` are kept but their
        imports not followed."""
        seen: set[str] = set()
        todo, leaves = list(roots), set(leaves)
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            if m not in leaves:
                todo.extend(self.imports(m))
        return seen

    def cycles(self) -> list[list[str]]:
        """Import loops (strongly connected components of more than one module)."""
        index, low, on, stack, out, n = {}, {}, set(), [], [], [0]

        def visit(v):
            index[v] = low[v] = n[0]
            n[0] += 1
            stack.append(v)
            on.add(v)
            for w in self.imports(v):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

        for m in sorted(self.files):
            if m not in index:
                visit(m)
        return out

    # ------------------------------------------------------------------ cli.py's dispatch

    def command_function(self, subcommand: str) -> str:
        """`train-dmp` -> `cmd_train_dmp`, cli.py's function that runs it."""
        name = "cmd_" + subcommand.replace("-", "_")
        if name not in self._cli_functions():
            raise KeyError(f"uvhmr {subcommand}: cli.py has no function {name}")
        return name

    @functools.lru_cache(maxsize=None)
    def _cli_functions(self) -> dict[str, ast.FunctionDef]:
        return {n.name: n for n in self.tree(CLI).body if isinstance(n, ast.FunctionDef)}

    @functools.lru_cache(maxsize=None)
    def _cli_bindings(self) -> dict[str, frozenset[str]]:
        """cli.py's module-level imports: {bound name: uvhmr modules}."""
        out: dict[str, set[str]] = {}
        for node in self.tree(CLI).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name, mods in self.targets(CLI, node).items():
                    out.setdefault(name, set()).update(mods)
        return {k: frozenset(v) for k, v in out.items()}

    def command_roots(self, subcommand: str) -> set[str]:
        """The uvhmr modules cli.py's function for `subcommand` (and the helpers it calls) uses."""
        funcs, bindings = self._cli_functions(), self._cli_bindings()
        roots: set[str] = {CLI}
        seen: set[str] = set()
        todo = [self.command_function(subcommand)]
        while todo:
            fn = todo.pop()
            if fn in seen:
                continue
            seen.add(fn)
            for node in ast.walk(funcs[fn]):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for mods in self.targets(CLI, node).values():
                        roots |= mods
                elif isinstance(node, ast.Name):
                    if node.id in funcs:
                        todo.append(node.id)
                    elif node.id in bindings:
                        roots |= bindings[node.id]
                    elif node.id == PACKAGE and "" in bindings:
                        roots |= bindings[""]
        return roots

    def command_closure(self, subcommand: str) -> set[str]:
        # cli.py's own file and packages are in, its other subcommands' imports are not.
        return self.closure(self.command_roots(subcommand) | self._with_parents(CLI), leaves={CLI})

    def paths(self, modules: Iterable[str]) -> list[str]:
        """Module names -> repository-relative file names (src/uvhmr/...), sorted."""
        return sorted(f"{REPO_PREFIX}/{self.files[m].relative_to(self.pkg_dir).as_posix()}" for m in modules)


@functools.lru_cache(maxsize=None)
def _graph(pkg_dir: str) -> ImportGraph:
    return ImportGraph(Path(pkg_dir))


def code_deps(subcommand: str, pkg_dir: Optional[Path] = None) -> list[str]:
    """The package files `uvhmr <subcommand>` runs, as src/uvhmr/... paths (sorted)."""
    g = _graph(str(Path(pkg_dir or PACKAGE_DIR).resolve()))
    return g.paths(g.command_closure(subcommand))


# -------------------------------------------------------------------------- dvc.yaml rewriting
# Each stage's code deps are the `- src/uvhmr/....py` items at the end of its `deps:` list; they
# are replaced as text, so dvc.yaml keeps its comments and layout.

_STAGE = re.compile(r"^  (\w+):\s*$")
_CMD = re.compile(r"uvhmr\s+([a-z][a-z0-9-]*)")
_CODE_ITEM = re.compile(rf"^\s+- {re.escape(REPO_PREFIX)}/\S+\.py\s*$")
CODE_COMMENT = "# code: uvhmr dag-deps --write"


def _stage_blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """(stage name, first line, end line) of each stage under `stages:`."""
    start = next(i for i, l in enumerate(lines) if l.rstrip() == "stages:")
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()
                and not lines[i].startswith("#")), len(lines))
    heads = [i for i in range(start + 1, end) if _STAGE.match(lines[i])]
    return [(_STAGE.match(lines[h]).group(1), h, nxt) for h, nxt in zip(heads, heads[1:] + [end])]


def stage_subcommand(block: str) -> str:
    m = _CMD.search(block)
    if not m:
        raise ValueError(f"no `uvhmr <subcommand>` in the stage:\n{block}")
    return m.group(1)


def rewrite_dvc_yaml(text: str, pkg_dir: Optional[Path] = None) -> str:
    """dvc.yaml's text with every stage's code deps replaced by the computed ones."""
    lines = text.split("\n")
    out: list[str] = []
    pos = 0
    for name, a, b in _stage_blocks(lines):
        out += lines[pos:a]
        block = [l for l in lines[a:b] if not _CODE_ITEM.match(l) and l.strip() != CODE_COMMENT]
        code = code_deps(stage_subcommand("\n".join(block)), pkg_dir)
        key_indent = None
        for i, l in enumerate(block):
            m = re.match(r"^(\s+)cmd:", l)
            if m:
                key_indent = m.group(1)
                break
        deps_at = next((i for i, l in enumerate(block) if l == f"{key_indent}deps:"), None)
        if deps_at is None:           # a stage without deps: add the list after its cmd
            cmd_at = next(i for i, l in enumerate(block) if l.startswith(f"{key_indent}cmd:"))
            nxt = next(i for i in range(cmd_at + 1, len(block))
                       if block[i].strip() and not block[i].startswith(key_indent + " "))
            block[nxt:nxt] = [f"{key_indent}deps:"]
            deps_at = nxt
        last = deps_at
        for i in range(deps_at + 1, len(block)):
            if block[i].startswith(key_indent + "  - ") or block[i].startswith(key_indent + "    "):
                last = i
            elif block[i].strip():
                break
        item = key_indent + "  - "
        block[last + 1:last + 1] = [f"{key_indent}  {CODE_COMMENT}"] + [item + p for p in code]
        out += block
        pos = b
    out += lines[pos:]
    return "\n".join(out)


def dvc_stage_code_deps(dvc_yaml: dict) -> dict[str, tuple[str, list[str]]]:
    """{stage: (subcommand, its deps under src/uvhmr)} of a parsed dvc.yaml."""
    out = {}
    for name, st in dvc_yaml["stages"].items():
        body = st.get("do", st)
        deps = [d if isinstance(d, str) else next(iter(d)) for d in body.get("deps") or []]
        out[name] = (stage_subcommand(body["cmd"]), [d for d in deps if d.startswith(REPO_PREFIX + "/")])
    return out


def check_dvc_yaml(path: Path, pkg_dir: Optional[Path] = None) -> list[str]:
    """Stages of dvc.yaml whose code deps differ from their command's import closure."""
    import yaml
    stages = dvc_stage_code_deps(yaml.safe_load(Path(path).read_text()))
    return [name for name, (sub, deps) in stages.items() if deps != code_deps(sub, pkg_dir)]


def write_dvc_yaml(path: Path, pkg_dir: Optional[Path] = None) -> list[str]:
    """Rewrite dvc.yaml's code deps (only if they changed). -> the stages that were stale."""
    stale = check_dvc_yaml(path, pkg_dir)
    if stale:
        text = Path(path).read_text()
        Path(path).write_text(rewrite_dvc_yaml(text, pkg_dir))
    return stale
