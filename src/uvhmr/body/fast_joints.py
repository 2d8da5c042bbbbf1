"""Joints without the mesh: forward kinematics of the skeleton plus the skinning of only the few
vertices a joint set needs (LSP-14's head top is a mesh vertex).

The full body-model forward skins all 13k vertices of Anny (about 0.7 s for 256 bodies on one
core, 3x that with its backward); a joint loss needs 36 bone heads and one vertex, so train_ik
and the IK refinement use these plain functions instead. They give the body model's own joints
(tests/body/test_fast_joints.py: within 0.1 mm for random poses and shapes).

Frame: the body model's, metres, no translation (the root bone's head stays where the shape puts
it). Poses are rotation matrices (B, J, 3, 3) per rig joint, joint 0 the global orientation, as
GIK-Net predicts them: no axis-angle round trip.
"""
from __future__ import annotations

import roma
import torch

from uvhmr.body.joints import JointSet


def _is_anny(body) -> bool:
    return getattr(body, "name", None) == "anny" and hasattr(body, "model")


def joint_set_vertices(joint_set: JointSet) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (vertex indices (N,) a joint set reads, weights (K, N) on them): its non-zero columns."""
    idx = torch.nonzero(joint_set.vertex_weights.abs().sum(0) > 0).flatten()
    return idx, joint_set.vertex_weights[:, idx]


def anny_shape_coefficients(model, shape: torch.Tensor) -> torch.Tensor:
    """(B, S) phenotypes -> (B, C) Anny's blendshape coefficients, as
    `model._get_phenotype_blendshape_coefficients` gives them, but about 5x cheaper with its backward.

    Anny forms each of its 624 phenotype blendshape weights as a product over a (26,)-wide masked
    row, `prod(phens * mask + (1 - mask))`; the masks hold 3 to 6 ones, so the product is taken
    over those entries only (gathered). `phens` itself is Anny's function with an identity mask."""
    from anny.models.phenotype import phenotype_blendshape_weights
    mask = model.stacked_phenotype_blend_shapes_mask
    if model.local_change_labels or model.facial_action_labels:
        empty = shape.new_zeros(len(shape), 0)
        return model._get_phenotype_blendshape_coefficients(shape, empty, empty)
    eye = torch.eye(mask.shape[1], dtype=mask.dtype, device=mask.device)
    phens = phenotype_blendshape_weights(shape, model.phenotype_labels, model.anchors, eye,
                                         extrapolate=model.extrapolate_phenotypes)            # (B, 26)
    width = int(mask.sum(1).max())
    # Each row's masked columns, padded with a column of ones (index 26).
    cols = torch.where(mask > 0, torch.arange(mask.shape[1], device=mask.device), mask.shape[1])
    cols = cols.sort(1).values[:, :width]                                                    # (624, width)
    padded = torch.cat([phens, phens.new_ones(len(phens), 1)], 1)
    # A chain of products, one gathered (B, 624) factor at a time: torch.prod's backward (cumprod,
    # flips) costs 20x more, and slicing one gathered (B, 624, width) tensor costs a zero-filled
    # copy of it per factor in the backward (about 6 ms each for 256 bodies).
    wi = padded.index_select(1, cols[:, 0])        # index_select: 5x cheaper than padded[:, idx] here
    for k in range(1, width):
        wi = wi * padded.index_select(1, cols[:, k])
    if model.phenotype_blendshape_projection is not None:
        wi = wi @ model.phenotype_blendshape_projection
    return wi


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b


