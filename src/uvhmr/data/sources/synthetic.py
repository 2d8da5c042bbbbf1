"""The synthetic source of the dataset rule: render one split of samples into shards.

A sample is a posed body (mocap pose, sampled shape, global orientation from the shared sampler,
which lays the prior's "lying" family down) seen by a perspective camera that makes it fill
60-95 % of the crop, painted with a procedural clothing texture, lit, over a procedural
background (`uvhmr.data.render_sample`). The split's files are `uvhmr.data.format`'s.

Building: a shard is a pure function of (parameters, seed, split, shard index), so shards build
in any order and anywhere: `run_dataset` runs `resources.threads` worker processes
(`python -m uvhmr.data.sources --shards ...`, also usable as one cluster job per shard) and the
files are byte-identical to a serial build.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from uvhmr.body.model import load_body_model
from uvhmr.config import load_rule_params, rule_params_dict
from uvhmr.data.figures_dataset import write_dataset_figure
from uvhmr.data.format import SPLIT_ID, pack_records, shard_name, shard_stats, split_size, write_index
from uvhmr.data.mocap import open_mocap
from uvhmr.data.orientation import OrientationSampler, with_orientation
from uvhmr.data.render_sample import Context, load_context, render_sample
from uvhmr.data.scene import place_camera
from uvhmr.data.shards import Shard, write_shard
from uvhmr.io import atomic_dir


def seed_ints(*keys: int, n: int = 1) -> list[int]:
    """Deterministic 32-bit seeds from integer keys (numpy's SeedSequence)."""
    return [int(x) for x in np.random.SeedSequence([int(k) for k in keys]).generate_state(n)]


# ----------------------------------------------------------------------------- one shard

def mocap_split(split: str) -> str:
    """Test poses come from the mocap rule's held-out split, training poses from its train split."""
    return "val" if split == "test" else "train"


def pose_indices(section, split: str, seed: int, num_poses: int, start: int, n: int) -> np.ndarray:
    """Rows of the mocap split for samples start .. start + n - 1 of `split`: one permutation per
    mocap split, dmp_train and stage2_train taking consecutive stretches of it (disjoint poses
    while the mocap split is large enough, wrapping around otherwise)."""
    perm = np.random.default_rng(seed_ints(seed, 17, 0 if split == "test" else 1)).permutation(num_poses)
    offset = section.n_dmp_train if split == "stage2_train" else 0
    return perm[(offset + start + np.arange(n)) % num_poses]


def generate_shard(ctx: Context, mocap, split: str, shard: int, seed: int, batch: int = 32,
                   progress: bool = True) -> tuple[dict, dict]:
    """All samples of one shard, a pure function of (parameters, seed, split, shard).
    -> (arrays for write_shard, statistics)."""
    sec = ctx.section
    total = split_size(sec, split)
    start = shard * sec.shard_size
    n = min(sec.shard_size, total - start)
    sid = SPLIT_ID[split]
    rows = pose_indices(sec, split, seed, len(mocap), start, n)
    body = ctx.body
    mrows = mocap.batch(rows)
    pose = mrows["pose"].float()
    shape = body.sample_shape(n, seed_ints(seed, sid, shard, 1)[0]).float()
    # The rows' category and body-frame joints let the sampler lay the "lying" family down.
    orient = OrientationSampler(up_axis=body.up_axis).sample_rows(mrows, seed_ints(seed, sid, shard, 2)[0])
    pose = with_orientation(pose, orient)
    records = []
    bar = tqdm(total=n, desc=f"{split} shard {shard}", unit="sample", disable=not progress, mininterval=2.0)
    for b0 in range(0, n, batch):
        with torch.no_grad():
            out = body(pose[b0:b0 + batch], shape[b0:b0 + batch])
        for i in range(out.vertices.shape[0]):
            k = b0 + i
            rng = np.random.default_rng([seed, sid, shard, k])
            v = out.vertices[i].double().numpy()
            K, t, fill = place_camera(v, ctx.R0, rng, ctx.size, sec.focal_range, sec.fill_range, sec.center_jitter)
            records.append(render_sample(ctx, v, out.lsp14[i].double().numpy(), out.joints24[i].double().numpy(),
                                         K, ctx.R0, t, rng, fill=fill))
            bar.update(1)
    bar.close()
    return pack_records(records, pose.numpy(), shape.numpy(), rows), shard_stats(records)


# ----------------------------------------------------------------------------- the rule

def build_shards(section, seed: int, body_dir: Path, uv_dir: Path, mocap_dir: Path, split: str,
                 shards: list[int], out_dir: Path, progress: bool = True, body=None) -> None:
    """Build the given shards of a split into out_dir (one file each, statistics in its attrs).
    Single-threaded torch, so a shard's bytes do not depend on where or beside what it is built.
    body: the loaded body model, if at hand."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        body = load_body_model(body_dir) if body is None else body
        ctx = load_context(body, Path(uv_dir), section)
        mocap = open_mocap(Path(mocap_dir), mocap_split(split))
        for k in shards:
            arrays, stats = generate_shard(ctx, mocap, split, k, seed, progress=progress)
            write_shard(Path(out_dir) / shard_name(k), arrays, {"split": split, "shard": k, "stats": stats})
    finally:
        torch.set_num_threads(threads)


# Parallel builds run `python -m uvhmr.data.sources` per worker: a fresh interpreter needs no
# fork of a process that holds torch's thread pools, and no re-import of the caller's __main__.
PARALLEL_MIN_SAMPLES = 400      # below this, starting processes costs more than it saves


def _build_parallel(rp, workers: int, body_dir, uv_dir, mocap_dir, split: str, nshards: int, out: Path, log) -> None:
    with tempfile.TemporaryDirectory(prefix="uvhmr-dataset-") as td:
        pfile = Path(td) / "params.json"
        pfile.write_text(json.dumps(rule_params_dict(rp)))
        procs = []
        for w in range(workers):
            mine = ",".join(str(k) for k in range(w, nshards, workers))
            cmd = [sys.executable, "-m", "uvhmr.data.sources", "--params", str(pfile), "--body", str(body_dir),
                   "--uv", str(uv_dir), "--mocap", str(mocap_dir), "--split", split, "--shards", mine, "--out", str(out)]
            procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
        failed = []
        for cmd, p in procs:
            _, err = p.communicate()
            if p.returncode:
                failed.append(f"{' '.join(cmd[2:4])} ... --shards {cmd[-3]}: exit {p.returncode}: {err.strip()[-2000:]}")
    if failed:
        raise RuntimeError("dataset: a shard builder failed:\n" + "\n".join(failed))


def run_synthetic(rp, body_dir: Path, uv_dir: Path, mocap_dir: Path, split: str, out_dir: Path, log=print) -> None:
    """The dataset rule for one split of synthetic renders: shards + index.json + figures/,
    written atomically.

    Deterministic: the same parameters, seed and inputs give byte-identical files, whether the
    shards are built in one process or `resources.threads` processes (each shard depends only on
    (seed, split, shard index); generation runs single-threaded)."""
    sec = rp.section
    # The mocap folder first (its manifest and shard headers, no poses read): a missing or empty
    # one stops here, in one line, not after the body model and UV assets have loaded.
    open_mocap(Path(mocap_dir), mocap_split(split))
    seed = int(rp.run.seed)
    n = split_size(sec, split)
    nshards = math.ceil(n / sec.shard_size)
    t0 = time.time()
    workers = min(int(rp.resources.threads), nshards) if n >= PARALLEL_MIN_SAMPLES else 1
    with atomic_dir(out_dir) as tmp:
        if workers > 1:
            log(f"dataset {split}: {nshards} shards on {workers} processes")
            _build_parallel(rp, workers, body_dir, uv_dir, mocap_dir, split, nshards, tmp, log)
            body = load_body_model(body_dir)          # after the workers: they need the memory more
        else:
            body = load_body_model(body_dir)
            build_shards(sec, seed, body_dir, uv_dir, mocap_dir, split, list(range(nshards)), tmp, body=body)
        stats, shards = [], []
        for k in range(nshards):
            sh = Shard(tmp / shard_name(k))
            st = dict(sh.attrs["stats"], bytes=sh.header["size"])
            stats.append(st)
            shards.append({"file": shard_name(k), "num_samples": st["samples"], "bytes": st["bytes"]})
        index = write_index(tmp, body, sec, split, seed, shards, stats, "synthetic")
        write_dataset_figure(tmp, tmp / "figures" / "dataset_samples.png")
    st = index["stats"]
    log(f"dataset {split}: {n} samples in {nshards} shard(s), {st['bytes'] / 2 ** 20:.1f} MiB, "
        f"{time.time() - t0:.1f} s; body fills {st['fill_mean'] * 100:.0f} % of the crop on average; "
        f"weak-perspective reprojection error {st['wp_reprojection_error_px_mean']:.2f} px mean "
        f"({st['wp_reprojection_error_px_max']:.2f} max) at {sec.image_size} px")


def main(argv=None) -> None:
    """`python -m uvhmr.data.sources`: build some shards of a split (what run_synthetic's
    worker processes run; a cluster job can run it too, one shard each)."""
    ap = argparse.ArgumentParser(prog="python -m uvhmr.data.sources", description=main.__doc__)
    for flag in ("--params", "--body", "--uv", "--mocap", "--split", "--shards", "--out"):
        ap.add_argument(flag, required=True)
    a = ap.parse_args(argv)
    rp = load_rule_params(a.params)
    build_shards(rp.section, int(rp.run.seed), Path(a.body), Path(a.uv), Path(a.mocap), a.split,
                 [int(k) for k in a.shards.split(",") if k], Path(a.out))

