"""Training losses of the three modules, as plain functions of prediction and target dicts.

DMP (paper eq. 1-2, DecoMR's weights where the paper is silent): BCE on the body mask, L1 on
UV inside the body, cross-entropy of the A_uv part head on visible body pixels, L1 on M_j, M_l, M_d inside the body
(depth optionally weighted), L1 on the weak-perspective camera; and, with a yaw head, its
cross-entropy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from uvhmr.models.dmp import aggregate_joints, heatmap_points, joint_weights, joints_to_body_frame, to_body_frame, with_heatmap_xy
from uvhmr.uv.texels import uv_to_grid


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the masked pixels. pred/target (B, C, H, W), mask (B, 1, H, W)."""
    m = mask.to(pred.dtype)
    return ((pred - target).abs() * m).sum() / (m.sum() * pred.shape[1]).clamp(min=1)


def _to(x: torch.Tensor, size) -> torch.Tensor:
    return x if x.shape[-2:] == tuple(size) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def part_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) logits, (B, H, W) labels with -1 where no part is visible -> mean CE (0 if none)."""
    if not bool((labels >= 0).any()):
        return logits.sum() * 0
    return F.cross_entropy(logits, labels, ignore_index=-1)


def depth_weighted_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, w_depth: float) -> torch.Tensor:
    """masked_l1 of (B, 3, H, W) camera-frame maps with the z (depth) channel weighted w_depth:
    depth is what a front/back confusion costs, and what the image shows least."""
    if w_depth == 1.0:
        return masked_l1(pred, target, mask)
    w = pred.new_tensor([1.0, 1.0, w_depth]).reshape(1, 3, 1, 1) * 3 / (2 + w_depth)
    return masked_l1(pred * w, target * w, mask)


def aggregated_joint_l1(pred: dict, mj_true: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L1 (metres, per coordinate) of the joints J_initial aggregates, against the true joints of
    the parts the image shows. pred: DMPNet's mj (B, 3, H, W), parts (B, K, H, W) logits and, with
    attention aggregation, attn (B, K, H, W), at the target's size; mj_true (B, 3, H, W) true M_j;
    labels (B, H, W) true parts, -1 off the visible body. The per-pixel map
    losses let every pixel err on its own; J_initial is their part-weighted mean, so a bias shared by
    a part's pixels (a depth guessed from the mean pose, a left arm weighted as a right one) survives
    the averaging. This term scores the mean itself and reaches the part head through the weights.
    Pixels are the true body's, weighted by `joint_weights` as `j_initial` weighs them."""
    mj, k = pred["mj"], pred["parts"].shape[1]
    on = (labels >= 0)[:, None].to(mj.dtype)                                          # (B, 1, H, W)
    top = F.one_hot(labels.clamp(min=0), k).permute(0, 3, 1, 2).to(mj.dtype) * on     # (B, K, H, W)
    truth, seen = aggregate_joints(mj_true, on, top, top)
    joints = with_heatmap_xy(aggregate_joints(mj, on, joint_weights(pred, on), top)[0], pred)
    err = (joints - truth).abs().mean(-1)                                                # (B, K)
    w = seen.to(err.dtype)
    return (err * w).sum() / w.sum().clamp(min=1)


