"""Joint sets shared by every body model: names, orders, mirror permutations, regression.

A joint set is a list of joints each defined either as one rig joint (a bone head) or as a
weighted mean of mesh vertices (the head top, and on Anny the hand and toe joints from vertex
rings). Both kinds are linear in the posed model, so one function regresses every set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# SPIN / DecoMR order; root = mid-hips (joints 2 and 3).
LSP14_NAMES = (
    "R_ankle", "R_knee", "R_hip", "L_hip", "L_knee", "L_ankle",
    "R_wrist", "R_elbow", "R_shoulder", "L_shoulder", "L_elbow", "L_wrist",
    "neck", "head_top",
)
LSP14_HIPS = (2, 3)

# SMPL's 24 joints, in SMPL's order.
SMPL24_NAMES = (
    "pelvis", "L_hip", "R_hip", "spine1", "L_knee", "R_knee", "spine2", "L_ankle", "R_ankle",
    "spine3", "L_foot", "R_foot", "neck", "L_collar", "R_collar", "head", "L_shoulder",
    "R_shoulder", "L_elbow", "R_elbow", "L_wrist", "R_wrist", "L_hand", "R_hand",
)
SMPL24_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# Which of the 24 joints are LSP-14 joints (for scoring a 24-joint prediction on LSP-14).
SMPL24_TO_LSP14 = (8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20, 12, -1)


def mirror_permutation(names) -> np.ndarray:
    """Index of each joint's left/right counterpart, from its name (`L_`/`R_`, `.L`/`.R`)."""
    index = {n: i for i, n in enumerate(names)}

    def swap(n: str) -> str:
        for a, b in (("L_", "R_"), ("R_", "L_")):
            if n.startswith(a):
                return b + n[len(a):]
        for a, b in ((".L", ".R"), (".R", ".L")):
            if n.endswith(a):
                return n[: -len(a)] + b
        return n

    return np.array([index[swap(n)] for n in names], dtype=np.int64)


@dataclass(frozen=True)
class JointSet:
    """A set of K joints over a model with J rig joints and V vertices.

    bone: (K,) rig joint index, or -1 where the joint is a vertex combination.
    vertex_weights: (K, V) weights summing to 1 on the rows where bone == -1, zero elsewhere.
    """
    names: tuple[str, ...]
    bone: torch.Tensor
    vertex_weights: torch.Tensor

    @property
    def mirror(self) -> np.ndarray:
        return mirror_permutation(self.names)

    def to(self, device=None, dtype=None) -> "JointSet":
        return JointSet(self.names, self.bone.to(device), self.vertex_weights.to(device=device, dtype=dtype))


def make_joint_set(names, bone, vertex_rows: dict[int, tuple[np.ndarray, np.ndarray]], num_vertices: int) -> JointSet:
    """Build a JointSet; `vertex_rows[k] = (vertex indices, weights)` for the vertex joints."""
    bone = np.asarray(bone, dtype=np.int64)
    w = np.zeros((len(names), num_vertices), dtype=np.float32)
    for k, (idx, wt) in vertex_rows.items():
        w[k, idx] = np.asarray(wt, dtype=np.float32) / np.sum(wt)
    if set(np.flatnonzero(bone < 0)) != set(vertex_rows):
        raise ValueError("every joint with bone == -1 needs vertex weights, and only those")
    return JointSet(tuple(names), torch.from_numpy(bone), torch.from_numpy(w))


def regress(joint_set: JointSet, rig_joints: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """(B, J, 3) rig joints, (B, V, 3) vertices -> (B, K, 3) joints of the set, same frame."""
    from_bones = rig_joints[:, joint_set.bone.clamp(min=0)]
    from_verts = torch.einsum("kv,bvc->bkc", joint_set.vertex_weights.to(vertices.dtype), vertices)
    return torch.where((joint_set.bone < 0)[None, :, None], from_verts, from_bones)


def mirror_axis_angle(pose: torch.Tensor, joint_mirror) -> torch.Tensor:
    """Pose of the body mirrored through the x = 0 plane (+X is the body's left on both models).

    (B, J, 3) axis-angle -> (B, J, 3): a reflection diag(-1, 1, 1) maps a rotation vector
    (x, y, z) to (x, -y, -z); left and right joints swap.
    """
    sign = pose.new_tensor([1.0, -1.0, -1.0])
    return pose[:, torch.as_tensor(joint_mirror, device=pose.device)] * sign


def mirror_points(points: torch.Tensor, index=None) -> torch.Tensor:
    """(B, N, 3) -> points reflected through x = 0, optionally re-indexed by a mirror map."""
    out = points if index is None else points[:, torch.as_tensor(index, device=points.device)]
    return out * out.new_tensor([-1.0, 1.0, 1.0])
