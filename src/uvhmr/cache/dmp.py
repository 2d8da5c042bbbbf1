"""dmp_cache: run a trained DMP on stage2_train and test; keep its UV-space outputs and J_initial.

Output folder, one subfolder per split (`stage2_train`, `test`), arrays memory-mappable:
  uv_feat.npy   (N, C, R, R) float16    local features warped into UV (scatter-mean), R = the
                                        DMP's uv_res (64 by default)
  uv_maps.npy   (N, 9, R, R) float16    M_j, M_l, M_d warped into UV (metres, root-relative)
  hits.npy      (N, R, R) uint8         image pixels that landed in each texel (capped at 255)
  j_initial.npy (N, K, 3) float32       mean of M_j over each predicted A_uv part's pixels
  observed.npy  (N, K) bool             the part had an observed texel
  camera.npy    (N, 3) float32          DMP's weak-perspective camera (s, tx, ty)
  index.npy     (N,) int64              the dataset sample each row comes from
  meta.json     variant, joints, resolution, channels, counts
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from uvhmr.cache import CacheSplit, close_split_arrays, open_split_arrays
from uvhmr.data.dataset import SampleDataset
from uvhmr.device import pick_device
from uvhmr.io import atomic_dir
from uvhmr.models.dmp import j_initial, load_dmp

ARRAYS = ("uv_feat", "uv_maps", "hits", "j_initial", "observed", "camera", "index")


def dmp_rows(net, images: torch.Tensor, k: int, out: dict | None = None) -> dict:
    """A trained DMP on images (B, 3, S, S) in [0, 1] -> one batch of cache rows, as tensors in the
    cache's dtypes (module docstring; every array but `index`). The cache rule and `predict` both
    call this, so UVI sees at prediction time exactly the (float16-rounded) inputs it trained on.
    out: `net.infer(images)` when the caller has it already (predict also reads its dense maps)."""
    out = net.infer(images) if out is None else out
    j, obs, w = j_initial(out, k, net.uv_res)
    return {"uv_feat": w["uv_feat"].half(), "uv_maps": w["uv_maps"].half(),
            "hits": w["hits"].clamp(max=255).to(torch.uint8), "j_initial": j.float(), "observed": obs,
            "camera": out["camera"].float()}


def run_dmp_cache(rp, model_path: Path, data_dirs: dict[str, Path], uv_dir: Path, out_dir: Path, log=print) -> None:
    """data_dirs: split name -> dataset split folder."""
    device = pick_device(rp.run.device)
    net, cfg = load_dmp(model_path, device)
    k = int(cfg["joints"])
    res = net.uv_res
    with atomic_dir(out_dir) as tmp:
        for split, data in data_dirs.items():
            # Caches always see the split's occluders: stage 2 learns from DMP's real test-time errors.
            ds = SampleDataset(data, joints=k, augment=None, occlusion=True, seed=rp.run.seed)
            n = len(ds)
            d = tmp / split
            c = net.local[0].out_channels
            shapes = {"uv_feat": ((n, c, res, res), np.float16), "uv_maps": ((n, 9, res, res), np.float16),
                      "hits": ((n, res, res), np.uint8), "j_initial": ((n, k, 3), np.float32),
                      "observed": ((n, k), np.bool_), "camera": ((n, 3), np.float32), "index": ((n,), np.int64)}
            arr = open_split_arrays(d, shapes)
            loader = DataLoader(ds, batch_size=rp.section.batch_size)
            row = 0
            with torch.no_grad():
                for b in tqdm(loader, desc=f"dmp_cache {rp.variant or cfg['variant']} {split}", leave=False, mininterval=2):
                    rows = dmp_rows(net, b["image"].to(device), k)
                    sl = slice(row, row + len(b["image"]))
                    for name, v in rows.items():
                        arr[name][sl] = v.cpu().numpy()
                    arr["index"][sl] = b["index"].numpy()
                    row += len(b["image"])
            close_split_arrays(d, arr, {"variant": cfg["variant"], "joints": k, "uv_res": res,
                                        "feature_channels": c, "samples": n, "dataset": str(data)})
            del arr
            log(f"dmp_cache {cfg['variant']} {split}: {n} samples; J_initial observed for "
                f"{float(np.load(d / 'observed.npy').mean()) * 100:.1f} % of joints")


class DmpCache(CacheSplit):
    """One split of a dmp_cache folder, memory-mapped. `arrays[name]` as in the module docstring."""
    rule = "dmp_cache"
    names = ARRAYS
