"""3D pose and mesh errors, one value per sample so callers can average, bootstrap or split.

Units: inputs are metres, the `mpjpe`/`pa_mpjpe`/`mpve` outputs are millimetres.
`per_joint_error` stays in the input units. All error computations run in float64: the
per-sample values feed means over thousands of samples and Procrustes fits via an SVD.

Joint order is LSP-14 as used by SPIN and DecoMR (see `LSP14_NAMES`); the root is the mid-hip
point, the mean of `LSP14_HIPS`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from uvhmr.body.joints import LSP14_HIPS, LSP14_NAMES  # noqa: F401  (one definition of the order)

MM_PER_M = 1000.0

ALIGNMENTS = ("root", "procrustes", "none")


def _tensor(x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    return torch.as_tensor(x)


def _f64(x) -> torch.Tensor:
    return _tensor(x).to(torch.float64)


def _check_points(name: str, x: torch.Tensor) -> None:
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"{name} must be (B, N, 3), got {tuple(x.shape)}")


def _check_pair(pred: torch.Tensor, gt: torch.Tensor) -> None:
    _check_points("pred", pred)
    _check_points("gt", gt)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ in shape")


def _root(joints: torch.Tensor, hips: Sequence[int]) -> torch.Tensor:
    """(B, J, 3) -> (B, 1, 3) mid-hip point."""
    return joints[:, list(hips)].mean(dim=1, keepdim=True)


def root_align(joints, hips: Sequence[int] = LSP14_HIPS) -> torch.Tensor:
    """Make joints root-relative.

    joints: (B, J, 3), any unit -> (B, J, 3) same unit, mid-hip at the origin.
    """
    joints = _tensor(joints)
    _check_points("joints", joints)
    return joints - _root(joints, hips)


def root_align_by(points, joints, hips: Sequence[int] = LSP14_HIPS) -> torch.Tensor:
    """Express points (e.g. mesh vertices) relative to the mid-hip of their own skeleton.

    points: (B, V, 3), joints: (B, J, 3) in the same unit and frame -> (B, V, 3).
    """
    points, joints = _tensor(points), _tensor(joints)
    _check_points("points", points)
    _check_points("joints", joints)
    if points.shape[0] != joints.shape[0]:
        raise ValueError(f"batch sizes differ: points {points.shape[0]}, joints {joints.shape[0]}")
    return points - _root(joints, hips).to(points.dtype)


def _procrustes64(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Similarity-align float64 (B, N, 3) pred onto gt; returns float64 (B, N, 3)."""
    mu_p = pred.mean(dim=1, keepdim=True)
    mu_g = gt.mean(dim=1, keepdim=True)
    x = pred - mu_p
    y = gt - mu_g
    # Row-vector form: find orthogonal M and scale s minimising |y - s x M|.
    # The maximiser of tr(M^T x^T y) is U D Vh with K = x^T y = U S Vh.
    k = x.transpose(1, 2) @ y
    u, s, vh = torch.linalg.svd(k)
    # Without this sign flip the optimum may be a reflection, which would let a left/right
    # mirrored prediction score as perfect.
    d = torch.sign(torch.linalg.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    diag = torch.ones_like(s)
    diag[:, -1] = d
    m = (u * diag[:, None, :]) @ vh
    var_x = (x**2).sum(dim=(1, 2))
    # A prediction collapsed to one point has no scale to fit; 0 is the least-squares answer
    # and avoids 0/0.
    scale = (s * diag).sum(dim=1) / var_x.clamp_min(torch.finfo(torch.float64).tiny)
    return scale[:, None, None] * (x @ m) + mu_g


def procrustes_align(pred, gt) -> torch.Tensor:
    """Per-sample similarity Procrustes of pred onto gt.

    pred, gt: (B, N, 3) -> (B, N, 3) in pred's floating dtype: pred after the scale, proper
    rotation (det +1, never a reflection) and translation that best fit gt in least squares.
    Computed in float64.
    """
    pred_t, gt64 = _tensor(pred), _f64(gt)
    _check_pair(pred_t, gt64)
    out_dtype = pred_t.dtype if pred_t.is_floating_point() else torch.float64
    return _procrustes64(pred_t.to(torch.float64), gt64).to(out_dtype)


def per_joint_error(pred, gt, align: str = "root", hips: Sequence[int] = LSP14_HIPS) -> torch.Tensor:
    """Euclidean error per joint after alignment.

    pred, gt: (B, J, 3) -> (B, J) float64, in the input unit.
    align: "root" (each skeleton's own mid-hip to the origin), "procrustes" (similarity fit of
    pred onto gt over all J joints) or "none".
    """
    pred, gt = _f64(pred), _f64(gt)
    _check_pair(pred, gt)
    if align == "root":
        pred, gt = pred - _root(pred, hips), gt - _root(gt, hips)
    elif align == "procrustes":
        pred = _procrustes64(pred, gt)
    elif align != "none":
        raise ValueError(f"align must be one of {ALIGNMENTS}, got {align!r}")
    return torch.linalg.vector_norm(pred - gt, dim=-1)


def _mean_over_visible(err: torch.Tensor, visible) -> torch.Tensor:
    """err: (B, J); visible: (B, J) bool or None -> (B,), NaN where nothing is visible."""
    if visible is None:
        return err.mean(dim=1)
    vis = _tensor(visible).to(device=err.device)
    if vis.shape != err.shape:
        raise ValueError(f"visible must be (B, J) = {tuple(err.shape)}, got {tuple(vis.shape)}")
    vis = vis.bool()
    count = vis.sum(dim=1)
    total = torch.where(vis, err, torch.zeros_like(err)).sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, math.nan))


