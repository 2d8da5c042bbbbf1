"""IK module networks (paper §3.2, Fig. 6): JointRefineNet and GIK-Net, Martinez-style MLPs.

JointRefineNet: J_initial (B, 14, 3) root-relative metres with missing joints zeroed, plus the
observed mask (B, 14) -> J_refine (B, 14, 3). GIK-Net: J_refine -> root rotation (6D), per-bone
pose (axis-angle, the body model's rig) and shape; the body model then poses the template.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class ResidualBlock(nn.Module):
    """Two linear layers with batch norm, ReLU and dropout, plus the identity."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout))

    def forward(self, x):
        return x + self.net(x)


class MLP(nn.Module):
    """in -> width, `blocks` residual blocks (2 layers each), width -> out: 2 + 2 * blocks linear layers."""

    def __init__(self, n_in: int, n_out: int, width: int, blocks: int = 2, dropout: float = 0.25):
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(n_in, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[ResidualBlock(width, dropout) for _ in range(blocks)])
        self.out = nn.Linear(width, n_out)

    def forward(self, x):
        return self.out(self.blocks(self.inp(x)))


class JointRefineNet(nn.Module):
    """(B, K, 3) J_initial (missing joints zero), (B, K) observed -> (B, K, 3) J_refine.

    Six linear layers; width 300 gives about 400k parameters (the paper's size)."""

    def __init__(self, joints: int = 14, width: int = 300, dropout: float = 0.25):
        super().__init__()
        self.joints = joints
        self.mlp = MLP(joints * 4, joints * 3, width, blocks=2, dropout=dropout)

    def forward(self, j_initial: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        b = j_initial.shape[0]
        x = torch.cat([j_initial.reshape(b, -1) * observed.repeat_interleave(3, 1).to(j_initial.dtype),
                       observed.to(j_initial.dtype)], 1)
        # Predict a correction to the observed joints (zero for missing ones, so it inpaints them).
        return j_initial * observed[..., None].to(j_initial.dtype) + self.mlp(x).reshape(b, self.joints, 3)


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) rotation via Gram-Schmidt on the two columns (Zhou et al. 2019)."""
    a, b = x[..., :3], x[..., 3:]
    c1 = nn.functional.normalize(a, dim=-1)
    c2 = nn.functional.normalize(b - (c1 * b).sum(-1, keepdim=True) * c1, dim=-1)
    return torch.stack([c1, c2, torch.cross(c1, c2, dim=-1)], -1)


def matrix_to_axis_angle(r: torch.Tensor) -> torch.Tensor:
    import roma
    return roma.rotmat_to_rotvec(r)


class GIKNet(nn.Module):
    """(B, K, 3) J_refine (camera frame, root-relative) -> dict:
      root (B, 3, 3) global rotation, pose (B, J, 3) axis-angle with pose[:, 0] = the root's,
      shape (B, S) (an offset from `mean_shape`)."""

    def __init__(self, num_bones: int, shape_dim: int, mean_shape: torch.Tensor, joints: int = 14,
                 width: int = 512, blocks: int = 2, dropout: float = 0.1):
        super().__init__()
        self.num_bones, self.shape_dim = num_bones, shape_dim
        self.register_buffer("mean_shape", mean_shape.clone().float())
        self.mlp = MLP(joints * 3, 6 + (num_bones - 1) * 6 + shape_dim, width, blocks, dropout)
        # Start at the identity rotations and the mean shape.
        nn.init.zeros_(self.mlp.out.weight)
        ident = torch.tensor([1.0, 0, 0, 0, 1, 0])
        with torch.no_grad():
            self.mlp.out.bias.zero_()
            self.mlp.out.bias[: 6 * num_bones] = ident.repeat(num_bones)

    def forward(self, j_refine: torch.Tensor) -> dict:
        b = j_refine.shape[0]
        y = self.mlp(j_refine.reshape(b, -1))
        rot = rot6d_to_matrix(y[:, : 6 * self.num_bones].reshape(b, self.num_bones, 6))   # (B, J, 3, 3)
        pose = matrix_to_axis_angle(rot)
        shape = self.mean_shape[None] + y[:, 6 * self.num_bones:]
        return {"root": rot[:, 0], "rotmats": rot, "pose": pose, "shape": shape}
