"""The README's `uvhmr predict` demo (issue #11), after the main job:

    .venv/bin/python scripts/predict_demo.py [--profile default] [--out predictions/demo]

builds a folder with 3 synthetic test images (evenly spaced over results/<profile>/data/test), the
repository's real photo (tests/data/photos/astronaut.jpg), a corrupt JPEG and a text file, runs
`uvhmr predict` on it, and copies the overlays of two synthetic images and the photo into
docs/predict/ for the README (reports/ holds only what the DAG writes). `uvhmr predict` must exit 1 (two bad inputs).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def build_inputs(profile: str, folder: Path, n: int = 3) -> list[str]:
    from uvhmr.data.dataset import SampleDataset
    folder.mkdir(parents=True, exist_ok=True)
    ds = SampleDataset(REPO / "results" / profile / "data" / "test", joints=14, augment=None, occlusion=True, seed=0)
    stems = []
    for i in np.linspace(0, len(ds) - 1, n).round().astype(int):
        im = (ds[int(i)]["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        cv2.imwrite(str(folder / f"test{i:04d}.png"), im[:, :, ::-1])
        stems.append(f"test{i:04d}")
    shutil.copy(REPO / "tests/data/photos/astronaut.jpg", folder / "astronaut.jpg")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (folder / "notes.txt").write_text("not an image\n")
    return stems + ["astronaut"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--out", type=Path, default=REPO / "predictions/demo")
    a = ap.parse_args()
    inputs = a.out / "inputs"
    stems = build_inputs(a.profile, inputs)
    uvhmr = Path(sys.executable).parent / "uvhmr"
    r = subprocess.run([str(uvhmr), "predict", str(inputs), "--out", str(a.out / "outputs"), "--profile", a.profile],
                       cwd=REPO)
    print(f"uvhmr predict exited {r.returncode} (expected 1: two bad inputs)")
    written = sorted(p.name for p in (a.out / "outputs").iterdir())
    print(f"{len(written)} files written: {written}")
    keep = REPO / "docs" / "predict"
    keep.mkdir(parents=True, exist_ok=True)
    for stem in stems[:2] + stems[-1:]:
        shutil.copy(a.out / "outputs" / f"{stem}.png", keep / f"{stem}.png")
    print(f"overlays for the README in {keep}")
    return 0 if r.returncode == 1 and len(written) == 3 * len(stems) else 1


if __name__ == "__main__":
    sys.exit(main())