def mpjpe(pred, gt, visible=None, hips: Sequence[int] = LSP14_HIPS) -> torch.Tensor:
    """Mean per-joint position error after root alignment.

    pred, gt: (B, J, 3) metres; visible: optional (B, J) bool, average over visible joints only
    (NaN for a sample with none) -> (B,) float64 millimetres.
    """
    return _mean_over_visible(per_joint_error(pred, gt, "root", hips), visible) * MM_PER_M


def pa_mpjpe(pred, gt, visible=None) -> torch.Tensor:
    """Mean per-joint error after similarity Procrustes alignment.

    pred, gt: (B, J, 3) metres; visible: optional (B, J) bool -> (B,) float64 millimetres.
    The Procrustes fit always uses all J joints, only the average is restricted to visible
    ones (the paper's "non-occluded" protocol), so occlusion does not change the alignment.
    """
    return _mean_over_visible(per_joint_error(pred, gt, "procrustes"), visible) * MM_PER_M


def mpve(pred_verts, gt_verts, pred_joints, gt_joints, hips: Sequence[int] = LSP14_HIPS) -> torch.Tensor:
    """Mean per-vertex error, each mesh made relative to its own skeleton's mid-hip.

    pred_verts, gt_verts: (B, V, 3) metres with matching vertex order;
    pred_joints, gt_joints: (B, J, 3) metres, in the same frames as the vertices
    -> (B,) float64 millimetres.
    """
    pv = root_align_by(_f64(pred_verts), _f64(pred_joints), hips)
    gv = root_align_by(_f64(gt_verts), _f64(gt_joints), hips)
    _check_pair(pv, gv)
    return torch.linalg.vector_norm(pv - gv, dim=-1).mean(dim=1) * MM_PER_M


def depth_correlation(pred, gt, hips: Sequence[int] = LSP14_HIPS) -> float:
    """Pearson correlation of the depth (z) of (N, K, 3) root-aligned joints with the truth's,
    pooled over samples and joints: 0 when a prediction knows nothing of which joints are nearer
    the camera than the hips, however good its image-plane x, y are."""
    p, g = root_align(pred, hips), root_align(gt, hips)
    z, t = p[..., 2].flatten(), g[..., 2].flatten()
    z, t = z - z.mean(), t - t.mean()
    return float((z * t).sum() / (z.norm() * t.norm()).clamp(min=1e-12))


def summarize(per_sample) -> dict:
    """Mean and median over samples, ignoring NaN (e.g. samples with no visible joint).

    per_sample: (B,) tensor, array or sequence -> {"mean": float, "median": float, "n": int},
    where n counts the non-NaN samples; mean and median are NaN when n is 0.
    """
    if isinstance(per_sample, torch.Tensor):
        per_sample = per_sample.detach().cpu().numpy()
    values = np.asarray(per_sample, dtype=np.float64).reshape(-1)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"mean": math.nan, "median": math.nan, "n": 0}
    return {"mean": float(values.mean()), "median": float(np.median(values)), "n": int(values.size)}
