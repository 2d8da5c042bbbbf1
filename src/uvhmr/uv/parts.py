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


# DecoMR's per-part weights on location maps (reference/decomr.md §2.2): hands and feet 25,
# limbs 5, head and neck 2, torso 1.
PART_WEIGHTS = (("hand", 25.0, ("wrist", "hand", "finger")), ("foot", 25.0, ("foot", "toe", "ankle")),
                ("limb", 5.0, ("upperleg", "lowerleg", "upperarm", "lowerarm", "knee", "elbow", "hip", "shoulder")),
                ("head", 2.0, ("neck", "head")))


def vertex_weights(joint_names, vertex_part) -> torch.Tensor:
    """(V,) DecoMR-style weight of each vertex by its skinning part's name (torso: 1)."""
    w = torch.ones(len(vertex_part))
    vp = torch.as_tensor(vertex_part)
    for _, weight, words in reversed(PART_WEIGHTS):   # first match wins: apply in reverse order
        bones = [i for i, n in enumerate(joint_names) if any(k in n.lower() for k in words)]
        w[torch.isin(vp, torch.tensor(bones, dtype=vp.dtype))] = weight
    return w


def part_weight_map(sampler: UVSampler, joint_names, vertex_part) -> torch.Tensor:
    """(R, R) per-texel loss weights, mean 1 over the valid texels, 0 elsewhere."""
    m = sampler.from_vertices(vertex_weights(joint_names, vertex_part)[None, :, None])[0, 0]
    valid = sampler.valid
    return torch.where(valid, m / m[valid].mean(), torch.zeros_like(m))
