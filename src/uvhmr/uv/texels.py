"""Texel lookups and every conversion between meshes, UV maps and images.

Pixel-centre convention (the one place it is written): a UV map of resolution R is corner-aligned,
as DecoMR's and `grid_sample(align_corners=True)`:

    texel (row r, column c)  <->  u = c / (R - 1),  v = 1 - r / (R - 1)      (v up, row 0 on top)

so the mirror u -> 1 - u is column c -> R - 1 - c, a plain horizontal flip.
UV maps are channels-first tensors (B, C, R, R).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def uv_to_pixel(uv: np.ndarray | torch.Tensor, res: int):
    """(..., 2) u, v -> (..., 2) column, row (float) at resolution res."""
    if isinstance(uv, torch.Tensor):
        return torch.stack([uv[..., 0] * (res - 1), (1 - uv[..., 1]) * (res - 1)], -1)
    return np.stack([uv[..., 0] * (res - 1), (1 - uv[..., 1]) * (res - 1)], -1)


def uv_to_grid(uv: torch.Tensor) -> torch.Tensor:
    """(..., 2) u, v -> grid_sample coordinates (x, y) in [-1, 1] (align_corners=True)."""
    return torch.stack([2 * uv[..., 0] - 1, 1 - 2 * uv[..., 1]], -1)


@dataclass
class TexelLookup:
    """Per texel of an R x R map: the face it lies in and its barycentric weights.

    face (R, R) int64, -1 where no face; bary (R, R, 3) float32; mask (R, R) bool: the texel centre
    lies inside a face (covered); valid (R, R) bool: covered, or a padding texel next to an island
    whose face/bary extrapolate the nearest face's plane (so bilinear sampling at a vertex
    UV near an island border never reads an empty texel).
    """
    res: int
    face: np.ndarray
    bary: np.ndarray
    mask: np.ndarray
    valid: np.ndarray

    def save_arrays(self, prefix: str) -> dict:
        return {f"{prefix}_face": self.face, f"{prefix}_bary": self.bary, f"{prefix}_mask": self.mask,
                f"{prefix}_valid": self.valid}

    @classmethod
    def from_arrays(cls, z, prefix: str, res: int) -> "TexelLookup":
        return cls(res, z[f"{prefix}_face"], z[f"{prefix}_bary"], z[f"{prefix}_mask"], z[f"{prefix}_valid"])


def _barycentric(p, a, b, c):
    """p (N, 2), a/b/c (N, 2) -> (N, 3) barycentric weights (unclamped)."""
    v0, v1, v2 = b - a, c - a, p - a
    d00 = (v0 * v0).sum(1)
    d01 = (v0 * v1).sum(1)
    d11 = (v1 * v1).sum(1)
    d20 = (v2 * v0).sum(1)
    d21 = (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) < 1e-18, 1e-18, den)
    w1 = (d11 * d20 - d01 * d21) / den
    w2 = (d00 * d21 - d01 * d20) / den
    return np.stack([1 - w1 - w2, w1, w2], 1)


def _candidates(px: np.ndarray, res: int, pad: float):
    """(F, 3, 2) pixel-space triangles -> (face ids, rows, cols) of texel centres in each face's
    bounding box grown by `pad` texels."""
    lo = np.clip(np.ceil(px.min(1) - pad), 0, res - 1).astype(np.int64)
    hi = np.clip(np.floor(px.max(1) + pad), 0, res - 1).astype(np.int64)
    nx, ny = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    ok = (nx > 0) & (ny > 0)
    n = np.where(ok, nx * ny, 0)
    face = np.repeat(np.arange(len(px)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    col = lo[face, 0] + k % nx[face]
    row = lo[face, 1] + k // nx[face]
    return face, row, col


def build_lookup(face_uv: np.ndarray, res: int, pad: float = 1.5) -> TexelLookup:
    """Rasterize the layout at R x R: (F, 3, 2) corner UVs -> TexelLookup."""
    px = uv_to_pixel(face_uv.astype(np.float64), res)
    face, row, col = _candidates(px, res, pad)
    p = np.stack([col, row], 1).astype(np.float64)
    w = _barycentric(p, px[face, 0], px[face, 1], px[face, 2])
    inside = (w >= -1e-9).all(1)
    # Distance from the texel centre to the closest point given by clamped barycentrics.
    wc = np.clip(w, 0, None)
    wc /= wc.sum(1, keepdims=True)
    q = (wc[:, :, None] * px[face]).sum(1)
    dist = np.where(inside, 0.0, np.linalg.norm(q - p, axis=1))
    keep = dist <= pad
    face, row, col, wc, dist = face[keep], row[keep], col[keep], wc[keep], dist[keep]
    w_keep = w[keep]
    # Per texel keep the closest face (inside faces have distance 0; ties: lowest face id).
    order = np.lexsort((face, dist, row * res + col))
    idx = row[order] * res + col[order]
    first = np.ones(len(idx), bool)
    first[1:] = idx[1:] != idx[:-1]
    sel = order[first]
    out_face = -np.ones(res * res, np.int64)
    out_bary = np.zeros((res * res, 3), np.float32)
    cov = np.zeros(res * res, bool)
    t = row[sel] * res + col[sel]
    out_face[t] = face[sel]
    # Covered texels: the face's own weights; padding texels: the nearest face's plane extended
    # (linear extrapolation keeps bilinear samples near an island border on the surface).
    out_bary[t] = w_keep[sel]
    cov[t] = dist[sel] == 0
    return TexelLookup(res, out_face.reshape(res, res), out_bary.reshape(res, res, 3),
                       cov.reshape(res, res), (out_face >= 0).reshape(res, res))


class UVSampler(torch.nn.Module):
    """Mesh <-> UV map conversions for one layout and resolution (tensors as buffers).

    faces (F, 3), face_uv (F, 3, 2): the layout; lookup: its TexelLookup at this resolution.
    """

    def __init__(self, faces, face_uv, lookup: TexelLookup):
        super().__init__()
        faces = torch.as_tensor(np.asarray(faces), dtype=torch.long)
        face_uv = torch.as_tensor(np.asarray(face_uv), dtype=torch.float32)
        self.res = lookup.res
        f = torch.as_tensor(lookup.face).clamp(min=0)
        self.register_buffer("texel_vertices", faces[f].reshape(-1, 3), persistent=False)   # (R*R, 3)
        self.register_buffer("texel_bary", torch.as_tensor(lookup.bary).reshape(-1, 3), persistent=False)
        self.register_buffer("valid", torch.as_tensor(lookup.valid), persistent=False)     # (R, R)
        self.register_buffer("mask", torch.as_tensor(lookup.mask), persistent=False)       # (R, R)
        # Unique (vertex, uv) corners: where each vertex is sampled back (seam copies averaged).
        key = torch.cat([faces.reshape(-1, 1).float(), face_uv.reshape(-1, 2)], 1)
        uniq, _ = torch.unique(key, dim=0, return_inverse=True)
        self.register_buffer("corner_vertex", uniq[:, 0].long(), persistent=False)
        self.register_buffer("corner_uv", uniq[:, 1:].contiguous(), persistent=False)
        self.num_vertices = int(faces.max()) + 1
        self.register_buffer("copies", torch.bincount(self.corner_vertex, minlength=self.num_vertices).float(),
                             persistent=False)

    def from_vertices(self, values: torch.Tensor) -> torch.Tensor:
        """(B, V, C) per-vertex values -> (B, C, R, R) barycentric UV map, zero outside `valid`."""
        b, _, c = values.shape
        g = values[:, self.texel_vertices]                                  # (B, R*R, 3, C)
        m = (g * self.texel_bary[None, :, :, None].to(values.dtype)).sum(2)  # (B, R*R, C)
        m = m * self.valid.reshape(1, -1, 1).to(values.dtype)
        return m.transpose(1, 2).reshape(b, c, self.res, self.res)

    def to_vertices(self, uv_map: torch.Tensor) -> torch.Tensor:
        """(B, C, R, R) -> (B, V, C): bilinear sample at each vertex's UV (align_corners=True),
        averaging a vertex's seam copies."""
        b = uv_map.shape[0]
        grid = uv_to_grid(self.corner_uv).to(uv_map.dtype)[None, None].expand(b, -1, -1, -1)
        s = F.grid_sample(uv_map, grid, mode="bilinear", align_corners=True)[:, :, 0]   # (B, C, N)
        out = uv_map.new_zeros(b, uv_map.shape[1], self.num_vertices)
        out.index_add_(2, self.corner_vertex, s)
        return (out / self.copies.to(uv_map.dtype)).transpose(1, 2)


