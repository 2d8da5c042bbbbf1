"""Scores of `uvhmr predict`'s outputs against a ground truth (issue #23: "on 100 synthetic test
images, mean PCK@0.1 is at least 0.7 and mean silhouette IoU at least 0.6"; scripts/predict_demo.py).

Pixels follow render.py's convention: continuous coordinates, pixel (row r, column c) covers
[c, c+1) x [r, r+1), its centre is (c + 0.5, r + 0.5); masks are (H, W) bool, row-major.

  pck              PCK@alpha of 2-D joints: the fraction of (visible) joints within alpha times
                   the longer side of the ground-truth joints' bounding box
  silhouette_iou   |A and B| / |A or B| of two masks
  mesh_mask        the pixels whose centre a projected mesh covers (any face, either winding)
  read_obj         the vertices and faces of the .obj predict writes
  projected_vertices   a predicted mesh in the input image's pixels, by predict's camera
  score_prediction one image: predict's <stem>.json and <stem>.obj against the ground truth
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from uvhmr.predict_cli import Crop, weak_to_image


def box_side(points: np.ndarray) -> float:
    """points (J, 2) pixels -> the longer side of their axis-aligned bounding box (pixels)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return float(np.max(p.max(0) - p.min(0)))


def pck(pred: np.ndarray, gt: np.ndarray, visible: Optional[np.ndarray] = None, alpha: float = 0.1) -> float:
    """PCK@alpha of one image.

    pred, gt: (J, 2) 2-D joints in the same image's pixels; visible: optional (J,) bool, the
    ground truth's visibility. The threshold is alpha x the longer side of the bounding box of
    *all J ground-truth 2-D joints* (the body's extent, visible or not; not the silhouette's box).
    A joint is correct when its Euclidean distance to the ground truth is <= the threshold; a
    non-finite prediction is never correct. -> the fraction of correct joints among the visible
    ones (all J when `visible` is None); NaN when no joint is visible.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape or gt.ndim != 2 or gt.shape[1] != 2:
        raise ValueError(f"pck: pred and gt must both be (J, 2), got {pred.shape} and {gt.shape}")
    vis = np.ones(len(gt), bool) if visible is None else np.asarray(visible, bool).reshape(-1)
    if vis.shape != (len(gt),):
        raise ValueError(f"pck: visible must be ({len(gt)},), got {np.shape(visible)}")
    if not vis.any():
        return float("nan")
    d = np.linalg.norm(pred - gt, axis=1)
    ok = np.isfinite(d) & (d <= alpha * box_side(gt))
    return float(ok[vis].mean())


def silhouette_iou(pred_mask: np.ndarray, gt_mask: np.ndarray) -> float:
    """pred_mask, gt_mask: (H, W) bool (or 0/1) -> |pred and gt| / |pred or gt|; NaN when both are empty."""
    a = np.asarray(pred_mask).astype(bool)
    b = np.asarray(gt_mask).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"silhouette_iou: masks of different shapes {a.shape} and {b.shape}")
    union = int(np.count_nonzero(a | b))
    return float("nan") if union == 0 else int(np.count_nonzero(a & b)) / union


def mesh_mask(xy: np.ndarray, faces: np.ndarray, height: int, width: int) -> np.ndarray:
    """xy (V, 2) projected vertices in pixels, faces (F, 3) vertex indices -> (height, width) bool:
    the pixels whose centre lies in (or on the edge of) at least one projected face, faces of
    either winding (no back-face culling: a predicted mesh need not be closed or outward). The
    dataset renderer's rasterizer at the pixel centres (`uvhmr.data.render.rasterize`), the one
    the ground-truth masks were made with. Empty if any vertex is not finite."""
    from uvhmr.data.render import rasterize       # heavy: torch
    xy = np.asarray(xy, np.float64)
    faces = np.asarray(faces, np.int64)
    if not np.isfinite(xy).all() or len(faces) == 0:
        return np.zeros((height, width), bool)
    # Grid point (col, row) is the pixel centre (col + 0.5, row + 0.5); depth plays no part in coverage.
    return rasterize(xy - 0.5, np.ones(len(xy)), faces, height, width, cull_back=False).mask


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A Wavefront OBJ (predict's: `v x y z`, `f v/vt v/vt v/vt`) -> (vertices (V, 3) float64,
    faces (F, 3) int64, 0-based). Texture coordinates and other lines are skipped."""
    verts, faces = [], []
    for line in Path(path).read_text().splitlines():
        if line.startswith("v "):
            verts.append(line[2:].split()[:3])
        elif line.startswith("f "):
            corners = [c.split("/")[0] for c in line[2:].split()]
            if len(corners) != 3:
                raise ValueError(f"{path}: a face with {len(corners)} corners; expected triangles")
            faces.append(corners)
    v = np.array(verts, np.float64).reshape(-1, 3)
    f = np.array(faces, np.int64).reshape(-1, 3) - 1
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"{path}: a face refers to a vertex outside 1..{len(v)}")
    return v, f


