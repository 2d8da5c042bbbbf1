"""ik_cache: run a trained IK variant (its first seed) on DMP's J_initial of stage2_train and test.

Output folder, one subfolder per split, arrays memory-mappable:
  j_refine.npy  (N, 14, 3) float32    JointRefineNet's joints (camera frame, mid-hip-relative, m)
  gik_joints.npy(N, 14, 3) float32    the GIK-Net mesh's LSP joints (same frame)
  pose.npy      (N, J, 3) float32     GIK-Net's pose (axis-angle, root in the camera frame)
  shape.npy     (N, S) float32
  uv_l.npy      (N, 3, R, R) float16    the posed mesh as a UV location map (R: the DMP cache's)
  uv_j.npy      (N, 3, R, R) float16    J_refine distributed over A_uv-14
  index.npy     (N,) int64              the dataset sample each row comes from
  meta.json
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import roma
import torch
from tqdm import tqdm

from uvhmr.body.model import load_body_model
from uvhmr.cache import CacheSplit, close_split_arrays, open_split_arrays
from uvhmr.cache.dmp import DmpCache
from uvhmr.device import pick_device
from uvhmr.io import atomic_dir
from uvhmr.models.dmp import UV_RES
from uvhmr.models.ik import load_ik, pose_mesh
from uvhmr.uv.assets import load_uv_assets
from uvhmr.uv.gt import distribute_joints

ARRAYS = ("j_refine", "gik_joints", "pose", "shape", "uv_l", "uv_j", "index")


def first_seed_model(model_dir: Path) -> Path:
    files = sorted(Path(model_dir).glob("seed*.pt"), key=lambda p: int(p.stem[4:]))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no seed*.pt IK model; run the workflow's train_ik rule first")
    return files[0]


def ik_rows(net, body, sampler, labels: torch.Tensor, j_initial: torch.Tensor, observed: torch.Tensor) -> dict:
    """A trained IKNet on DMP's J_initial (B, 14, 3) and observed (B, 14) -> one batch of cache
    rows, as tensors in the cache's dtypes (module docstring; every array but `index`).
    sampler, labels: the UVSampler and A_uv-14 labels (R, R) at the DMP cache's resolution R. The cache rule and `predict`
    both call this (one code path for UVI's IK inputs)."""
    out = net(j_initial, observed)
    verts, joints = pose_mesh(body, out["rotmats"], out["shape"])
    return {"j_refine": out["j_refine"].float(), "gik_joints": joints.float(),
            "pose": roma.rotmat_to_rotvec(out["rotmats"]).float(), "shape": out["shape"].float(),
            "uv_l": sampler.from_vertices(verts).half(), "uv_j": distribute_joints(out["j_refine"], labels).half()}


def run_ik_cache(rp, model_dir: Path, dmp_cache_dir: Path, body_dir: Path, uv_dir: Path, out_dir: Path, log=print) -> None:
    device = pick_device(rp.run.device)
    body = load_body_model(body_dir).to(device)
    net, cfg = load_ik(first_seed_model(model_dir), device)
    uv = load_uv_assets(uv_dir, body.faces.cpu().numpy())
    # UVI stacks these maps with the DMP cache's, so they share its resolution.
    res = int(DmpCache(dmp_cache_dir, "stage2_train").meta.get("uv_res", UV_RES))
    sampler, labels = uv.sampler(res).to(device), uv.auv(14, res).to(device)
    with atomic_dir(out_dir) as tmp:
        for split in ("stage2_train", "test"):
            cache = DmpCache(dmp_cache_dir, split)
            n = len(cache)
            d = tmp / split
            shapes = {"j_refine": ((n, 14, 3), np.float32), "gik_joints": ((n, 14, 3), np.float32),
                      "pose": ((n, body.num_joints, 3), np.float32), "shape": ((n, len(body.shape_labels)), np.float32),
                      "uv_l": ((n, 3, res, res), np.float16), "uv_j": ((n, 3, res, res), np.float16),
                      "index": ((n,), np.int64)}
            arr = open_split_arrays(d, shapes)
            bs = rp.section.batch_size
            with torch.no_grad():
                for a in tqdm(range(0, n, bs), desc=f"ik_cache {rp.variant or cfg['variant']} {split}", leave=False, mininterval=2):
                    sl = slice(a, min(n, a + bs))
                    ji = torch.as_tensor(np.array(cache.arrays["j_initial"][sl])).to(device)
                    obs = torch.as_tensor(np.array(cache.arrays["observed"][sl])).to(device)
                    for name, v in ik_rows(net, body, sampler, labels, ji, obs).items():
                        arr[name][sl] = v.cpu().numpy()
                    arr["index"][sl] = np.asarray(cache.arrays["index"][sl])
            close_split_arrays(d, arr, {"variant": cfg["variant"], "seed": cfg["seed"], "samples": n,
                                        "uv_res": res, "dmp_cache": str(dmp_cache_dir)})
            del arr
            log(f"ik_cache {cfg['variant']} {split}: {n} samples")


class IkCache(CacheSplit):
    """One split of an ik_cache folder, memory-mapped."""
    rule = "ik_cache"
    names = ARRAYS