def _apply(r: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3), (..., 3) -> (..., 3): r v."""
    return (r @ v[..., None]).squeeze(-1)


def polar_rotation(m: torch.Tensor, iters: int = 5) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3, 3): `roma.special_procrustes(m)`, the nearest rotation, mostly by
    scaled Newton iteration X <- (g X + X^-T / g) / 2 to the polar factor (equal to it where
    det m > 0).

    Anny's rest bone orientations are far from orthonormal (singular values 0.02-2.1 for adult
    shapes), yet five steps reach float precision (1e-7). They cost a few elementwise ops on the
    cofactors, about 3x less than roma's Horn eigenvector method without gradient, and their
    gradient is plain autograd. Matrices the iteration has not made a rotation (det m <= 0 or
    nearly singular: extreme shapes) are redone by roma, so the result is roma's everywhere."""
    x = m
    for k in range(iters):
        a, b, c = x[..., 0], x[..., 1], x[..., 2]
        cof = torch.stack([torch.linalg.cross(b, c), torch.linalg.cross(c, a), torch.linalg.cross(a, b)], -1)
        inv_t = cof / (a * cof[..., 0]).sum(-1)[..., None, None]          # X^-T = cofactors / det
        if k < iters - 2:       # the Frobenius scaling speeds the early steps; the last two are plain
            g = (inv_t.square().sum((-1, -2)) / x.square().sum((-1, -2))).sqrt().sqrt()[..., None, None]
            x = 0.5 * (g * x + inv_t / g)
        else:
            x = 0.5 * (x + inv_t)
    eye = torch.eye(3, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        bad = ((x.transpose(-1, -2) @ x - eye).abs().amax((-1, -2)) > 1e-5) | ~(torch.linalg.det(x) > 0)
    if bool(bad.any()):
        x = x.clone()
        x[bad] = roma.special_procrustes(m[bad])
    return x


def _chain(parents: list[int]):
    """The bones in depth order (root first) -> (order (J,) long, local: each bone's parent's
    position within the level before (list), levels: (first, last) slices of the order)."""
    children = [[] for _ in parents]
    for j in range(1, len(parents)):
        children[parents[j]].append(j)
    order, local, levels, first = [0], [0], [], 0
    while first < len(order):
        last = len(order)
        levels.append((first, last))
        for pos in range(first, last):
            for c in children[order[pos]]:
                order.append(c)
                local.append(pos - first)
        first = last
    return torch.tensor(order), local, levels


def anny_fk(model, rotmats: torch.Tensor, shape: torch.Tensor, vertex_idx: torch.Tensor | None = None,
            rest_grad: bool = True):
    """Anny (anny.Anny, `local-ref` pose, cached bone orientations, root at the origin) posed
    without its mesh.

    rotmats (B, J, 3, 3), shape (B, S) phenotypes, vertex_idx (N,) long or None ->
    (rig joints (B, J, 3), vertices (B, N, 3) of `vertex_idx` (N = 0 when None)), metres, Anny's
    frame. The same algebra as anny.utils.kinematics.forward_kinematic ('local-ref'), written
    on 3x3 rotations and 3-vectors with matmuls (its broadcast sums on 4x4s are 3x slower on a CPU).

    rest_grad False: the rest bone orientations (a function of the shape only) get no gradient.
    The values are unchanged; the shape's gradient keeps its main path, the bone heads, and the
    polar factor's backward (about a quarter of a training step's FK) is skipped."""
    if model.bone_orientation != "cached" or model.rest_orientation_refiner is not None \
            or model.pose_parameterization != "local-ref":
        raise NotImplementedError("anny_fk follows Anny's `local-ref` pose with `cached` bone orientations "
                                  f"and no rest refiner; this model has {model.pose_parameterization!r}, "
                                  f"{model.bone_orientation!r}")
    b, nj = rotmats.shape[:2]
    parents = [0] + [int(p) for p in model.bone_parents[1:]]
    coeffs = anny_shape_coefficients(model, shape)                                             # (B, C)
    # Rest pose P_c = [R_c | h_c] from the shape (RiggedModelWithLinearBlendShapes._get_cached_rest_model).
    h = model.template_bone_heads[None] + (coeffs @ model.bone_heads_blendshapes.flatten(1)).view(b, nj, 3)
    M = model.bone_template_orientation_matrices[None] + (coeffs @ model.bone_orientation_blendshapes.flatten(1)).view(b, nj, 3, 3)
    if rest_grad:
        R = polar_rotation(M)
    else:
        with torch.no_grad():
            R = polar_rotation(M)
    eye = torch.eye(3, dtype=R.dtype, device=R.device).expand(b, 1, 3, 3)
    if model.root_identity_orientation:
        R = torch.cat([eye, R[:, 1:]], 1)
    # Reference orientations U_c (shape-free); the parent's rest-to-reference turn A_p = U_p R_p^T
    # (A_0 = I) moves the head offsets: q_c - q_p = A_p (h_c - h_p).
    U = model.reference_bone_orientations if model.reference_bone_orientations is not None else R
    U = U.expand(b, nj, 3, 3) if U.ndim == 3 else U
    A = torch.cat([eye, _mm(U[:, 1:], R[:, 1:].transpose(-1, -2))], 1)
    q_off = _apply(A[:, parents], h - h[:, parents])                     # (B, J, 3)
    # 'local-ref': W_c = W_p K_c, K_c = [U_p^T D_c U_c | U_p^T (q_c - q_p)]; W_0 = [U_0^T D_0 U_0 | 0].
    Up_t = U[:, parents].transpose(-1, -2)
    K_rot = _mm(_mm(Up_t, rotmats), U)
    K_t = _apply(Up_t, q_off)
    # The chain on 4x4s, one matmul per depth level: bones in depth order make each level a slice.
    K = torch.zeros(b, nj, 4, 4, dtype=rotmats.dtype, device=rotmats.device)
    K[..., :3, :3] = K_rot
    K[..., :3, 3] = K_t
    K[..., 3, 3] = 1.0
    K[:, 0, :3, :3] = _mm(_mm(U[:, 0].transpose(-1, -2), rotmats[:, 0]), U[:, 0])
    K[:, 0, :3, 3] = 0.0
    order, local, levels = _chain(parents)
    K = K[:, order.to(K.device)]
    X = [K[:, :1]]
    for first, last in levels[1:]:
        X.append(X[-1][:, local[first:last]] @ K[:, first:last])
    W = torch.cat(X, 1)[:, torch.argsort(order).to(K.device)]                                # (B, J, 4, 4)
    rot, trans = W[..., :3, :3], W[..., :3, 3]
    joints = trans                                                                           # (B, J, 3)
    if vertex_idx is None or len(vertex_idx) == 0:
        return joints, joints.new_zeros(b, 0, 3)
    # Skinning transforms T_c = W_c P_c^-1 = [V_c R_c^T | w_c - V_c R_c^T h_c].
    T_rot = _mm(rot, R.transpose(-1, -2))
    T_t = joints - _apply(T_rot, h)
    # Linear blend skinning of the needed vertices only: v = (sum_k w_k T_k) [v_rest; 1], the
    # transforms blended first (B, N, 3, 4) rather than each applied (B, N, 9, 4, 4): 30x less memory.
    v_rest = model.template_vertices[vertex_idx][None] + (coeffs @ model.blendshapes[:, vertex_idx].flatten(1)).view(b, -1, 3)
    bones, w = model.vertex_bone_indices[vertex_idx], model.vertex_bone_weights[vertex_idx]   # (N, 9)
    dense = torch.zeros(len(vertex_idx), nj, dtype=T_rot.dtype, device=T_rot.device)
    dense.scatter_add_(1, bones, w.to(dense.dtype))                                          # (N, J)
    # One (N, J) @ (J, B * 9) product per part, not a batched one (4x cheaper on a CPU); rotation
    # and translation blended apart, so the backward never zero-fills a (B, N, 3, 4) slice.
    blend_rot = (dense @ T_rot.permute(1, 0, 2, 3).reshape(nj, -1)).view(-1, b, 3, 3).transpose(0, 1)  # (B, N, 3, 3)
    blend_t = (dense @ T_t.transpose(0, 1).reshape(nj, -1)).view(-1, b, 3).transpose(0, 1)             # (B, N, 3)
    return joints, _apply(blend_rot, v_rest) + blend_t


def fk_points(body, rotmats: torch.Tensor, shape: torch.Tensor, vertex_idx: torch.Tensor | None = None,
              rest_grad: bool = True):
    """Any body model: (B, J, 3, 3), (B, S), vertex_idx (N,) or None -> (rig joints (B, J, 3),
    vertices (B, N, 3)), metres, the body model's frame. Anny: forward kinematics plus the N
    vertices' skinning; other backends: their full forward (correct, not fast)."""
    if _is_anny(body):
        return anny_fk(body.model, rotmats, shape, vertex_idx, rest_grad)
    out = body(roma.rotmat_to_rotvec(rotmats), shape)
    verts = out.vertices[:, vertex_idx] if vertex_idx is not None else out.vertices[:, :0]
    return out.joints, verts


def fast_joint_set(body, joint_set: JointSet, rotmats: torch.Tensor, shape: torch.Tensor,
                   vertex_idx: torch.Tensor | None = None, rest_grad: bool = True):
    """The joints of `joint_set` (e.g. body.lsp14), and optionally extra vertices, by forward
    kinematics: (B, J, 3, 3), (B, S), vertex_idx (N,) or None -> (joints (B, K, 3), vertices
    (B, N, 3)), metres, the body model's frame (not root-relative)."""
    jidx, jw = joint_set_vertices(joint_set)
    jidx, jw = jidx.to(rotmats.device), jw.to(device=rotmats.device, dtype=rotmats.dtype)
    n_extra = 0 if vertex_idx is None else len(vertex_idx)
    idx = jidx if not n_extra else torch.cat([jidx, vertex_idx.to(jidx.device)])
    rig, verts = fk_points(body, rotmats, shape, idx, rest_grad)
    from_verts = torch.einsum("kn,bnc->bkc", jw, verts[:, : len(jidx)])
    bone = joint_set.bone.to(rotmats.device)
    joints = torch.where((bone < 0)[None, :, None], from_verts, rig[:, bone.clamp(min=0)])
    return joints, verts[:, len(jidx):]