def dmp_losses(pred: dict, target: dict, weights) -> dict:
    """pred: DMPNet output; target: mask (B, 1, H, W) float {0, 1}, uv (B, 2, H, W) in [0, 1],
    parts (B, H, W) int64 A_uv labels (-1 off the visible body), mj / ml / md (B, 3, H, W) metres,
    camera (B, 3). Predictions are upsampled to the target
    resolution (as DecoMR does). weights: has w_mask, w_uv, w_parts, w_maps, w_camera.
    -> dict of weighted terms and their sum under "total"."""
    size = target["mask"].shape[-2:]
    body = target["mask"] > 0.5
    terms = {
        # Bodies cover ~10 % of a loose crop: weight body pixels so the mask does not collapse to
        # background (at 1:1 a 64 px DMP predicted 0.3 % body after 4 epochs).
        "mask": weights.w_mask * F.binary_cross_entropy_with_logits(
            _to(pred["mask"], size), target["mask"],
            pos_weight=torch.tensor(weights.mask_pos_weight, device=target["mask"].device)),
        "uv": weights.w_uv * masked_l1(_to(pred["uv"], size), target["uv"], body),
        "parts": weights.w_parts * part_cross_entropy(_to(pred["parts"], size), target["parts"]),
        "maps": weights.w_maps * sum(depth_weighted_l1(_to(pred[k], size), target[k], body, weights.w_depth)
                                     for k in ("mj", "ml", "md")),
        "camera": weights.w_camera * (pred["camera"] - target["camera"]).abs().mean(),
    }
    if "mj_lf" in pred:
        # Body-frame maps: the camera-frame truth turned by the true yaw (view-independent targets).
        terms["maps"] = terms["maps"] + weights.w_maps * sum(
            masked_l1(_to(pred[f"{k}_lf"], size), to_body_frame(target[k][:, 0::2], target["yaw"]), body)
            for k in ("mj", "ml", "md"))
    if weights.w_joints:
        at = {name: _to(pred[name], size) for name in ("mj", "parts", "attn") if name in pred}
        at.update({name: pred[name] for name in ("heat", "camera") if name in pred})
        terms["joints"] = weights.w_joints * aggregated_joint_l1(at, target["mj"], target["parts"])
    if "heat" in pred:
        # The heatmaps' soft-argmax against the 2-D joints (normalised image coordinates).
        terms["heat"] = weights.w_heat * (heatmap_points(pred["heat"]) - target["joints2d"]).abs().mean()
    if "gj_body" in pred:     # body-frame global joints: against the truth turned by the true yaw
        truth = joints_to_body_frame(target["joints"], target["yaw"])
        terms["global"] = weights.w_global * (pred["gj_body"].float() - truth).abs().mean()
    elif "gj" in pred:
        terms["global"] = weights.w_global * (pred["gj"].float() - target["joints"]).abs().mean()
    if "yaw_logits" in pred:
        # Label smoothing: neighbouring bins are nearly right, and the bins' edges are arbitrary.
        terms["yaw"] = weights.w_yaw * F.cross_entropy(pred["yaw_logits"], target["yaw_bin"], label_smoothing=0.1)
    terms["total"] = sum(terms.values())
    return terms


# ----------------------------------------------------------------------------------------- UVI

def weak_project(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) root-relative camera-frame points, (B, 3) weak perspective (s, tx, ty) ->
    (B, N, 2) normalised image coordinates 2 x / S - 1 = s (X_xy + t) (the dataset's convention)."""
    return camera[:, None, :1] * (points[..., :2] + camera[:, None, 1:])


def weighted_map_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L1 of (B, 3, R, R) maps weighted per texel by (R, R) part weights (0 off the body)."""
    w = weight.to(pred.dtype)[None, None]
    return ((pred - target).abs() * w).sum() / (w.sum() * pred.shape[0] * pred.shape[1]).clamp(min=1)


def dismag_loss(uv_d: torch.Tensor, on: torch.Tensor) -> torch.Tensor:
    """l_dismag (paper eq. 7): the magnitude of UV_d against its UV flip. The layout is symmetric,
    so the flip is a horizontal flip; only texels on the body in both count.
    uv_d (B, 3, R, R), on (R, R) bool."""
    mag = uv_d.norm(dim=1)                                   # (B, R, R)
    both = (on & on.flip(-1)).to(mag.dtype)
    return ((mag - mag.flip(-1)).abs() * both).sum() / (both.sum() * mag.shape[0]).clamp(min=1)


def consistency_loss(uv_l: torch.Tensor, camera: torch.Tensor, iuv: torch.Tensor) -> torch.Tensor:
    """DecoMR's consistency loss: at every body pixel, the predicted surface point at the pixel's
    (u, v), projected with the predicted camera, should land on the pixel itself.
    uv_l (B, 3, R, R) root-relative metres; camera (B, 3); iuv (B, 3, H, W): mask, u, v."""
    b, _, h, w = iuv.shape
    grid = uv_to_grid(iuv[:, 1:].permute(0, 2, 3, 1))                          # (B, H, W, 2)
    pts = F.grid_sample(uv_l, grid, mode="bilinear", align_corners=True)       # (B, 3, H, W)
    proj = weak_project(pts.flatten(2).transpose(1, 2), camera)                 # (B, H*W, 2)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=uv_l.dtype), torch.arange(w, dtype=uv_l.dtype), indexing="ij")
    pix = torch.stack([2 * (xs + 0.5) / w - 1, 2 * (ys + 0.5) / h - 1], -1).reshape(1, -1, 2)
    m = (iuv[:, 0] > 0.5).reshape(b, -1).to(uv_l.dtype)
    return (((proj - pix) ** 2).sum(-1) * m).sum() / m.sum().clamp(min=1)
