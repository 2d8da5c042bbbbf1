"""The iterative IK baseline (paper §4, Table 4's "iterative IK"): no network, pose and shape
are optimised through the body model (Adam) until its LSP-14 joints fit the given ones.

Shared by `evaluate` (the iterative_ik target, fitted to DMP's J_initial) and bench/ik_speed.py
(timed against GIK-Net on the same joints).
"""
from __future__ import annotations

import torch

from uvhmr.uv.gt import root_of


def fit_iterative_ik(body, joints: torch.Tensor, observed: torch.Tensor, iterations: int = 50,
                     lr: float = 0.05, pose_weight: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """joints (N, 14, 3) camera frame, mid-hip-relative, metres; observed (N, 14) bool (only
    observed joints count in the fit) -> (pose (N, J, 3) axis-angle, shape (N, S)), detached.

    Starts from the zero pose (root included) and the mean shape; the loss is the masked L1 joint
    error plus `pose_weight` x the mean squared axis-angle (keeps unobserved limbs near rest).
    All N samples are fitted in one batch; they are independent (Adam is per parameter)."""
    n = len(joints)
    pose = torch.zeros(n, body.num_joints, 3, device=joints.device, requires_grad=True)
    shape = body.mean_shape().to(joints.device)[None].repeat(n, 1).requires_grad_(True)
    opt = torch.optim.Adam([pose, shape], lr=lr)
    w = observed.to(joints.dtype)[..., None]
    for _ in range(iterations):
        out = body(pose, shape)
        j = out.lsp14 - root_of(out.lsp14)
        loss = ((j - joints).abs() * w).sum() / w.sum().clamp(min=1) + pose_weight * pose.square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return pose.detach(), shape.detach()