def projected_vertices(result: dict, obj_vertices: np.ndarray, camera: str = "weak") -> np.ndarray:
    """A predicted mesh in the input image's pixels. result: predict's <stem>.json (parsed);
    obj_vertices (V, 3): its <stem>.obj's vertices (camera frame: root-relative + camera.translation,
    or root-relative when the translation is null). -> (V, 2) pixels of the original image.

    camera 'weak': the network's weak-perspective camera uncropped (`predict_cli.weak_to_image`),
    the camera of predict's `joints2d` and of its overlay; 'perspective': the .obj's pinhole
    (focal_px, principal_point), whose focal length predict assumes."""
    v = np.asarray(obj_vertices, np.float64)
    cam = result["camera"]
    T = cam.get("translation")
    if camera == "weak":
        c = result["crop"]
        root_relative = v - (np.asarray(T, np.float64) if T is not None else 0.0)
        return weak_to_image(root_relative, np.asarray(cam["weak_perspective"], np.float64),
                             Crop(c["x"], c["y"], c["side"], c["size"]))
    if camera == "perspective":
        if T is None:
            return np.full((len(v), 2), np.nan)
        f, (cx, cy) = float(cam["focal_px"]), cam["principal_point"]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(v[:, 2] > 0, v[:, 2], np.nan)   # a vertex behind the camera has no image
            return np.stack([f * v[:, 0] / z + cx, f * v[:, 1] / z + cy], 1)
    raise ValueError(f"camera must be 'weak' or 'perspective', got {camera!r}")


def score_prediction(json_path: str | Path, obj_path: str | Path, gt_joints2d: np.ndarray,
                     gt_visible: Optional[np.ndarray], gt_mask: np.ndarray, alpha: float = 0.1) -> dict:
    """One image's scores. json_path, obj_path: predict's <stem>.json and <stem>.obj; gt_joints2d
    (14, 2) LSP-14 pixels of the same image; gt_visible (14,) bool or None; gt_mask (H, W) bool,
    every ground-truth body pixel (occluded or not: the mesh is the whole body).
    -> {"pck": PCK@alpha of the json's `joints2d`, "iou": silhouette IoU of the mesh by the weak
    camera (the one of `joints2d`), "iou_perspective": the same by the .obj's pinhole camera}."""
    result = json.loads(Path(json_path).read_text())
    verts, faces = read_obj(obj_path)
    h, w = np.asarray(gt_mask).shape
    out = {"pck": pck(np.asarray(result["joints2d"], np.float64), gt_joints2d, gt_visible, alpha)}
    for key, camera in (("iou", "weak"), ("iou_perspective", "perspective")):
        out[key] = silhouette_iou(mesh_mask(projected_vertices(result, verts, camera), faces, h, w), gt_mask)
    return out
