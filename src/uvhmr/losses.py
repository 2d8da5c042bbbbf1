"""Training losses of the three modules, as plain functions of prediction and target dicts.

DMP (paper eq. 1-2, DecoMR's weights where the paper is silent): BCE on the body mask, L1 on
UV inside the body, L1 on M_j, M_l, M_d inside the body, L1 on the weak-perspective camera.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the masked pixels. pred/target (B, C, H, W), mask (B, 1, H, W)."""
    m = mask.to(pred.dtype)
    return ((pred - target).abs() * m).sum() / (m.sum() * pred.shape[1]).clamp(min=1)


def _to(x: torch.Tensor, size) -> torch.Tensor:
    return x if x.shape[-2:] == tuple(size) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def dmp_losses(pred: dict, target: dict, weights) -> dict:
    """pred: DMPNet output; target: mask (B, 1, H, W) float {0, 1}, uv (B, 2, H, W) in [0, 1],
    mj / ml / md (B, 3, H, W) metres, camera (B, 3). Predictions are upsampled to the target
    resolution (as DecoMR does). weights: has w_mask, w_uv, w_maps, w_camera.
    -> dict of weighted terms and their sum under "total"."""
    size = target["mask"].shape[-2:]
    body = target["mask"] > 0.5
    terms = {
        "mask": weights.w_mask * F.binary_cross_entropy_with_logits(_to(pred["mask"], size), target["mask"]),
        "uv": weights.w_uv * masked_l1(_to(pred["uv"], size), target["uv"], body),
        "maps": weights.w_maps * sum(masked_l1(_to(pred[k], size), target[k], body) for k in ("mj", "ml", "md")),
        "camera": weights.w_camera * (pred["camera"] - target["camera"]).abs().mean(),
    }
    terms["total"] = sum(terms.values())
    return terms
