"""Synthetic dataset speed per process: generation (body model, camera, texture, background,
render, ground truth, packing) and loading (Dataset.__getitem__ with load-time occlusion and
augmentation), at the default profile's 96 px and the paper profile's 224 px.

    .venv/bin/python bench/dataset_speed.py [--samples 200] [--uv results/default/uv]
                                            [--mocap results/default/mocap]

Without --uv the UV assets are built into a temporary folder (5 s); without --mocap poses come
from the pose prior directly (what the mocap rule samples by default). Each profile's dataset
section from params.yaml sets image size, texture size and the rest. One thread, one process;
the rule runs `dataset.resources.threads` such processes side by side.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from uvhmr.body.model import load_body_model
from uvhmr.config import load_params, rule_params
from uvhmr.data import format as fmt
from uvhmr.data.dataset import Augment, SampleDataset
from uvhmr.data.mocap import open_mocap
from uvhmr.data.pose_prior import PosePrior
from uvhmr.data.render_sample import load_context
from uvhmr.data.shards import write_shard
from uvhmr.data.sources import synthetic as syn
from uvhmr.uv.assets import build_uv_assets


class PriorPoses:
    """The mocap reader's API over poses drawn from the pose prior."""

    def __init__(self, body, n: int):
        self.pose = torch.from_numpy(PosePrior.from_model(body).sample(n, np.random.default_rng(0)).pose)

    def __len__(self):
        return len(self.pose)

    def batch(self, idx):
        return {"pose": self.pose[torch.as_tensor(idx).long()]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--body", default="resources/body/anny")
    ap.add_argument("--uv", help="uv_assets folder (default: build one in a temporary folder)")
    ap.add_argument("--mocap", help="mocap folder (default: sample the pose prior)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--profiles", nargs="+", default=["default", "paper"])
    a = ap.parse_args()
    torch.set_num_threads(1)
    body = load_body_model(a.body)
    tmp = tempfile.TemporaryDirectory(prefix="uvhmr-bench-")
    uv = Path(a.uv) if a.uv else None
    if uv is None:
        uv = Path(tmp.name) / "uv"
        build_uv_assets(body, rule_params(load_params("params.yaml"), "uv_assets").section, uv, log=lambda *_: None)
    if a.mocap:
        mocap = open_mocap(a.mocap, "train")
    else:
        mocap = PriorPoses(body, max(a.samples, 64))
    print(f"{body.name}, {a.samples} samples per size, 1 process, 1 thread "
          f"({'mocap ' + a.mocap if a.mocap else 'pose prior'})")
    print(f"{'profile':8s} {'size':>5s} {'texture':>8s} {'generate/s':>11s} {'load/s':>8s} {'load+aug/s':>11s} "
          f"{'KiB/sample':>11s} {'wp err px':>10s}")
    for prof in a.profiles:
        sec = rule_params(load_params("params.yaml", prof), "dataset").section
        import dataclasses
        sec = dataclasses.replace(sec, n_dmp_train=a.samples, shard_size=a.samples)
        ctx = load_context(body, uv, sec)
        syn.generate_shard(ctx, mocap, "dmp_train", 0, 1, progress=False)           # warm-up
        t = time.perf_counter()
        arrays, stats = syn.generate_shard(ctx, mocap, "dmp_train", 0, 0, progress=False)
        gen = a.samples / (time.perf_counter() - t)
        d = Path(tmp.name) / prof
        d.mkdir()
        nbytes = write_shard(d / fmt.shard_name(0), arrays, {"stats": stats})
        fmt.write_index(d, body, sec, "dmp_train", 0, [{"file": fmt.shard_name(0), "num_samples": a.samples,
                                                         "bytes": nbytes}], [dict(stats, bytes=nbytes)], "synthetic")
        rates = []
        for aug in (None, Augment()):
            ds = SampleDataset(d, augment=aug)
            ds[0]
            t = time.perf_counter()
            for i in range(len(ds)):
                ds[i]
            rates.append(len(ds) / (time.perf_counter() - t))
        print(f"{prof:8s} {sec.image_size:5d} {sec.texture_size:8d} {gen:11.1f} {rates[0]:8.0f} {rates[1]:11.0f} "
              f"{nbytes / a.samples / 1024:11.1f} {stats['wp_error_px_sum'] / a.samples:10.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
