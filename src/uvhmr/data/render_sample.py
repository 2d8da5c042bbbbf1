"""One posed body seen by a camera -> the per-sample record of the dataset format
(`uvhmr.data.format`): the image (rendered, or a photo given) and its dense ground truth from the
same pixel-centre raster, so they line up pixel for pixel. Both sources (`uvhmr.data.sources`)
render their samples here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from uvhmr.data.render import covered, incidence, interpolate_corners, interpolate_vertices, over, project, \
    rasterize_view, render_rgba, to_uint8, vertex_normals, view_faces
from uvhmr.data.scene import TextureSpace, background, canonical_rotation, paint_texture, sample_light, \
    texture_space, weak_perspective, weak_perspective_project
from uvhmr.uv.assets import load_uv_assets


@dataclass
class Context:
    """What every sample needs, loaded once per process."""
    body: object
    faces: np.ndarray            # (F, 3) int64
    layout_uv: np.ndarray        # (F, 3, 2) float64 the project's symmetric layout
    layout_uv32: np.ndarray      # the same, float32 (shading)
    incidence: torch.Tensor      # (V, F) sparse, for vertex normals
    auv: dict                    # 14 / 24 -> (R, R) int64 A_uv labels, -1 off the body
    vertex_auv: dict             # 14 / 24 -> (V,) int64 per-vertex labels (fallback)
    joint_mirror: dict           # 14 / 24 -> (K,) int64
    R0: np.ndarray               # (3, 3) model -> camera rotation for an upright, facing body
    tex: TextureSpace | None
    size: int
    section: object


def load_context(body, uv_dir: Path, section, with_texture: bool = True) -> Context:
    faces = body.faces.numpy().astype(np.int64)
    uv = load_uv_assets(uv_dir, faces)
    res = max(uv.resolutions)
    layout = np.asarray(uv.face_uv, np.float64)
    tex = texture_space(body, uv.face_uv, section.texture_size) if with_texture else None
    return Context(body, faces, layout, layout.astype(np.float32), incidence(faces, body.num_vertices),
                   {k: uv.auv(k, res).numpy().astype(np.int64) for k in (14, 24)},
                   {k: np.asarray(uv.arrays[f"vertex_auv{k}"], np.int64) for k in (14, 24)},
                   {k: np.asarray(uv.joint_mirror(k), np.int64) for k in (14, 24)},
                   canonical_rotation(body.up_axis), tex, int(section.image_size), section)


def part_labels(ctx: Context, k: int, uv: np.ndarray, f: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A_uv label (K = 14 or 24) at each pixel: the label of the texel nearest to the pixel's UV;
    where that texel is off the layout (at an island border), the label of the face corner with
    the largest barycentric weight. -> (N,) int8."""
    lab = ctx.auv[k]
    r = lab.shape[0] - 1
    col = np.clip(np.rint(uv[:, 0] * r), 0, r).astype(np.int64)
    row = np.clip(np.rint((1.0 - uv[:, 1]) * r), 0, r).astype(np.int64)
    out = lab[row, col]
    miss = out < 0
    if miss.any():
        corner = ctx.faces[f[miss], np.argmax(b[miss], 1)]
        out[miss] = ctx.vertex_auv[k][corner]
    return out.astype(np.int8)


def ground_truth(ctx: Context, raster, verts_cam: np.ndarray, root: np.ndarray) -> dict:
    """Pixel-centre raster -> mask (S, S) bool and, per covered pixel in row-major order:
    uv (N, 2) float64, M_l (N, 3) float32 root-relative, part14 / part24 (N,) int8."""
    idx, f, b = covered(raster)
    uv = interpolate_corners(f, b, ctx.layout_uv)
    m_l = (interpolate_vertices(ctx.faces, f, b, np.asarray(verts_cam, np.float64)) - root[None]).astype(np.float32)
    return {"mask": raster.mask, "uv": uv, "M_l": m_l,
            "part14": part_labels(ctx, 14, uv, f, b), "part24": part_labels(ctx, 24, uv, f, b)}


def render_sample(ctx: Context, verts_model: np.ndarray, lsp14: np.ndarray, joints24: np.ndarray,
                  K: np.ndarray, R: np.ndarray, t: np.ndarray, rng: np.random.Generator | None,
                  image: np.ndarray | None = None, normals: np.ndarray | None = None,
                  fill: float | None = None) -> dict:
    """Render one posed body (model frame, metres) with camera (K, R, t).

    rng draws the appearance (texture, light, background); `image` (S, S, 3) uint8 replaces the
    render (licensed data: the photo); normals (V, 3) camera-frame vertex normals and fill (the
    body's box / image size, place_camera's) if at hand.
    -> the per-sample record (the module docstring's arrays, unquantised: uv float64), plus
    wp_error (mean weak-perspective reprojection error, px) and fill (body box / image size)."""
    s = ctx.size
    vc = np.asarray(verts_model, np.float64) @ R.T + t
    j14 = np.asarray(lsp14, np.float64) @ R.T + t
    j24 = np.asarray(joints24, np.float64) @ R.T + t
    root = 0.5 * (j14[2] + j14[3])
    screen = view_faces(vc, ctx.faces, K)
    centres = rasterize_view(vc, ctx.faces, K, s, s, screen=screen)
    rec = ground_truth(ctx, centres, vc, root)
    if image is None:
        texture = paint_texture(rng, ctx.tex)
        light = sample_light(rng)
        bg = background(rng, s)
        if normals is None:
            normals = vertex_normals(vc, ctx.faces, ctx.incidence)
        premult, alpha, _ = render_rgba(vc, ctx.faces, K, s, s, ctx.layout_uv32, texture, light,
                                        centres=centres, normals=normals, screen=screen)
        image = to_uint8(over(premult, alpha, bg))
    j2d = project(j14, K)
    rel = j14 - root
    cam = weak_perspective(rel, j2d, s)
    rec.update(image=image, joints3d=rel.astype(np.float32), joints3d_24=(j24 - root).astype(np.float32),
               joints2d=j2d.astype(np.float32), joints2d_24=project(j24, K).astype(np.float32),
               root=root.astype(np.float32), K=K.astype(np.float32), R=R.astype(np.float32),
               t=t.astype(np.float32), cam_wp=cam.astype(np.float32),
               wp_error=float(np.linalg.norm(weak_perspective_project(rel, cam, s) - j2d, axis=1).mean()),
               fill=float(np.ptp(project(vc, K), axis=0).max() / s) if fill is None else fill)
    return rec
