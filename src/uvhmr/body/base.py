"""The body-model interface every backend implements (Anny in anny.py, SMPL in smpl.py) and
the export format they share; `uvhmr.body.model.load_body_model` picks the backend.

Backends supply only the skinning (`_skin`) and the shape sampler; the mesh data, joint sets and
mirror maps are plain tensors exported once by the `body_model` rule into `assets.npz`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from uvhmr.body.joints import JointSet, mirror_axis_angle, regress


@dataclass
class BodyOutput:
    """All in the body model's frame, metres: vertices (B, V, 3), joints (B, J, 3) rig joints,
    lsp14 (B, 14, 3) in SPIN order, joints24 (B, 24, 3) in SMPL order."""
    vertices: torch.Tensor
    joints: torch.Tensor
    lsp14: torch.Tensor
    joints24: torch.Tensor


class BodyModel(torch.nn.Module):
    """Shared interface. Subclasses implement `_skin` and `sample_shape`.

    Attributes (tensors are buffers, so `.to(device)` moves them):
      faces (F, 3) long; face_uv (F, 3, 2) per-corner UVs, v up (image row = (1 - v) H);
      vertex_mirror (V,), face_mirror (F,): index of the left/right counterpart;
      joint_names, joint_parents (J,), joint_mirror (J,): the rig's joints;
      lsp14, joints24: JointSets; shape_labels; up_axis ('z' for Anny, 'y' for SMPL).
    """

    name: str = "base"
    up_axis: str = "z"

    def __init__(self, assets: dict):
        super().__init__()
        self.register_buffer("faces", torch.as_tensor(assets["faces"], dtype=torch.long), persistent=False)
        self.register_buffer("face_uv", torch.as_tensor(assets["face_uv"], dtype=torch.float32), persistent=False)
        self.register_buffer("vertex_mirror", torch.as_tensor(assets["vertex_mirror"], dtype=torch.long), persistent=False)
        self.register_buffer("face_mirror", torch.as_tensor(assets["face_mirror"], dtype=torch.long), persistent=False)
        self.register_buffer("joint_parents", torch.as_tensor(assets["joint_parents"], dtype=torch.long), persistent=False)
        self.register_buffer("joint_mirror", torch.as_tensor(assets["joint_mirror"], dtype=torch.long), persistent=False)
        self.joint_names = tuple(str(n) for n in assets["joint_names"])
        self.shape_labels = tuple(str(n) for n in assets["shape_labels"])
        self.vertex_part = torch.as_tensor(assets["vertex_part"], dtype=torch.long)
        self.lsp14 = _joint_set(assets, "lsp14")
        self.joints24 = _joint_set(assets, "joints24")

    # ------------------------------------------------------------------ to implement
    def _skin(self, pose: torch.Tensor, shape: torch.Tensor, transl: torch.Tensor):
        """-> vertices (B, V, 3), rig joints (B, J, 3)."""
        raise NotImplementedError

    def sample_shape(self, batch: int, seed: int) -> torch.Tensor:
        """(batch, S) shapes from the backend's prior (adult range by default), deterministic by seed."""
        raise NotImplementedError

    def mean_shape(self) -> torch.Tensor:
        """(S,) the backend's average shape."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_vertices(self) -> int:
        return self.lsp14.vertex_weights.shape[1]

    def reference_pose(self, batch: int = 1) -> torch.Tensor:
        """(batch, J, 3) zero axis-angle: Anny's A-like reference pose, SMPL's T-pose."""
        return torch.zeros(batch, self.num_joints, 3, device=self.faces.device)

    def forward(self, pose: torch.Tensor, shape: torch.Tensor, transl: torch.Tensor | None = None) -> BodyOutput:
        """pose (B, J, 3) axis-angle per rig joint (joint 0 = global orientation), shape (B, S),
        transl (B, 3) metres (None: zeros) -> BodyOutput."""
        if pose.ndim != 3 or pose.shape[1:] != (self.num_joints, 3):
            raise ValueError(f"{self.name}: pose must be (B, {self.num_joints}, 3) axis-angle, got {tuple(pose.shape)}")
        if shape.ndim != 2 or shape.shape != (pose.shape[0], len(self.shape_labels)):
            raise ValueError(f"{self.name}: shape must be (B, {len(self.shape_labels)}), got {tuple(shape.shape)}")
        if transl is None:
            transl = pose.new_zeros(pose.shape[0], 3)
        vertices, joints = self._skin(pose, shape, transl)
        return BodyOutput(vertices, joints, regress(self.lsp14.to(vertices.device), joints, vertices),
                          regress(self.joints24.to(vertices.device), joints, vertices))

    def mirror_pose(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, J, 3) -> the pose of the left-right mirrored body (see joints.mirror_axis_angle)."""
        return mirror_axis_angle(pose, self.joint_mirror)


def _joint_set(assets: dict, key: str) -> JointSet:
    return JointSet(tuple(str(n) for n in assets[f"{key}_names"]),
                    torch.as_tensor(assets[f"{key}_bone"], dtype=torch.long),
                    torch.as_tensor(assets[f"{key}_vertex_weights"], dtype=torch.float32))


def joint_set_arrays(key: str, js: JointSet) -> dict:
    return {f"{key}_names": np.array(js.names), f"{key}_bone": js.bone.numpy(),
            f"{key}_vertex_weights": js.vertex_weights.numpy()}


def face_mirror_from_vertices(faces: np.ndarray, vertex_mirror: np.ndarray) -> np.ndarray:
    """(F, 3), (V,) -> (F,) index of the mirrored face (the face over the mirrored vertices)."""
    key = {tuple(sorted(f)): i for i, f in enumerate(faces.tolist())}
    out = np.empty(len(faces), dtype=np.int64)
    for i, f in enumerate(vertex_mirror[faces].tolist()):
        j = key.get(tuple(sorted(f)))
        if j is None:
            raise ValueError(f"face {i} has no mirrored face: the mesh is not left-right symmetric")
        out[i] = j
    return out


ASSETS = "assets.npz"
# Bump when the export's content changes, so stale exports are rebuilt rather than misread.
EXPORT_VERSION = 1
