"""A UV layout symmetric about u = 0.5 by construction, built from the body model's own islands.

Every island of the body model's atlas (Anny: body "onesie", head, hands, feet, eye and mouth
cavities) keeps its shape; islands are only rotated, scaled and placed, so seams are exactly the
atlas's own. Islands that are their own mirror image (body, head, mouth) are turned so that their
mirror axis is vertical and centred on u = 0.5; of each left/right pair (hands, feet, eyes) the
left island is placed in the left half and the right island is its exact reflection u -> 1 - u.
Hence the body's left-right mirror is a horizontal flip of any UV image (`np.flip(axis=-1)`).

UVs are per face corner, v up (image row = (1 - v) (R - 1), see texels.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PACK_RES = 512   # occupancy grid for packing
# Vertex groups (by skinning part) that set an island's texel density.
GROUPS = ("body", "head", "hand", "foot", "cavity")


def face_islands(face_uv: np.ndarray, faces: np.ndarray, decimals: int = 6) -> np.ndarray:
    """(F, 3, 2) corner UVs, (F, 3) vertex ids -> (F,) island id (faces connected through a shared
    UV corner, i.e. a (vertex, uv) pair), islands numbered by decreasing size."""
    key = np.round(face_uv.reshape(-1, 2), decimals)
    corner_key = np.concatenate([faces.reshape(-1, 1).astype(np.float64), key], axis=1)
    _, corner_id = np.unique(corner_key, axis=0, return_inverse=True)
    corner_id = corner_id.reshape(-1, 3)
    parent = np.arange(corner_id.max() + 1)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b, c in corner_id:
        ra, rb, rc = find(a), find(b), find(c)
        parent[rb] = ra
        parent[find(rc)] = ra
    roots = np.array([find(c) for c in corner_id[:, 0]])
    _, labels, counts = np.unique(roots, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[labels]


def corner_mirror(faces: np.ndarray, face_mirror: np.ndarray, vertex_mirror: np.ndarray) -> np.ndarray:
    """(F, 3) -> (F, 3) index k' such that corner (face_mirror[f], k') is the mirror of (f, k)."""
    mf = faces[face_mirror]                                  # (F, 3) vertices of the mirrored face
    target = vertex_mirror[faces]                            # (F, 3) mirrored vertex of each corner
    match = mf[:, None, :] == target[:, :, None]             # (F, 3, 3)
    if not match.any(-1).all():
        raise ValueError("face_mirror and vertex_mirror disagree")
    return match.argmax(-1)


def _reflect(uv: np.ndarray) -> np.ndarray:
    return np.stack([1.0 - uv[..., 0], uv[..., 1]], -1)


def _area(uv: np.ndarray) -> np.ndarray:
    """(F, 3, 2) -> (F,) signed UV area."""
    a, b, c = uv[:, 0], uv[:, 1], uv[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


@dataclass
class Island:
    faces: np.ndarray        # face indices
    mirror: int              # island id of the mirror image (itself for a centre island)
    group: str               # "head" | "body" | "cavity": sets the texel density
    uv: np.ndarray           # (n, 3, 2) corner UVs, normalised: centre islands axis at u = 0


def _orient_centre(uv: np.ndarray, muv: np.ndarray) -> np.ndarray:
    """Rotate a self-mirror island so its mirror axis is the line u = 0. uv/muv: (n, 3, 2) corner
    UVs and the UVs of each corner's mirror corner."""
    d = (muv - uv).reshape(-1, 2)
    big = np.linalg.norm(d, axis=1) > 1e-6
    d = d[big]
    # The mirror is a reflection: the differences all lie along the axis normal (up to sign).
    _, _, vt = np.linalg.svd(d - 0.0, full_matrices=False)
    n = vt[0]
    angle = np.arctan2(n[1], n[0])
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    out = uv @ rot.T
    mout = muv @ rot.T
    axis_u = 0.5 * (out[..., 0] + mout[..., 0]).mean()
    out[..., 0] -= axis_u
    mout[..., 0] -= axis_u
    # Exact symmetry: average each corner with the reflection of its mirror corner.
    out = 0.5 * (out + np.stack([-mout[..., 0], mout[..., 1]], -1))
    if np.median(_area(out)) < 0:         # keep the atlas's winding
        out[..., 0] *= -1
    return out


