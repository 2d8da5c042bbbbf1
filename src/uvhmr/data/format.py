"""A dataset split on disk: the format every source in `uvhmr.data.sources` writes (synthetic
renders, SPIN-format licensed data) and `uvhmr.data.dataset` reads.

Output folder (results/<profile>/data/<name>/<split>/)::

    index.json            format, split, sizes, joint sets and mirrors, occlusion settings, shard
                          list (file, samples, bytes), statistics (fill, coverage, weak-perspective
                          reprojection error), the dataset parameters
    shard-00000.shard     shards.py's container; arrays below (N samples, S = image_size,
    ...                   P = covered pixels summed over the shard's samples)
    figures/dataset_samples.png   the paper's Fig. 3 for a few samples (data/figures_dataset.py)

Per-shard arrays (units: metres, camera frame; pixels in render.py's convention):
    image     (N, S, S, 3) uint8  RGB render without occluders
    maskbits  (N, ceil(S*S/8)) uint8  body pixels, packed row-major (shards.unpack_mask)
    offsets   (N + 1,) int64      sample n's covered pixels are rows offsets[n]:offsets[n+1] of
                                  the pixel arrays below, in row-major pixel order
    uv        (P, 2) uint16       U, V * 65535 in the project's UV layout (v up)
    M_l       (P, 3) float32      surface point seen through the pixel, root-relative
    part14    (P,) int8           A_uv label (LSP-14) of the pixel
    part24    (P,) int8           A_uv label (24 joints)
    joints3d  (N, 14, 3) float32  LSP-14, root-relative; joints3d_24 (N, 24, 3)
    joints2d  (N, 14, 2) float32  perspective projections; joints2d_24 (N, 24, 2)
    root      (N, 3) float32      mid-hip point in the camera frame
    K, R      (N, 3, 3) float32   x_pix ~ K (R X + t), X = body model output (pose, shape) in
    t         (N, 3) float32      the model's frame (translation 0)
    cam_wp    (N, 3) float32      weak perspective (s, tx, ty): 2 x_pix / S - 1 ~ s (X_rel,xy + t)
    pose      (N, J, 3) float32   axis-angle, joint 0 = global orientation; shape (N, B)
    source_index (N,) int64       the mocap (or licensed dataset) row the pose came from

M_j and M_d are not stored: M_j is the joint of the pixel's part and M_d = M_l - M_j, both
rebuilt exactly at load time (dataset.py), as are the occluders (occlusion.py). Only covered
pixels carry maps, so a 96 px sample costs about 47 KiB (the default profile's three splits,
6500 samples: about 300 MiB) and a 224 px one about 250 KiB.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from uvhmr.config import to_dict
from uvhmr.data.shards import SUFFIX, pack_mask
from uvhmr.io import write_json

SPLITS = ("dmp_train", "stage2_train", "test")
SPLIT_ID = {"dmp_train": 1, "stage2_train": 2, "test": 3}
FORMAT = "uvhmr-dataset"
VERSION = 1
INDEX = "index.json"
UV_SCALE = 65535.0


def split_size(section, split: str) -> int:
    return int(getattr(section, f"n_{split}"))


def shard_name(k: int) -> str:
    return f"shard-{k:05d}{SUFFIX}"


def pack_records(records: list[dict], pose: np.ndarray, shape: np.ndarray, source_index: np.ndarray) -> dict:
    """Per-sample records -> the shard's arrays (module docstring)."""
    counts = np.array([len(r["M_l"]) for r in records], np.int64)
    out = {
        "image": np.stack([r["image"] for r in records]),
        "maskbits": np.stack([pack_mask(r["mask"]) for r in records]),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "uv": np.concatenate([np.rint(np.clip(r["uv"], 0, 1) * UV_SCALE) for r in records])
                .astype(np.uint16).reshape(-1, 2),
        "M_l": np.concatenate([r["M_l"] for r in records]).reshape(-1, 3).astype(np.float32),
        "part14": np.concatenate([r["part14"] for r in records]).astype(np.int8),
        "part24": np.concatenate([r["part24"] for r in records]).astype(np.int8),
    }
    for key in ("joints3d", "joints3d_24", "joints2d", "joints2d_24", "root", "K", "R", "t", "cam_wp"):
        out[key] = np.stack([r[key] for r in records]).astype(np.float32)
    out["pose"] = np.asarray(pose, np.float32)
    out["shape"] = np.asarray(shape, np.float32)
    out["source_index"] = np.asarray(source_index, np.int64)
    return out


def shard_stats(records: list[dict]) -> dict:
    s = records[0]["mask"].shape[0]
    return {"samples": len(records),
            "wp_error_px_sum": float(sum(r["wp_error"] for r in records)),
            "wp_error_px_max": float(max(r["wp_error"] for r in records)),
            "fill_sum": float(sum(r["fill"] for r in records)),
            "coverage_sum": float(sum(len(r["M_l"]) / (s * s) for r in records))}


def occlusion_settings(section, split: str) -> dict:
    """How the Dataset composites occluders for this split (recorded in index.json)."""
    return {"count": list(section.occluders), "scale": list(section.occluder_scale),
            "families": "test" if split == "test" else "train", "prob": float(section.occlusion_prob)}


def write_index(out: Path, body, section, split: str, seed: int, shards: list[dict], stats: list[dict],
                source: str) -> dict:
    n = sum(s["samples"] for s in stats)
    summary = {"wp_reprojection_error_px_mean": sum(s["wp_error_px_sum"] for s in stats) / max(n, 1),
               "wp_reprojection_error_px_max": max((s["wp_error_px_max"] for s in stats), default=0.0),
               "fill_mean": sum(s["fill_sum"] for s in stats) / max(n, 1),
               "coverage_mean": sum(s["coverage_sum"] for s in stats) / max(n, 1),
               "bytes": sum(s["bytes"] for s in shards)}
    params = {k: v for k, v in to_dict(section).items() if k != "resources"}   # resources never change the bytes
    index = {
        "format": FORMAT, "version": VERSION, "split": split, "source": source, "seed": seed,
        "num_samples": n, "image_size": int(section.image_size), "backend": body.name,
        "up_axis": body.up_axis, "pose_shape": [body.num_joints, 3], "shape_dim": len(body.shape_labels),
        "joint_sets": {"lsp14": list(body.lsp14.names), "joints24": list(body.joints24.names)},
        "mirror": {"lsp14": body.lsp14.mirror.tolist(), "joints24": body.joints24.mirror.tolist(),
                   "rig": body.joint_mirror.tolist()},
        "uv_scale": UV_SCALE, "occlusion": occlusion_settings(section, split),
        "shards": shards, "stats": summary, "params": params,
    }
    write_json(out / INDEX, index)
    return index
