"""The PyTorch Dataset over one split written by the dataset rule, with load-time synthetic
occlusion and paper-style augmentation applied consistently to the image and every map.

    ds = SampleDataset("results/default/data/synthetic/dmp_train", joints=14,
                       augment=Augment(), occlusion=True, seed=0)
    ds.set_epoch(epoch)           # before each epoch's DataLoader iterator: new occluders and augmentation
    loader = DataLoader(ds, batch_size=32, shuffle=True, num_workers=2)

Determinism: a sample is a pure function of (seed, index) and, when `augment` is set, the epoch
(`set_epoch`, call it before creating the epoch's iterator so workers see it). With augment=None
(evaluation, caches) occluders are fixed per index: the test split always shows the same ones.

Geometry (render.py's conventions): a rotation of the image about its centre is a roll of the
camera about its optical axis and a zoom is a change of focal length, both exact for the stored
perspective camera (the principal point is the image centre), so 3-D maps and joints are rotated
with the camera and K, R, t stay exact. A flip is the mirror x -> -x of the camera frame: the
mirrored body (pose through `mirror_axis_angle`, joints permuted, A_uv labels permuted, U -> 1 - U).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from uvhmr.body.joints import mirror_axis_angle
from uvhmr.data.format import FORMAT, INDEX, VERSION
from uvhmr.data.occlusion import OcclusionParams, composite, joint_visibility, occluder_mask, occluders
from uvhmr.data.shards import Shard, ShardError, unpack_mask

MX = np.diag([-1.0, 1.0, 1.0])      # the mirror x -> -x (camera frame, and the model's lateral axis)


@dataclass(frozen=True)
class Augment:
    """SPIN/DecoMR-style training augmentation.

    scale: zoom s = clip(1 + N(0, scale), 1 - scale, 1 + scale); rotation: degrees,
    clip(N(0, rotation), +-2 rotation), applied with probability rot_prob (else 0); flip:
    probability of the left-right mirror; color: per-channel gain U(1 - color, 1 + color)."""
    scale: float = 0.25
    rotation: float = 30.0
    rot_prob: float = 0.4
    flip: float = 0.5
    color: float = 0.4


def _read_index(root: Path) -> dict:
    f = root / INDEX
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no dataset split here; run the workflow's dataset rule first")
    try:
        index = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise ShardError(f"{f}: corrupt index ({e.msg} at line {e.lineno}); rebuild the split") from None
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise ShardError(f"{f}: dataset format {index.get('format')} v{index.get('version')}, this uvhmr reads "
                         f"{FORMAT} v{VERSION}; rebuild the split (delete {root} and rerun the dataset rule)")
    return index


def read_sample(shard: Shard, j: int, size: int, uv_scale: float) -> dict:
    """Sample j of a shard as dense numpy arrays: image (S, S, 3) uint8; mask (S, S) bool;
    uv (S, S, 2) float32; M_l (S, S, 3) float32 (0 off the body); part14, part24 (S, S) int64
    (-1 off the body); plus the per-sample arrays of the shard (joints, cameras, pose, shape)."""
    mask = unpack_mask(shard["maskbits"][j], size, size)
    a, b = int(shard["offsets"][j]), int(shard["offsets"][j + 1])
    idx = np.flatnonzero(mask.reshape(-1))
    if len(idx) != b - a:
        raise ShardError(f"{shard.path}: corrupt: sample {j} has {len(idx)} body pixels but {b - a} pixel rows; "
                         "rebuild the split")
    out = {"image": np.asarray(shard["image"][j]), "mask": mask}
    uv = np.zeros((size * size, 2), np.float32)
    uv[idx] = shard["uv"][a:b] / np.float32(uv_scale)
    m_l = np.zeros((size * size, 3), np.float32)
    m_l[idx] = shard["M_l"][a:b]
    out["uv"], out["M_l"] = uv.reshape(size, size, 2), m_l.reshape(size, size, 3)
    for k in ("part14", "part24"):
        p = np.full(size * size, -1, np.int64)
        p[idx] = shard[k][a:b]
        out[k] = p.reshape(size, size)
    for k in ("joints3d", "joints3d_24", "joints2d", "joints2d_24", "root", "K", "R", "t", "cam_wp",
              "pose", "shape", "source_index"):
        out[k] = np.array(shard[k][j])
    return out


# ----------------------------------------------------------------------------- geometry

def flip_sample(s: dict, mirror: dict, size: int) -> dict:
    """The left-right mirror of a sample (numpy dict, see read_sample; alpha optional)."""
    o = dict(s)
    for k in ("image", "mask", "uv", "M_l", "part14", "part24", "alpha"):
        if k in s:
            o[k] = np.ascontiguousarray(s[k][:, ::-1])
    flipped_uv = np.stack([1.0 - o["uv"][..., 0], o["uv"][..., 1]], -1)     # the layout's mirror: u -> 1 - u
    o["uv"] = np.where(o["mask"][..., None], flipped_uv, 0).astype(np.float32)
    o["M_l"] = o["M_l"] * np.float32([-1, 1, 1])
    for k, m in (("part14", mirror["lsp14"]), ("part24", mirror["joints24"])):
        o[k] = np.where(o[k] >= 0, np.asarray(m)[np.maximum(o[k], 0)], -1)
    for k, m in (("joints3d", mirror["lsp14"]), ("joints3d_24", mirror["joints24"])):
        o[k] = (s[k][m] * np.float32([-1, 1, 1])).astype(np.float32)
    for k, m in (("joints2d", mirror["lsp14"]), ("joints2d_24", mirror["joints24"])):
        j = s[k][m].copy()
        j[:, 0] = size - j[:, 0]
        o[k] = j
    o["root"] = (s["root"] * np.float32([-1, 1, 1])).astype(np.float32)
    o["cam_wp"] = (s["cam_wp"] * np.float32([1, -1, 1])).astype(np.float32)
    o["R"] = (MX @ s["R"].astype(np.float64) @ MX).astype(np.float32)
    o["t"] = (s["t"] * np.float32([-1, 1, 1])).astype(np.float32)
    o["pose"] = mirror_axis_angle(torch.from_numpy(s["pose"])[None], mirror["rig"])[0].numpy()
    return o


def similarity_sample(s: dict, zoom: float, degrees: float, size: int) -> dict:
    """Zoom by `zoom` and rotate by `degrees` (counter-clockwise on screen) about the image centre.
    Maps are resampled nearest (values stay exact surface points), the image and occluder alpha
    bilinearly; 3-D quantities turn with the camera's roll, K's focal length scales."""
    import cv2
    th = math.radians(degrees)
    c, si = math.cos(th), math.sin(th)
    rot2 = np.array([[c, si], [-si, c]])           # y down: counter-clockwise on screen
    centre = np.array([size / 2.0, size / 2.0])
    A = zoom * rot2
    # cv2 works with pixel centres at integers: p_cv = p - 0.5.
    M = np.concatenate([A, (centre - A @ centre + (A @ [0.5, 0.5]) - 0.5)[:, None]], 1)
    o = dict(s)
    o["image"] = cv2.warpAffine(s["image"], M, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if "alpha" in s:
        o["alpha"] = cv2.warpAffine(s["alpha"], M, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # Nearest source pixel of every destination pixel centre.
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    q = np.stack([xx.reshape(-1), yy.reshape(-1)], 1) - centre
    p = q @ np.linalg.inv(A).T + centre
    col, row = np.floor(p[:, 0]).astype(np.int64), np.floor(p[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    src = np.where(inside, row * size + col, 0)
    mask = (s["mask"].reshape(-1)[src] & inside).reshape(size, size)
    o["mask"] = mask
    R3 = np.eye(3)
    R3[:2, :2] = rot2
    for k, fill in (("uv", 0), ("M_l", 0), ("part14", -1), ("part24", -1)):
        a = s[k].reshape((size * size,) + s[k].shape[2:])[src]
        a = np.where(mask.reshape((-1,) + (1,) * (a.ndim - 1)), a, fill)
        o[k] = a.reshape(s[k].shape)
    o["M_l"] = (o["M_l"] @ R3.T.astype(np.float32)).astype(np.float32)
    for k in ("joints3d", "joints3d_24", "root"):
        o[k] = (s[k].astype(np.float64) @ R3.T).astype(np.float32)
    for k in ("joints2d", "joints2d_24"):
        o[k] = ((s[k].astype(np.float64) - centre) @ A.T + centre).astype(np.float32)
    K = s["K"].astype(np.float64).copy()
    K[0, 0] *= zoom
    K[1, 1] *= zoom
    o["K"] = K.astype(np.float32)
    o["R"] = (R3 @ s["R"].astype(np.float64)).astype(np.float32)
    o["t"] = (R3 @ s["t"].astype(np.float64)).astype(np.float32)
    cam = s["cam_wp"].astype(np.float64)
    o["cam_wp"] = np.concatenate([[cam[0] * zoom], rot2 @ cam[1:]]).astype(np.float32)
    return o


# ----------------------------------------------------------------------------- dataset

class SampleDataset(torch.utils.data.Dataset):
    """One split of the dataset rule's output.

    Args: root: the split's folder (index.json + shards); joints: 14 or 24, the A_uv parts that
    M_j, M_d and `parts` use; augment: an Augment for training, None for none; occlusion: composite
    the split's synthetic occluders (False for the dmp14_nosynocc variant); seed: the run seed;
    verify: check every shard's CRC-32 on opening (reads all data once per process; on by default,
    so a corrupt shard stops the rule with a ShardError naming it instead of feeding it garbage).

    __getitem__(i) -> dict (S = image size; float32 unless noted; metres in the camera frame,
    root-relative, root = mid-hips; pixels: continuous coordinates, pixel (r, c) centre at
    (c + 0.5, r + 0.5)):
      image        (3, S, S)   RGB in [0, 1], occluders composited, colour noise applied
      mask         (1, S, S)   1 on body pixels that are visible (not under an occluder)
      body_mask    (1, S, S)   1 on every body pixel, occluded or not
      occluder     (1, S, S)   1 where an occluder hides the scene (alpha >= 0.5)
      iuv          (3, S, S)   M_i: (mask, U, V), U, V in [0, 1] in the project's UV layout, 0 off `mask`
      M_l          (3, S, S)   surface point seen through the pixel; 0 off `mask`
      M_j          (3, S, S)   joint of the pixel's A_uv part (`joints`); 0 off `mask`
      M_d          (3, S, S)   M_l - M_j, exactly
      parts        (S, S)      int64 A_uv label (`joints` set) of visible body pixels, -1 elsewhere
      joints3d     (14, 3)     LSP-14 (SPIN order);          joints3d_24 (24, 3) SMPL order
      joints2d     (14, 2)     perspective projections, px;  joints2d_24 (24, 2)
      visible      (14,)       bool: any pixel of the joint's A_uv part is visible; visible_24 (24,)
      cam_wp       (3,)        weak perspective (s, tx, ty): 2 x / S - 1 ~ s (X_xy + t), X root-relative
      K, R (3, 3), t (3,)      full camera: x ~ K (R X + t), X = body model output of (pose, shape)
      root         (3,)        mid-hip point in the camera frame (absolute = root-relative + root)
      pose         (J, 3)      axis-angle, joint 0 = global orientation; shape (B,)
      index        ()          int64 sample index;  flipped () bool
    """

    def __init__(self, root: str | Path, joints: int = 14, augment: Optional[Augment] = None,
                 occlusion: bool = True, seed: int = 0, verify: bool = True):
        if joints not in (14, 24):
            raise ValueError(f"joints must be 14 or 24, got {joints}")
        self.root = Path(root)
        self.index = _read_index(self.root)
        self.size = int(self.index["image_size"])
        self.joints = joints
        self.augment = augment
        self.occlusion = bool(occlusion)
        self.seed = int(seed)
        self.epoch = 0
        occ = self.index["occlusion"]
        self.occ_params = OcclusionParams(tuple(occ["count"]), tuple(occ["scale"]), occ["families"], occ["prob"])
        self.mirror = {k: np.asarray(v, np.int64) for k, v in self.index["mirror"].items()}
        self.shards = [Shard(self.root / s["file"], verify=verify) for s in self.index["shards"]]
        for s, meta in zip(self.shards, self.index["shards"]):
            if s["image"].shape[0] != meta["num_samples"]:
                raise ShardError(f"{s.path}: holds {s['image'].shape[0]} samples, index.json says "
                                 f"{meta['num_samples']}; rebuild the split")
        self.starts = np.cumsum([0] + [s["num_samples"] for s in self.index["shards"]])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def raw(self, i: int) -> dict:
        """Sample i as stored (numpy, no occluders, no augmentation); see read_sample."""
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples in {self.root}")
        k = int(np.searchsorted(self.starts, i, side="right") - 1)
        return read_sample(self.shards[k], i - int(self.starts[k]), self.size, self.index["uv_scale"])

    def _rng(self, i: int) -> np.random.Generator:
        keys = [self.seed, 7, int(i)] + ([self.epoch] if self.augment is not None else [])
        return np.random.default_rng(keys)

    def __getitem__(self, i: int) -> dict:
        s = self.raw(int(i))
        rng = self._rng(i)
        size = self.size
        occ_rng = np.random.default_rng(rng.integers(2 ** 63))   # occluders independent of augmentation draws
        if self.occlusion:
            rgb, alpha = occluders(occ_rng, size, self.occ_params)
            s["image"] = composite(s["image"], rgb, alpha)
        else:
            alpha = np.zeros((size, size), np.float32)
            s["image"] = s["image"].astype(np.float32) / 255.0
        s["alpha"] = alpha
        flipped = False
        gain = np.ones(3, np.float32)
        a = self.augment
        if a is not None:
            flipped = bool(rng.random() < a.flip)
            zoom = float(np.clip(1 + rng.normal() * a.scale, 1 - a.scale, 1 + a.scale))
            rot = float(np.clip(rng.normal() * a.rotation, -2 * a.rotation, 2 * a.rotation))
            rot = rot if rng.random() < a.rot_prob else 0.0
            gain = rng.uniform(1 - a.color, 1 + a.color, 3).astype(np.float32)
            if flipped:
                s = flip_sample(s, self.mirror, size)
            if zoom != 1.0 or rot != 0.0:
                s = similarity_sample(s, zoom, rot, size)
        return self._tensors(s, i, flipped, gain)

    def _tensors(self, s: dict, i: int, flipped: bool, gain: np.ndarray) -> dict:
        occ = occluder_mask(s["alpha"])
        body = s["mask"]
        vis = body & ~occ
        parts = s["part14" if self.joints == 14 else "part24"]
        jsel = s["joints3d" if self.joints == 14 else "joints3d_24"]
        parts_vis = np.where(vis, parts, -1)
        m_l = s["M_l"] * vis[..., None]
        m_j = np.where(vis[..., None], jsel[np.maximum(parts_vis, 0)], 0).astype(np.float32)
        m_d = m_l - m_j
        iuv = np.concatenate([vis[..., None].astype(np.float32), s["uv"] * vis[..., None]], -1)
        image = np.clip(s["image"] * gain, 0, 1).astype(np.float32)

        def chw(x):
            return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 0), dtype=np.float32))

        return {
            "image": chw(image), "mask": chw(vis[..., None]), "body_mask": chw(body[..., None]),
            "occluder": chw(occ[..., None]), "iuv": chw(iuv), "M_l": chw(m_l), "M_j": chw(m_j), "M_d": chw(m_d),
            "parts": torch.from_numpy(np.ascontiguousarray(parts_vis, dtype=np.int64)),
            **{k: torch.from_numpy(np.ascontiguousarray(s[k], dtype=np.float32)) for k in
               ("joints3d", "joints3d_24", "joints2d", "joints2d_24", "cam_wp", "K", "R", "t", "root", "pose", "shape")},
            "visible": torch.from_numpy(joint_visibility(s["part14"], occ | ~body, 14)),
            "visible_24": torch.from_numpy(joint_visibility(s["part24"], occ | ~body, 24)),
            "index": torch.tensor(int(i)), "flipped": torch.tensor(flipped),
        }


def rebuild_vertices(body, pose: torch.Tensor, shape: torch.Tensor, R: torch.Tensor, t: torch.Tensor,
                     root: torch.Tensor) -> torch.Tensor:
    """Camera-frame, root-relative vertices (B, V, 3) metres of a batch of samples
    (pose (B, J, 3), shape (B, S), R (B, 3, 3), t (B, 3), root (B, 3) as __getitem__ returns)."""
    v = body(pose, shape).vertices
    return v @ R.transpose(1, 2).to(v.dtype) + (t - root).to(v.dtype)[:, None]