def islands_of(face_uv, faces, face_mirror, vertex_mirror, vertex_group: np.ndarray) -> list[Island]:
    """Split the atlas into islands, find each one's mirror island, its group and a normalised UV."""
    isl = face_islands(face_uv, faces)
    cm = corner_mirror(faces, face_mirror, vertex_mirror)
    muv = face_uv[face_mirror[:, None], cm]                  # (F, 3, 2) UV of each mirror corner
    out = []
    total = np.abs(_area(face_uv)).sum()
    for i in range(isl.max() + 1):
        f = np.flatnonzero(isl == i)
        mirror = int(np.bincount(isl[face_mirror[f]]).argmax())
        uv = face_uv[f].astype(np.float64)
        groups = np.bincount(vertex_group[faces[f]].ravel(), minlength=len(GROUPS))
        area = np.abs(_area(uv)).sum() / total
        group = GROUPS[int(groups.argmax())]
        if group == "head" and area < 0.03 and i > 1:
            group = "cavity"
        if mirror == i:
            uv = _orient_centre(uv, muv[f].astype(np.float64))
        out.append(Island(f, mirror, group, uv))
    for i, it in enumerate(out):
        if out[it.mirror].mirror != i:
            raise ValueError(f"island {i}: its mirror island {it.mirror} does not mirror back")
    return out


def _raster(uv: np.ndarray, scale: float, margin_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy mask of an island at `scale` (UV units -> pack pixels), dilated by margin_px.
    -> (mask (h, w) bool, offset (2,) pack px of the mask's (0,0) in island coordinates)."""
    p = uv.reshape(-1, 2) * scale * PACK_RES
    lo = np.floor(p.min(0)) - margin_px - 1
    hi = np.ceil(p.max(0)) + margin_px + 1
    w, h = (hi - lo).astype(int) + 1
    m = np.zeros((h, w), np.uint8)
    tri = ((uv * scale * PACK_RES - lo) * 16).round().astype(np.int32)   # 4 bits subpixel
    cv2.fillPoly(m, list(tri), 1, lineType=cv2.LINE_8, shift=4)
    if margin_px:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1, 2 * margin_px + 1))
        m = cv2.dilate(m, k)
    return m.astype(bool), lo


def _fits(grid, mask, x, y):
    h, w = mask.shape
    if x < 0 or y < 0 or x + w > grid.shape[1] or y + h > grid.shape[0]:
        return False
    return not (grid[y:y + h, x:x + w] & mask).any()


def _stamp(grid, mask, x, y):
    h, w = mask.shape
    grid[y:y + h, x:x + w] |= mask


