"""The dataset rule's sources, one module each, all writing the same split format
(`uvhmr.data.format`): `synthetic` renders posed mocap bodies, `spin_npz` adapts licensed data in
the SPIN/DecoMR `.npz` format. params.yaml's `dataset.source` picks one (`run_dataset`).
"""
from __future__ import annotations

from pathlib import Path

from uvhmr.data.format import SPLITS
from uvhmr.data.sources.spin_npz import run_spin_npz
from uvhmr.data.sources.synthetic import run_synthetic

# dataset.source -> (rp, body_dir, uv_dir, mocap_dir, split, out_dir, log) -> None
SOURCES = {"synthetic": run_synthetic, "spin_npz": run_spin_npz}


def run_dataset(rp, body_dir: Path, uv_dir: Path, mocap_dir: Path, split: str, out_dir: Path, log=print) -> None:
    """The dataset rule for one split, from the source `rp.section.source` names: shards +
    index.json + figures/ in out_dir, written atomically."""
    if split not in SPLITS:
        raise ValueError(f"dataset: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    SOURCES[rp.section.source](rp, Path(body_dir), Path(uv_dir), Path(mocap_dir), split, Path(out_dir), log=log)
