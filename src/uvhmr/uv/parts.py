"""A_uv: the UV-space joint assignment of the paper's appendix B.

Joints of the reference pose; each vertex goes to its nearest joint; the one-hot labels are
rasterized into UV (a probability per texel), made symmetric under the UV flip (a texel's left
joint is its mirror texel's right joint) and argmax-ed.
"""
from __future__ import annotations

import numpy as np
import torch

from uvhmr.uv.texels import UVSampler


def nearest_joint(vertices: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
    """(V, 3), (K, 3) reference-pose vertices and joints -> (V,) index of the nearest joint."""
    return torch.cdist(vertices, joints).argmin(1)


def part_probabilities(sampler: UVSampler, labels: torch.Tensor, k: int) -> torch.Tensor:
    """(V,) vertex labels -> (K, R, R) per-texel label probabilities (barycentric blend)."""
    onehot = torch.nn.functional.one_hot(labels, k).float()[None]      # (1, V, K)
    return sampler.from_vertices(onehot)[0]


def symmetric_argmax(prob: torch.Tensor, joint_mirror, valid: torch.Tensor) -> torch.Tensor:
    """(K, R, R) probabilities -> (R, R) labels with label[r, R-1-c] = mirror[label[r, c]];
    -1 outside `valid`. Symmetric because the probabilities are averaged with their mirror."""
    mirror = torch.as_tensor(np.asarray(joint_mirror), dtype=torch.long)
    sym = 0.5 * (prob + prob[mirror].flip(-1))
    lab = sym.argmax(0)
    # Exact ties (equal probabilities) would break symmetry: pick the left-half answer and mirror it.
    res = lab.shape[-1]
    half = lab[:, : res // 2]
    lab = torch.cat([half, mirror[half].flip(-1)], 1)
    return torch.where(valid, lab, torch.full_like(lab, -1))


def build_auv(sampler: UVSampler, ref_vertices: torch.Tensor, ref_joints: torch.Tensor, joint_mirror) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (labels (R, R) int64, -1 off the body; per-vertex labels (V,))."""
    vl = nearest_joint(ref_vertices, ref_joints)
    prob = part_probabilities(sampler, vl, len(ref_joints))
    return symmetric_argmax(prob, joint_mirror, sampler.valid), vl
