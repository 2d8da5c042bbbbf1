"""Ground-truth UV maps of a posed body (the paper's Fig. 5): UV_l, UV_j, UV_d.

All root-relative (root = mid-hips of the LSP-14 joints), metres, in the frame of the inputs.
"""
from __future__ import annotations

import torch

from uvhmr.body.joints import LSP14_HIPS
from uvhmr.uv.texels import UVSampler


def root_of(joints: torch.Tensor) -> torch.Tensor:
    """(B, 14, 3) LSP-14 joints -> (B, 1, 3) mid-hip point."""
    return joints[:, list(LSP14_HIPS)].mean(1, keepdim=True)


def distribute_joints(joints: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """UV_j: each texel gets the location of its A_uv joint.
    joints (B, K, 3), labels (R, R) with -1 off the body -> (B, 3, R, R), zero off the body."""
    idx = labels.clamp(min=0).reshape(-1)
    m = joints[:, idx].permute(0, 2, 1).reshape(joints.shape[0], 3, *labels.shape)
    return m * (labels >= 0).to(m.dtype)


def gt_uv_maps(sampler: UVSampler, labels: torch.Tensor, vertices: torch.Tensor, joints: torch.Tensor,
               root: torch.Tensor):
    """vertices (B, V, 3), joints (B, K, 3) of the set `labels` was built for (A_uv-14 or -24),
    root (B, 1, 3) (the LSP-14 mid-hips, `root_of`) -> (UV_l, UV_j, UV_d), each (B, 3, R, R),
    root-relative metres; UV_d = UV_l - UV_j. UV_l is defined on the lookup's valid texels, UV_j
    and UV_d on labelled texels."""
    uv_l = sampler.from_vertices(vertices - root)
    uv_j = distribute_joints(joints - root, labels)
    on = (labels >= 0).to(uv_l.dtype)
    return uv_l, uv_j, (uv_l - uv_j) * on


def joints_from_uv(uv_j: torch.Tensor, observed: torch.Tensor, labels: torch.Tensor, k: int):
    """J_initial (paper §3.2): the mean of UV_j over each A_uv part, using observed texels only.

    uv_j (B, 3, R, R); observed (B, R, R) bool (texels some image pixel warped into); labels (R, R)
    A_uv with -1 off the body -> (joints (B, k, 3), observed (B, k) bool). A joint with no observed
    texel is 0 and flagged missing."""
    b = uv_j.shape[0]
    on = observed & (labels >= 0)[None]                                    # (B, R, R)
    onehot = torch.nn.functional.one_hot(labels.clamp(min=0).reshape(-1), k).to(uv_j.dtype)  # (R*R, k)
    w = on.reshape(b, -1).to(uv_j.dtype)[:, :, None] * onehot[None]       # (B, R*R, k)
    count = w.sum(1)                                                        # (B, k)
    total = torch.einsum("bcn,bnk->bkc", uv_j.reshape(b, 3, -1), w)        # (B, k, 3)
    return total / count.clamp(min=1)[..., None], count > 0
