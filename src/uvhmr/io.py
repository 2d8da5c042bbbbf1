"""Atomic writes: every output is written to a temporary name beside it, then renamed.

A killed process or a failed write (disk full) therefore leaves either the previous file or the
complete new one, never a half-written file under the final name.

A writer killed with SIGKILL cannot delete its temporary file or folder; the next write of the same
path does (`remove_stale_temporaries`). That relies on the convention every rule follows: one path
has one writer at a time (the workflow tools lock their outputs), as in uvhmr.train.checkpoint.
A failed write (OSError ENOSPC, EDQUOT, EFBIG, EIO, EROFS: disk full, quota, ...) is raised again,
same errno, with the path it was writing in its message.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (weights files, the user's images)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_pattern(name: str) -> re.Pattern:
    """What tempfile.mkstemp/mkdtemp make for `name` here: `.<name>.<8 random chars>.tmp[suffix]`."""
    return re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp(\..*)?")


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files and folders that killed writers of `path` left beside it.
    -> what it deleted."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = _tmp_pattern(path.name)
    removed = []
    for p in path.parent.iterdir():
        if pattern.fullmatch(p.name):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return sorted(removed)


# errnos that mean "the write itself failed" (not, say, a missing input read inside the block).
WRITE_ERRNOS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EROFS") if hasattr(errno, n))


def _name_the_target(e: OSError, path: Path) -> OSError:
    """A write failure (disk full...) raised again with the output it was writing; any other
    OSError unchanged."""
    if e.errno not in WRITE_ERRNOS:
        return e
    root = getattr(e, "uvhmr_root", e)     # nested atomic writes: the outermost output names it
    what = root.strerror or str(root)
    where = f" ({root.filename})" if root.filename and str(root.filename) != str(path) else ""
    new = OSError(root.errno, f"writing {path} failed: {what}{where}; the previous {path.name}, if any, is untouched")
    new.uvhmr_root = root
    return new


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success fsync and rename it over `path`.

    `suffix` keeps the extension for writers that insist on one (np.savez adds `.npz`).
    On any exception the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        try:
            yield tmp
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
            os.replace(tmp, path)
        except OSError as e:
            new = _name_the_target(e, path)
            if new is e:
                raise
            raise new from e
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_if_changed(path: str | Path, text: str) -> bool:
    """Write `text` atomically unless the file already holds exactly it (keeps the mtime, so
    Snakemake does not rerun what depends on it). Returns whether it wrote."""
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        return False
    write_text(path, text)
    return True


def save_with(path: str | Path, writer: Callable[[Path], None], suffix: str = "") -> None:
    """Atomically save through any writer taking a path (torch.save, np.savez, safetensors...)."""
    with atomic_path(path, suffix) as tmp:
        writer(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name, then swap it in for `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        try:
            yield tmp
        except OSError as e:
            new = _name_the_target(e, path)
            if new is e:
                raise
            raise new from e
        mask = _umask()
        os.chmod(tmp, 0o777 & ~mask)
        for f in tmp.rglob("*"):   # some writers (safetensors, mkstemp) create 0600 files
            os.chmod(f, (0o777 if f.is_dir() else 0o666) & ~mask)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sort_safetensors_metadata(path: str | Path) -> None:
    """Rewrite a safetensors file's JSON header with its keys sorted, in place.

    safetensors writes the header's `__metadata__` from a hash map whose order changes from one
    process to the next, so two builds of the same tensors differ in bytes and in every hash
    DVC takes of them. Sorting changes neither the header's length nor the tensors' offsets."""
    path = Path(path)
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        raw = f.read(n)
        text = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()
        if len(text) > n:   # cannot happen for a reordering; never shift the tensor data
            raise ValueError(f"{path}: sorted header is {len(text)} bytes, the file's is {n}")
        f.seek(8)
        f.write(text + b" " * (n - len(text)))
