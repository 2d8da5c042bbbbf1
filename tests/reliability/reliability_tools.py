"""Helpers of the reliability tests: run a rule's `uvhmr` command (plainly or SIGKILLed at an exact
moment by sigkill_at.py) in a copy of the shared smoke run, and compare output trees byte for byte."""
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import venv_env
from uvhmr.workflow import Layout

HERE = Path(__file__).resolve().parent
KILLER = HERE / "sigkill_at.py"
LAY = Layout("smoke", "anny")
# Snakemake's marker in directory outputs: not written by uvhmr.
IGNORED = {".snakemake_timestamp"}


def uvhmr(cwd: Path, args: list[str], kill_at: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """`uvhmr ARGS` in cwd, as the workflow runs it; with kill_at, SIGKILLed at that moment
    (sigkill_at.py's SPEC)."""
    cmd = [sys.executable, "-m", "uvhmr.cli", *args] if kill_at is None else \
        [sys.executable, str(KILLER), kill_at, "--", *args]
    env = venv_env()
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)


def copy_of_smoke_run(smoke_dir: Path, dst: Path, parts: list[str]) -> Path:
    """A folder holding `parts` (paths relative to the smoke run) copied with their timestamps, and
    the shared body model, so a rule runs there with the very paths the DAG gave it."""
    dst.mkdir(parents=True)
    for rel in parts:
        src, to = smoke_dir / rel, dst / rel
        to.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, to, symlinks=True)
        else:
            shutil.copy2(src, to)
    (dst / "resources").symlink_to((smoke_dir / "resources").resolve())
    return dst


def tree(path: Path) -> dict[str, bytes]:
    """Every file under path (or path itself) -> its bytes, by relative name."""
    path = Path(path)
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name not in IGNORED}


def assert_same_tree(a: Path, b: Path) -> None:
    ta, tb = tree(a), tree(b)
    assert sorted(ta) == sorted(tb), (sorted(ta), sorted(tb))
    differ = [name for name in ta if ta[name] != tb[name]]
    assert not differ, f"{a} and {b} differ in {differ}"


def temporaries(folder: Path) -> list[str]:
    """Names in folder that uvhmr.io's atomic writes use while writing (`.<name>.<random>.tmp...`)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(".") and ".tmp" in p.name)


def set_key(path: list[str], value):
    """An edit of a parsed params.yaml mapping: set the nested key `path` to `value`."""
    def edit(raw):
        *keys, last = path
        d = raw
        for k in keys:
            d = d.setdefault(k, {})
        d[last] = value
    return edit
