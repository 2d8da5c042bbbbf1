"""Stage outputs cached for the next stages: DMP's (dmp.py) and IK's (ik.py), in UV space.

Both use the same layout: one folder per split holding one memory-mappable `.npy` per array and a
`meta.json` with at least `samples`. `open_split_arrays` writes one, `CacheSplit` reads one.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def open_split_arrays(directory: Path, shapes: dict) -> dict:
    """Create `directory` and one writable memmapped .npy per array: {name: (shape, dtype)}."""
    directory.mkdir()
    return {name: np.lib.format.open_memmap(directory / f"{name}.npy", mode="w+", dtype=dt, shape=sh)
            for name, (sh, dt) in shapes.items()}


def close_split_arrays(directory: Path, arrays: dict, meta: dict) -> None:
    """Flush the arrays and write meta.json (last: a split without it is incomplete)."""
    for a in arrays.values():
        a.flush()
    (directory / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


class CacheSplit:
    """One split of a cache folder, memory-mapped: `arrays[name]`, `meta`, `len()`.
    Missing or truncated arrays give an error naming the file and the rule to rerun."""

    rule = "cache"
    names: tuple = ()

    def __init__(self, directory: str | Path, split: str):
        self.dir = Path(directory) / split
        f = self.dir / "meta.json"
        if not f.is_file():
            raise FileNotFoundError(f"{f}: no {self.rule} output here; run the workflow's {self.rule} rule first")
        self.meta = json.loads(f.read_text())
        self.arrays = {}
        for name in self.names:
            p = self.dir / f"{name}.npy"
            try:
                self.arrays[name] = np.load(p, mmap_mode="r")
            except (OSError, ValueError) as e:
                raise ValueError(f"{p}: unreadable {self.rule} array ({e}); rerun the {self.rule} rule") from None
            if len(self.arrays[name]) != self.meta["samples"]:
                raise ValueError(f"{p}: {len(self.arrays[name])} rows, meta.json says {self.meta['samples']}; "
                                 f"rerun the {self.rule} rule")

    def __len__(self) -> int:
        return int(self.meta["samples"])
