"""Run `uvhmr` and SIGKILL it at an exact moment: what `kill -9`, the OOM killer or a preempted
cluster node does to a rule's job (nothing runs after the signal: no `finally`, no cleanup).

    python sigkill_at.py SPEC -- <uvhmr arguments>

SPEC is one of
    call:MODULE:ATTR:N      die on entering the N-th call (1-based) of MODULE.ATTR (ATTR may be
                            dotted, e.g. Adam.step)
    write:MODULE:N:BYTES    die after BYTES bytes of the N-th file that MODULE opens for writing
                            (through the name `open` in its namespace), flushed to disk first, so
                            the half-written file really exists
The moment is exact (no timing race), so a test can say what the kill interrupted.
"""
import builtins
import importlib
import os
import signal
import sys


def die() -> None:
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def kill_on_call(module: str, attr: str, n: int) -> None:
    owner = importlib.import_module(module)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    real = getattr(owner, name)
    calls = [0]

    def wrapper(*a, **k):
        calls[0] += 1
        if calls[0] == n:
            die()
        return real(*a, **k)

    setattr(owner, name, wrapper)


class _DyingFile:
    def __init__(self, f, budget: int):
        self._f, self._left = f, budget

    def write(self, data):
        mv = memoryview(data).cast("B")
        if len(mv) >= self._left:
            self._f.write(mv[:self._left])
            self._f.flush()
            os.fsync(self._f.fileno())
            die()
        self._left -= len(mv)
        return self._f.write(mv)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._f, name)


def kill_mid_write(module: str, n: int, budget: int) -> None:
    mod = importlib.import_module(module)
    opened = [0]

    def dying_open(file, mode="r", *a, **k):
        f = builtins.open(file, mode, *a, **k)
        if any(c in mode for c in "wax+"):
            opened[0] += 1
            if opened[0] == n:
                return _DyingFile(f, budget)
        return f

    mod.open = dying_open


def main(argv: list[str]) -> int:
    spec, sep, *args = argv
    assert sep == "--", "usage: sigkill_at.py SPEC -- <uvhmr arguments>"
    kind, *rest = spec.split(":")
    if kind == "call":
        kill_on_call(rest[0], rest[1], int(rest[2]))
    elif kind == "write":
        kill_mid_write(rest[0], int(rest[1]), int(rest[2]))
    else:
        raise SystemExit(f"unknown spec {spec!r}")
    from uvhmr.cli import main as uvhmr_main
    return uvhmr_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