def _try_pack(islands: list[Island], scales: dict, s: float, margin_px: int, step: int):
    """Greedy symmetric packing at global scale s. -> {island: (x, y) px of the mask origin}."""
    grid = np.zeros((PACK_RES, PACK_RES), bool)
    placed = {}
    order = sorted(range(len(islands)), key=lambda i: -np.abs(_area(islands[i].uv)).sum() * scales[islands[i].group] ** 2)
    for i in order:
        it = islands[i]
        if i in placed or (it.mirror != i and it.mirror in placed):
            continue
        mask, lo = _raster(it.uv, s * scales[it.group], margin_px)
        h, w = mask.shape
        if it.mirror == i:
            # centre island: its axis (island u = 0) must land on u = 0.5; scan rows top-down.
            x = int(round(PACK_RES / 2 + lo[0]))
            for y in range(0, PACK_RES - h + 1, step):
                if _fits(grid, mask, x, y):
                    _stamp(grid, mask, x, y)
                    placed[i] = (x, y)
                    break
            else:
                return None
        else:
            mmask = mask[:, ::-1]
            done = False
            for y in range(0, PACK_RES - h + 1, step):
                for x in range(0, PACK_RES // 2 - w + 1, step):
                    mx = PACK_RES - x - w
                    if _fits(grid, mask, x, y) and _fits(grid, mmask, mx, y):
                        _stamp(grid, mask, x, y)
                        _stamp(grid, mmask, mx, y)
                        placed[i] = (x, y)
                        done = True
                        break
                if done:
                    break
            if not done:
                return None
    return placed


def pack(islands: list[Island], scales: dict, margin_px: int, log=print) -> tuple[np.ndarray, float]:
    """Largest global scale at which every island fits. -> (placements, scale)."""
    lo, hi = 0.1, 4.0
    best = None
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        res = _try_pack(islands, scales, mid, margin_px, step=4)
        if res is None:
            hi = mid
        else:
            lo, best = mid, (res, mid)
    if best is None:
        raise RuntimeError("the islands do not fit into the UV square at any scale")
    log(f"packed {len(islands)} islands at scale {best[1]:.3f}")
    return best


def symmetric_layout(face_uv, faces, face_mirror, vertex_mirror, vertex_group, scales: dict,
                     margin_texels_128=2.0, log=print) -> tuple[np.ndarray, list[Island], np.ndarray]:
    """-> (new face_uv (F, 3, 2) in [0, 1], islands, island id per face)."""
    islands = islands_of(face_uv, faces, face_mirror, vertex_mirror, vertex_group)
    margin_px = int(np.ceil(margin_texels_128 * PACK_RES / 128))
    placed, s = pack(islands, scales, margin_px, log)
    new = np.zeros_like(face_uv, dtype=np.float64)
    island_of = np.empty(len(faces), np.int64)
    for i, it in enumerate(islands):
        island_of[it.faces] = i
    for i, (x, y) in placed.items():
        it = islands[i]
        k = s * scales[it.group]
        _, lo = _raster(it.uv, k, margin_px)
        # pack px -> UV: column x / PACK_RES = u; row y counts from the top, v up.
        px = it.uv * k * PACK_RES - lo + np.array([x, y])
        uv = np.stack([px[..., 0] / PACK_RES, 1.0 - px[..., 1] / PACK_RES], -1)
        new[it.faces] = uv
        if it.mirror != i:
            m = islands[it.mirror]
            cm = corner_mirror(faces, face_mirror, vertex_mirror)
            src = np.empty(len(faces), np.int64)
            src[it.faces] = np.arange(len(it.faces))
            # each corner of the mirror island is the reflection of its mirror corner here
            mf = face_mirror[m.faces]
            new[m.faces] = _reflect(uv[src[mf][:, None], cm[m.faces]])
    # Centre islands were packed with their axis at the grid centre; make that exact.
    for i, it in enumerate(islands):
        if it.mirror == i:
            cm = corner_mirror(faces, face_mirror, vertex_mirror)
            f = it.faces
            mirror_uv = new[face_mirror[f][:, None], cm[f]]
            new[f] = 0.5 * (new[f] + _reflect(mirror_uv))
    return new.astype(np.float32), islands, island_of


def seam_vertices(face_uv: np.ndarray, faces: np.ndarray, decimals: int = 6) -> np.ndarray:
    """(V,) bool: vertices with more than one distinct UV."""
    key = np.concatenate([faces.reshape(-1, 1).astype(np.float64), np.round(face_uv.reshape(-1, 2), decimals)], 1)
    uniq = np.unique(key, axis=0)
    counts = np.bincount(uniq[:, 0].astype(np.int64), minlength=faces.max() + 1)
    return counts > 1


def area_shares(face_uv: np.ndarray, labels: np.ndarray, names) -> dict:
    """Share of the covered UV area per face label, and the UV square's coverage."""
    a = np.abs(_area(face_uv))
    out = {str(n): float(a[labels == k].sum() / a.sum()) for k, n in enumerate(names)}
    out["coverage_of_square"] = float(a.sum())
    return out