def iuv_to_uv(features: torch.Tensor, iuv: torch.Tensor, res: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp image-space features into UV cells by the IUV image (scatter-mean), as DecoMR does.

    features (B, C, H, W); iuv (B, 3, H, W): mask (> 0.5 = body), u, v in [0, 1] ->
    (mean features (B, C, res, res), hit count (B, 1, res, res)). Cells no pixel maps to are 0.
    """
    b, c, h, w = features.shape
    mask = iuv[:, 0] > 0.5                                                     # (B, H, W)
    col = (iuv[:, 1] * (res - 1)).round().long().clamp(0, res - 1)
    row = ((1 - iuv[:, 2]) * (res - 1)).round().long().clamp(0, res - 1)
    cell = (row * res + col) + torch.arange(b, device=features.device)[:, None, None] * res * res
    cell = cell[mask]                                                           # (N,)
    vals = features.permute(0, 2, 3, 1)[mask]                                   # (N, C)
    total = features.new_zeros(b * res * res, c).index_add_(0, cell, vals)
    count = features.new_zeros(b * res * res).index_add_(0, cell, torch.ones_like(cell, dtype=features.dtype))
    mean = total / count.clamp(min=1)[:, None]
    return (mean.reshape(b, res, res, c).permute(0, 3, 1, 2),
            count.reshape(b, 1, res, res))


def flip_uv(uv_map: torch.Tensor) -> torch.Tensor:
    """The body's left-right mirror of a UV map: a horizontal flip (the layout is symmetric)."""
    return uv_map.flip(-1)
