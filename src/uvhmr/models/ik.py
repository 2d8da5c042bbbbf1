"""The IK module (paper §3.2, Fig. 6): JointRefineNet and GIK-Net, Martinez-style MLPs, as one
`IKNet`; its model file (`load_ik`); posing the body model with its output (`pose_mesh`,
`fast_pose_joints`) and the optional "GIK-Net + refinement" fit (`refine_after_gik`).

JointRefineNet: J_initial (B, 14, 3) root-relative metres with missing joints zeroed, plus the
observed mask (B, 14) -> J_refine (B, 14, 3). GIK-Net: J_refine -> root rotation (6D), per-bone
pose (axis-angle, the body model's rig) and shape; the body model then poses the template.
"""
from __future__ import annotations

import roma
import torch
import torch.nn as nn

from uvhmr.body.fast_joints import fast_joint_set
from uvhmr.modelfile import load_model_file
from uvhmr.uv.gt import root_of


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


class GIKNet(nn.Module):
    """(B, K, 3) J_refine (camera frame, root-relative) -> dict:
      root (B, 3, 3) global rotation, rotmats (B, J, 3, 3) per rig bone with rotmats[:, 0] = root,
      shape (B, S) (mean_shape plus the predicted offset)."""

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
        shape = self.mean_shape[None] + y[:, 6 * self.num_bones:]
        # No axis-angle here: every consumer poses with the matrices, and the conversion cost
        # train_ik about 2 % of a step (cache/ik.py converts where a file stores it).
        return {"root": rot[:, 0], "rotmats": rot, "shape": shape}


class IKNet(nn.Module):
    """J_initial (B, 14, 3) + observed (B, 14) -> J_refine, and GIK-Net's pose and shape."""

    def __init__(self, num_bones: int, mean_shape: torch.Tensor, refine_dropout: float = 0.1, gik_dropout: float = 0.0):
        super().__init__()
        # Dropout 0.1 / 0 rather than the networks' 0.25 / 0.1: in a 600-step CPU budget on 50k
        # mocap poses nothing overfits, and dropout only slowed both (default profile, held-out
        # mocap: J_refine 77 -> 70 mm, GIK-Net from ground truth 54 -> 50 mm).
        self.refine = JointRefineNet(14, dropout=refine_dropout)
        self.gik = GIKNet(num_bones, len(mean_shape), mean_shape, dropout=gik_dropout)

    def forward(self, j_initial, observed):
        j_refine = self.refine(j_initial, observed)
        # GIK-Net's losses stop at its input: trained end to end they pulled J_refine towards
        # whatever eased GIK-Net (default profile, mocap-only batches, ground-truth joints with 30 %
        # zeroed: J_refine 185 mm after 1,500 steps end to end, 88 mm after 750 steps detached),
        # so JointRefineNet learns from l_refine only (eq. 3's L_ii).
        return {"j_refine": j_refine, **self.gik(j_refine.detach())}


def pose_mesh(body, rotmats: torch.Tensor, shape: torch.Tensor):
    """(B, J, 3, 3) with the root in the camera frame, (B, S) -> (vertices, LSP joints), both
    camera frame, mid-hip-relative."""
    out = body(roma.rotmat_to_rotvec(rotmats), shape)
    root = root_of(out.lsp14)
    return out.vertices - root, out.lsp14 - root


def fast_pose_joints(body, rotmats: torch.Tensor, shape: torch.Tensor, vertex_idx: torch.Tensor | None = None,
                     rest_grad: bool = True):
    """pose_mesh without the mesh: (B, J, 3, 3) root in the camera frame, (B, S), vertex_idx (N,)
    or None -> (LSP joints (B, 14, 3), vertices `vertex_idx` (B, N, 3)), camera frame,
    mid-hip-relative, metres. Forward kinematics plus the head-top (and N) vertices' skinning
    (uvhmr.body.fast_joints): about 10x cheaper than pose_mesh with its backward, so every row of
    every training batch gets l_ji and l_vi. rest_grad: see uvhmr.body.fast_joints.anny_fk."""
    joints, verts = fast_joint_set(body, body.lsp14, rotmats, shape, vertex_idx, rest_grad)
    root = root_of(joints)
    return joints - root, verts - root


def load_ik(path, device="cpu"):
    """An IK model file (weights_only) -> (eval-mode IKNet, its config); ModelFileError naming a file
    of another kind or architecture."""
    return load_model_file(path, "IK", lambda cfg: IKNet(cfg["num_bones"], torch.zeros(cfg["shape_dim"])), device)


def refine_after_gik(body, rotmats: torch.Tensor, shape: torch.Tensor, joints: torch.Tensor,
                     observed: torch.Tensor, steps: int = 10, lr: float = 0.01, pose_weight: float = 1e-3):
    """The named option "GIK-Net + refinement" (not the paper's IK, which is the network alone):
    a few Adam steps from GIK-Net's answer, fitting the posed LSP joints to `joints`.

    rotmats (B, J, 3, 3) root in the camera frame and shape (B, S), GIK-Net's; joints (B, 14, 3)
    camera frame, mid-hip-relative, metres; observed (B, 14) bool -> (rotmats, shape), detached.
    Optimises a rotation offset per bone (axis-angle, R = R_gik exp(delta)) and the shape; the
    loss is the masked L1 joint error plus `pose_weight` x the mean squared offset (keeps unseen
    limbs at GIK-Net's guess), like evaluate's iterative fit but through fast_pose_joints."""
    rot0, shape0 = rotmats.detach(), shape.detach()
    delta = torch.zeros(rot0.shape[:2] + (3,), dtype=rot0.dtype, device=rot0.device, requires_grad=True)
    s = shape0.clone().requires_grad_(True)
    opt = torch.optim.Adam([delta, s], lr=lr)
    w = observed.to(joints.dtype)[..., None]
    with torch.enable_grad():
        for _ in range(steps):
            j, _ = fast_pose_joints(body, rot0 @ roma.rotvec_to_rotmat(delta), s)
            loss = ((j - joints).abs() * w).sum() / w.sum().clamp(min=1) + pose_weight * delta.square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return (rot0 @ roma.rotvec_to_rotmat(delta)).detach(), s.detach()
