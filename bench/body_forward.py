"""Body-model forward time on the CPU, batch 1 and 64 (median of repeated runs).

    .venv/bin/python bench/body_forward.py [--body resources/body/anny] [--threads 2]

Prints one line per batch size: ms per call and ms per body, forward only and forward+backward.
"""
import argparse

import torch

from timing import median_seconds
from uvhmr.body.model import load_body_model


def timed(fn, reps: int) -> float:
    return median_seconds(fn, reps) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--body", default="resources/body/anny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_body_model(a.body)
    print(f"{model.name}: {model.num_vertices} vertices, {model.num_joints} joints, float32, "
          f"{a.threads} threads, median of {a.reps}")
    for b in (1, 64):
        g = torch.Generator().manual_seed(0)
        pose = torch.randn(b, model.num_joints, 3, generator=g) * 0.3
        shape = model.sample_shape(b, seed=0)

        def fwd():
            with torch.no_grad():
                model(pose, shape)

        def fwd_bwd():
            p = pose.clone().requires_grad_(True)
            s = shape.clone().requires_grad_(True)
            model(p, s).vertices.square().sum().backward()

        f, fb = timed(fwd, a.reps), timed(fwd_bwd, max(3, a.reps // 2))
        print(f"batch {b:3d}: forward {f:8.2f} ms ({f / b:6.2f} ms/body)   "
              f"forward+backward {fb:8.2f} ms ({fb / b:6.2f} ms/body)")


if __name__ == "__main__":
    main()
