"""`uvhmr dvc-commit`: record a finished Snakemake run in DVC without making Snakemake rerun it.

`dvc commit` relinks every output it records from DVC's cache (with the default `copy` link
type it rewrites even unchanged files), which gives each output a new modification time. Snakemake
decides what is out of date by modification time, so after a plain `dvc commit` the next
`snakemake` finds, e.g., models/dmp/dmp14.pt newer than the caches made from it and reruns half
the DAG (with byte-identical results). This command runs `dvc commit -f` and then puts back the
modification time every output had before, so both tools agree that everything is up to date.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterable, Sequence

# Where the DAG's DVC outputs live (dvc.yaml): everything a stage writes is under one of these.
OUTPUT_ROOTS = ("results", "reports", "resources")


def modification_times(root: Path, folders: Iterable[str] = OUTPUT_ROOTS) -> dict[Path, int]:
    """Every file under root/<folder> (following no links out of them) -> its mtime in ns."""
    times = {}
    for folder in folders:
        base = root / folder
        if not base.exists():
            continue
        for dirpath, _, files in os.walk(base):
            for name in files:
                p = Path(dirpath) / name
                try:
                    times[p] = p.lstat().st_mtime_ns
                except FileNotFoundError:     # removed while we walked
                    pass
    return times


def restore_modification_times(times: dict[Path, int]) -> int:
    """Put back each file's recorded mtime (access time too). -> how many files changed time."""
    changed = 0
    for p, ns in times.items():
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        if st.st_mtime_ns != ns:
            os.utime(p, ns=(ns, ns), follow_symlinks=False)
            changed += 1
    return changed


def dvc_commit_keeping_times(root: Path, targets: Sequence[str] = (), log: Callable[[str], None] = print) -> int:
    """`dvc commit -f [targets]` in root, then restore the outputs' modification times.
    -> dvc's exit code (times are restored only when it succeeded)."""
    exe = shutil.which("dvc")
    if exe is None:
        raise FileNotFoundError("dvc-commit: no `dvc` on PATH (install the project's environment)")
    times = modification_times(root)
    r = subprocess.run([exe, "commit", "-f", *targets], cwd=root)
    if r.returncode != 0:
        return r.returncode
    n = restore_modification_times(times)
    log(f"dvc-commit: recorded in dvc.lock; modification times of {n} relinked output files put back "
        f"(of {len(times)} under {', '.join(OUTPUT_ROOTS)})")
    return 0
