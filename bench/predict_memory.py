"""Peak memory of `uvhmr predict` on one 12000 x 12000 PNG (issue #22: at most 2 GB).

    python bench/predict_memory.py --results results --profile smoke     # a finished run's models
    python bench/predict_memory.py --read-only                           # only the bounded read

Prints the child process's peak resident memory (ru_maxrss). The image is a smooth pattern, so
the PNG stays small on disk (~70 MB) while decoding it still needs the full 432 MB.
"""
import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

LIMIT_GB = 2.0


def huge_png(path: Path, side: int = 12000) -> Path:
    """Written in this process and freed before the child starts: Linux counts a forked child's
    pages from before its exec in the child's peak (ru_maxrss)."""
    ramp = (np.arange(side) % 256).astype(np.uint8)
    im = np.empty((side, side, 3), np.uint8)
    im[..., 0] = ramp[None, :]
    im[..., 1] = ramp[:, None]
    im[..., 2] = ramp[None, :] + ramp[:, None]          # wraps around at 256, as uint8 does
    cv2.imwrite(str(path), im)
    del im
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--read-only", action="store_true", help="measure only predict's checks and bounded read of the image")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        img = huge_png(Path(tmp) / "huge.png")
        if a.read_only:
            code = ("from pathlib import Path; from uvhmr import predict_cli as P; p = Path(%r); "
                    "P.check_image(p, None); print(P.read_image(p, P.MAX_SIDE).shape)" % str(img))
            cmd = [sys.executable, "-c", code]
        else:
            cmd = [sys.executable, "-m", "uvhmr.cli", "predict", str(img), "--out", str(Path(tmp) / "out"),
                   "--results", a.results, "--profile", a.profile, "--device", "cpu"]
        r = subprocess.run(cmd)
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 20     # KiB on Linux
    what = "read" if a.read_only else "predict"
    print(f"{what} of a 12000x12000 PNG: exit code {r.returncode}, peak memory {peak_gb:.2f} GB (limit {LIMIT_GB} GB)")
    return 0 if r.returncode == 0 and peak_gb <= LIMIT_GB else 1


if __name__ == "__main__":
    sys.exit(main())
