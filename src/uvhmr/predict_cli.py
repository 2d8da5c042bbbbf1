"""`uvhmr predict`: the trained DMP -> IK -> UVI on your own images (issue #11).

Per image: find the person (a box you give, else OpenCV's HOG people detector, else the whole
image, with a warning), cut a square crop around them the way the training crops are made (the
person's box fills FILL = 75 % of the crop's side, centred; parts outside the image are padded
black), run `uvhmr.predict.predict` on a batch of crops, and write to the output folder:

  <stem>.obj   the mesh (vertices in metres, camera frame of the image: x right, y down, z forward),
               the UV layout as texture coordinates (`vt`), faces `f v/vt`
  <stem>.json  LSP-14 joints: 3-D metres (mid-hip-relative and in the camera frame), 2-D pixels in
               the original image; the box and how it was found; the crop; the cameras
  <stem>.png   the mesh drawn over the image (with the box and the 2-D joints), and a side view

Pixels are continuous coordinates: pixel (row r, column c) covers [c, c+1) x [r, r+1), its centre
is (c + 0.5, r + 0.5) (render.py's convention).

Geometry. A crop is the square [x, x + side) x [y, y + side) of the original image (integers,
possibly reaching outside it) resized to S x S, S the DMP's input size, so a crop pixel q is the
image pixel p = q side / S + (x, y). The network's weak-perspective camera (s, tx, ty) maps a
root-relative point X to crop coordinates 2 q / S - 1 = s (X_xy + t); uncropped:
p = (s (X_xy + t) + 1) side / 2 + (x, y): that is `joints2d`. For the .obj the weak camera is
turned into a perspective one: a pinhole at the image centre with focal length f = FOCAL_CROPS side
(the dataset's mean focal length, in crop sizes, so the crop sees the body as the training renders
did), the root at depth f / (s side / 2) and translated so that it projects where the weak camera
puts it. The overlay draws the weak-perspective prediction itself (a camera far away), so it shows
exactly what `joints2d` says.
"""
from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from uvhmr.config import ConfigError, DatasetParams, Pipeline
from uvhmr.errors import InputError
from uvhmr.io import sha256, write_bytes, write_json, write_text

log = logging.getLogger("uvhmr")

FILL = 0.75                       # the person's box, longer side / crop side (training: 0.6 - 0.95)
FOCAL_CROPS = math.sqrt(DatasetParams().focal_range[0] * DatasetParams().focal_range[1])   # ~3.16
MIN_DETECT_SIDE = 160             # smaller images are taken as crops of the person already: HOG's 64 x 128 window
                                  # leaves no room to find one in (the default profile's 128 px renders are such crops)
DETECT_SIDE = 640                 # images are resized to this longer side for detection
HOG_MIN_SCORE = 0.3               # SVM margin below which a HOG detection is ignored
HOG_PERSON = 0.75                 # HOG's 64 x 128 window holds a person ~96 px tall: the central 3/4 is the person
OVERLAY_MAX_SIDE = 1024           # overlays of larger images are drawn downscaled ...
OVERLAY_MIN_SIDE = 256            # ... and of smaller ones upscaled, so the mesh is visible
DEPTH = 50.0                      # metres: the far camera that draws a weak-perspective one (1 % for a body 1 m deep)
MESH_RGB = (1.0, 0.72, 0.45)      # UVI's mesh colour in the report's Fig. 8
MIN_SIDE = 32                     # smaller images hold too few pixels of a person (the networks see 48-224 px crops)
MAX_SIDE = 4096                   # larger images are downscaled to this longer side when read (bounded memory) ...
MAX_PIXELS = 150_000_000          # ... and images above this many pixels are refused (a PNG is decoded whole first)
BOX_INSIDE = 0.5                  # --bbox: at least this fraction of the box must lie inside the image
MANIFEST = ".uvhmr-predict.json"  # in --out: the files predict wrote there and their SHA-256, so it replaces only those
# The pipeline's variants (params.yaml `pipeline:`) are read from the run's resolved report
# parameters when there are any, else params.yaml's defaults.
REPORT_PARAMS = "params/report.json"


# ----------------------------------------------------------------------------- crop geometry

@dataclass(frozen=True)
class Crop:
    """The square [x, x + side) x [y, y + side) of an image (original pixels, integers; it may reach
    outside the image), resized to size x size pixels."""
    x: int
    y: int
    side: int
    size: int

    def to_crop(self, p: np.ndarray) -> np.ndarray:
        """(..., 2) image pixels -> crop pixels."""
        return (np.asarray(p, np.float64) - [self.x, self.y]) * (self.size / self.side)

    def to_image(self, q: np.ndarray) -> np.ndarray:
        """(..., 2) crop pixels -> image pixels."""
        return np.asarray(q, np.float64) * (self.side / self.size) + [self.x, self.y]


def crop_for_box(box: Sequence[float], size: int, fill: float = FILL) -> Crop:
    """The square crop centred on box (x0, y0, x1, y1) in which the box's longer side fills `fill`."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"box {box}: expected x0 < x1 and y0 < y1")
    side = max(1, math.floor(max(x1 - x0, y1 - y0) / fill + 0.5))
    return Crop(math.floor((x0 + x1 - side) / 2 + 0.5), math.floor((y0 + y1 - side) / 2 + 0.5), side, int(size))


def cut(image: np.ndarray, c: Crop) -> np.ndarray:
    """(H, W, 3) uint8 image -> (size, size, 3) uint8 crop, black outside the image. Integer
    slicing, then one resize (area-averaging when shrinking), which keeps the pixel-centre
    convention: a crop pixel q shows the image at `c.to_image(q)`."""
    import cv2
    h, w = image.shape[:2]
    out = np.zeros((c.side, c.side, 3), np.uint8)
    x0, y0, x1, y1 = max(c.x, 0), max(c.y, 0), min(c.x + c.side, w), min(c.y + c.side, h)
    if x1 > x0 and y1 > y0:
        out[y0 - c.y:y1 - c.y, x0 - c.x:x1 - c.x] = image[y0:y1, x0:x1]
    if c.side == c.size:
        return out
    return cv2.resize(out, (c.size, c.size), interpolation=cv2.INTER_AREA if c.side > c.size else cv2.INTER_LINEAR)


def weak_to_image(points: np.ndarray, cam: np.ndarray, c: Crop) -> np.ndarray:
    """(K, 3) root-relative camera-frame points and the crop's weak perspective (s, tx, ty) ->
    (K, 2) pixels in the original image: (s (X_xy + t) + 1) side / 2 + (x, y)."""
    s, t = float(cam[0]), np.asarray(cam[1:3], np.float64)
    q = (s * (np.asarray(points, np.float64)[:, :2] + t) + 1.0) * c.size / 2.0     # crop pixels
    return c.to_image(q)


def perspective_camera(cam: np.ndarray, c: Crop, width: int, height: int,
                       focal_crops: float = FOCAL_CROPS) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The weak perspective of a crop as a pinhole camera of the whole image: -> (K (3, 3),
    translation (3,) of the root in the camera frame, None if the scale is not positive).
    Focal length focal_crops * side, principal point the image centre; the root projects exactly
    where the weak camera puts it, other points to within their depth / root depth."""
    f = focal_crops * c.side
    cx, cy = width / 2.0, height / 2.0
    K = np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
    s = float(cam[0])
    if not (np.isfinite(cam).all() and s > 1e-6):
        return K, None
    a = s * c.side / 2.0                                   # image pixels per metre at the root
    T = np.array([cam[1] + (c.side / 2.0 + c.x - cx) / a, cam[2] + (c.side / 2.0 + c.y - cy) / a, f / a])
    return K, T


# ----------------------------------------------------------------------------- finding the person

@dataclass
class Box:
    """The person's box (x0, y0, x1, y1), image pixels, and where it came from: 'bbox' (given),
    'hog' (OpenCV's HOG people detector; `detection` is its raw window, `score` its SVM margin)
    or 'whole_image'."""
    xyxy: tuple
    source: str
    fill: float = FILL
    score: Optional[float] = None
    detection: Optional[tuple] = None
    note: str = ""


_HOG = None


def hog_available() -> bool:
    import cv2
    return hasattr(cv2, "HOGDescriptor") and hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector")


def detect_person(image: np.ndarray) -> Optional[tuple[tuple, float]]:
    """OpenCV's HOG + linear SVM people detector (Dalal & Triggs; its weights ship inside OpenCV) on
    an (H, W, 3) uint8 RGB image, resized to DETECT_SIDE px on its longer side. -> (the best-scoring
    window (x0, y0, x1, y1) in image pixels, its score), or None."""
    import cv2
    global _HOG
    if _HOG is None:
        _HOG = cv2.HOGDescriptor()
        _HOG.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    h, w = image.shape[:2]
    k = DETECT_SIDE / max(h, w)
    small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                       interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    rects, weights = _HOG.detectMultiScale(small, winStride=(8, 8), padding=(16, 16), scale=1.05)
    if len(rects) == 0:
        return None
    weights = np.ravel(weights)
    i = int(np.argmax(weights))
    if weights[i] < HOG_MIN_SCORE:
        return None
    # Back to image pixels (resize keeps the pixel-centre convention: p = p_small / k).
    x, y, bw, bh = (float(v) / k for v in rects[i])
    return (x, y, x + bw, y + bh), float(weights[i])


def find_person(image: np.ndarray, bbox: Optional[Sequence[float]], detector: str = "auto") -> Box:
    """The box to crop around: `bbox` if given; else (detector 'auto' or 'hog') the HOG detection,
    shrunk to the person inside HOG's window; else the whole image (as a crop of the person: it
    fills the crop's side), with a note saying why."""
    h, w = image.shape[:2]
    if bbox is not None:
        return Box(tuple(float(v) for v in bbox), "bbox")
    whole = (0.0, 0.0, float(w), float(h))
    if detector == "none":
        return Box(whole, "whole_image", fill=1.0, note="no detector asked for (--detector none)")
    if detector == "auto" and min(h, w) < MIN_DETECT_SIDE:
        return Box(whole, "whole_image", fill=1.0,
                   note=f"image smaller than {MIN_DETECT_SIDE} px: taken as a crop of the person")
    if not hog_available():
        return Box(whole, "whole_image", fill=1.0,
                   note="this OpenCV has no HOG people detector (install opencv-contrib-python-headless)")
    found = detect_person(image)
    if found is None:
        return Box(whole, "whole_image", fill=1.0, note="no person detected (HOG): the whole image, centred")
    (x0, y0, x1, y1), score = found
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * HOG_PERSON / 2, (y1 - y0) * HOG_PERSON / 2
    return Box((cx - hw, cy - hh, cx + hw, cy + hh), "hog", score=score, detection=(x0, y0, x1, y1))


# ----------------------------------------------------------------------------- inputs

def image_size(path: Path) -> Optional[tuple[int, int]]:
    """(width, height) as `read_image` returns the image (EXIF rotation applied), read from the
    file's header only; None when Pillow cannot identify the file (OpenCV may still read it)."""
    import warnings

    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # the size is checked by the caller
            with Image.open(path) as im:
                w, h = im.size
                orientation = im.getexif().get(0x0112, 1)
    except Image.DecompressionBombError:
        return (MAX_PIXELS, MAX_PIXELS)             # far above MAX_PIXELS: refused by the caller
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)      # EXIF 5-8: rotated by 90 degrees


def read_image(path: Path, max_side: Optional[int] = None) -> np.ndarray:
    """-> (H, W, 3) uint8 RGB (EXIF orientation applied, grey and 16-bit converted), downscaled to
    `max_side` px on its longer side when larger (JPEGs are decoded directly at 1/2, 1/4 or 1/8
    size, so a huge photo never exists in memory at full size).
    Raises ValueError for a file that is not a readable image."""
    import cv2
    data = np.fromfile(str(path), np.uint8)
    if data.size == 0:
        raise ValueError("empty file")
    flag = cv2.IMREAD_COLOR
    wh = image_size(path) if max_side else None
    if wh and max(wh) > max_side:
        reduce = next(r for r in (8, 4, 2, 1) if r == 1 or max(wh) / r >= max_side)
        flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
    lg = getattr(getattr(cv2, "utils", None), "logging", None)
    level = lg.getLogLevel() if lg else None
    if lg:
        lg.setLogLevel(lg.LOG_LEVEL_ERROR)           # the reason is reported once, below, not by OpenCV too
    try:
        image = cv2.imdecode(data, flag)
    finally:
        if lg:
            lg.setLogLevel(level)
    del data
    if image is None or image.ndim != 3 or min(image.shape[:2]) < 1:
        raise ValueError("not an image OpenCV can read (or a corrupt one)")
    h, w = image.shape[:2]
    if max_side and max(h, w) > max_side:
        k = max_side / max(h, w)
        image = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image[:, :, ::-1])


def check_image(path: Path, bbox: Optional[Sequence[float]]) -> tuple[int, int]:
    """The checks made on every input before any model loads, from the file's header.
    -> (width, height); raises ValueError saying what is wrong."""
    wh = image_size(path)
    if wh is None:
        read_image(path, MAX_SIDE)                   # not a format Pillow knows: OpenCV decides (raises if unreadable)
        return (0, 0)
    w, h = wh
    if w * h > MAX_PIXELS:
        raise ValueError(f"{w}x{h} px image ({w * h / 1e6:.0f} megapixels): predict reads at most "
                         f"{MAX_PIXELS / 1e6:.0f} megapixels; downscale it first")
    if min(w, h) < MIN_SIDE:
        raise ValueError(f"{w}x{h} px image: predict needs at least {MIN_SIDE} px on each side")
    if bbox is not None:
        x0, y0, x1, y1 = (float(v) for v in bbox)
        inside = max(0.0, min(x1, w) - max(x0, 0.0)) * max(0.0, min(y1, h) - max(y0, 0.0))
        frac = inside / ((x1 - x0) * (y1 - y0))
        if frac < BOX_INSIDE:
            raise ValueError(f"--bbox {','.join(f'{v:g}' for v in bbox)} lies outside this {w}x{h} px image "
                             f"({frac:.0%} of the box is inside, at least {BOX_INSIDE:.0%} must be)")
    return w, h


def list_inputs(paths: Sequence[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files and folders (every non-hidden file directly inside; what is not an image is
    reported when read) -> (files to process, [(path, why)] of arguments that do not exist)."""
    files, missing = [], []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            missing.append((p, "no such file or folder"))
    return files, missing


def output_stems(files: Sequence[Path]) -> list[str]:
    """One output name per input: its stem, or stem_ext where stems collide (a.jpg, a.png)."""
    stems = [f.stem for f in files]
    dup = {s for s in stems if stems.count(s) > 1}
    out, used = [], set()
    for f, s in zip(files, stems):
        name = f"{s}_{f.suffix.lstrip('.')}" if s in dup else s
        k, base = 1, name
        while name in used:
            k, name = k + 1, f"{base}_{k}"
        used.add(name)
        out.append(name)
    return out


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        v = tuple(float(x) for x in text.split(","))
    except ValueError:
        v = ()
    if len(v) != 4 or not all(map(math.isfinite, v)) or not (v[2] > v[0] and v[3] > v[1]):
        raise ConfigError(f"--bbox {text!r}: expected x0,y0,x1,y1 in pixels with x0 < x1 and y0 < y1")
    return v


# ----------------------------------------------------------------------------- outputs

def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray, face_uv: np.ndarray, header: Sequence[str] = ()) -> None:
    """Wavefront OBJ: `v` per vertex, `vt` per distinct corner UV (the layout's v is up, as OBJ's),
    `f v/vt v/vt v/vt` (1-based)."""
    uv = np.round(np.asarray(face_uv, np.float64).reshape(-1, 2), 7)
    uniq, inv = np.unique(uv, axis=0, return_inverse=True)
    inv = inv.reshape(-1, 3) + 1
    f = np.asarray(faces, np.int64) + 1
    lines = [f"# {' '.join(str(h).splitlines())}" for h in header]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, np.float64)]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in uniq]
    lines += [f"f {a}/{ta} {b}/{tb} {c}/{tc}" for (a, b, c), (ta, tb, tc) in zip(f.tolist(), inv.tolist())]
    write_text(path, "\n".join(lines) + "\n")


def dumps(obj) -> str:
    """JSON with one line per innermost list of numbers (a joint per line)."""
    import re
    text = json.dumps(obj, indent=1)
    return re.sub(r"\[\s+([-+\d.eE,\s]+?)\s+\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)


def _round(a, nd: int = 6):
    return None if a is None else np.round(np.asarray(a, np.float64), nd).tolist()


def result_json(image_path: Path, size_wh: tuple[int, int], box: Box, c: Crop, joints: np.ndarray,
                cam: np.ndarray, K: np.ndarray, T: Optional[np.ndarray], extra: dict) -> dict:
    from uvhmr.body.joints import LSP14_NAMES  # heavy: torch (`uvhmr --help` imports this module)
    j2d = weak_to_image(joints, cam, c)
    return {
        "image": str(image_path),
        "image_size": list(size_wh),
        "joint_names": list(LSP14_NAMES),
        "joints3d": _round(joints),
        "joints3d_camera": None if T is None else _round(joints + T),
        "joints2d": _round(j2d, 3),
        "box": {"xyxy": _round(box.xyxy, 2), "source": box.source, "fill": box.fill,
                "score": None if box.score is None else round(box.score, 4),
                "detection": _round(box.detection, 2), "note": box.note},
        "crop": {"x": c.x, "y": c.y, "side": c.side, "size": c.size},
        "camera": {"weak_perspective": _round(cam), "focal_px": round(float(K[0, 0]), 3),
                   "principal_point": _round(K[:2, 2], 3), "translation": _round(T)},
        "conventions": {
            "joints3d": "metres, camera frame (x right, y down, z forward), relative to the mid-hip point",
            "joints3d_camera": "joints3d + translation: the camera frame of the .obj",
            "joints2d": "pixels of the original image (continuous: pixel (r, c) has its centre at (c + 0.5, r + 0.5)), "
                        "the weak-perspective projection uncropped",
            "weak_perspective": "(s, tx, ty): 2 q / crop.size - 1 = s (X_xy + t), q the pixel in the crop; "
                                "image pixel = q * crop.side / crop.size + (crop.x, crop.y)",
            "translation": f"root in a pinhole camera at the image centre with focal_px = {FOCAL_CROPS:.3f} x crop.side "
                           "(an assumption: the training renders' mean focal length, in crop sizes)"},
        **extra,
    }


def _far_camera(vertices: np.ndarray, px_per_m: float, root_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A perspective camera DEPTH metres away that draws root-relative vertices as the weak
    perspective x = px_per_m X_xy + root_xy would. -> (vertices in its frame, K)."""
    f = px_per_m * DEPTH
    K = np.array([[f, 0.0, root_xy[0]], [0.0, f, root_xy[1]], [0.0, 0.0, 1.0]])
    return np.asarray(vertices, np.float64) + [0.0, 0.0, DEPTH], K


def overlay_image(image: np.ndarray, vertices: np.ndarray, faces: np.ndarray, cam: np.ndarray, c: Crop,
                  box: Box, joints: np.ndarray) -> np.ndarray:
    """(H', W' + side panel, 3) uint8 RGB: the mesh over the image (its longer side scaled into
    [OVERLAY_MIN_SIDE, OVERLAY_MAX_SIDE]), the box (green: given or detected, grey: the whole
    image), the 2-D joints, and a side view of the mesh (seen from the camera's right)."""
    import cv2
    from uvhmr.data.render import LSP14_PARENTS, draw_mesh_overlay, draw_skeleton  # heavy: torch
    h, w = image.shape[:2]
    k = min(OVERLAY_MAX_SIDE / max(h, w), max(1.0, OVERLAY_MIN_SIDE / max(h, w)))
    img = image if k == 1.0 else cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                                            interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    k = img.shape[1] / w                  # the exact scale of the rounded size (x; y differs by < 1 px)
    oh, ow = img.shape[:2]
    s = float(cam[0])
    ok = bool(np.isfinite(vertices).all() and np.isfinite(cam).all() and s > 1e-3)
    # Thin strokes scale with the overlay (a 64 px image needs 1 px lines, a 1000 px one 2-3 px).
    lw = max(1, round(max(oh, ow) / 400))
    front, side = img.copy(), np.full((oh, max(oh // 2, 48), 3), 235, np.uint8)
    if ok:
        px_per_m = s * c.side / 2.0 * k
        root = weak_to_image(np.zeros((1, 3)), cam, c)[0] * k
        vc, K = _far_camera(vertices, px_per_m, root)
        front = draw_mesh_overlay(front, vc, faces, K, color=MESH_RGB, opacity=0.7)
        front = draw_skeleton(front, weak_to_image(joints, cam, c) * k, LSP14_PARENTS, color=(255, 40, 40), radius=lw)
        # Side view: a camera on the first camera's right (+x) looking back at the body (towards -x),
        # y still down: x' = z, z' = -x. Scaled to fit the panel.
        v = np.asarray(vertices, np.float64)
        turned = np.stack([v[:, 2], v[:, 1], -v[:, 0]], 1)
        lo, hi = turned[:, :2].min(0), turned[:, :2].max(0)
        ph, pw = side.shape[:2]
        ppm = 0.85 * min(pw / max(hi[0] - lo[0], 1e-3), ph / max(hi[1] - lo[1], 1e-3))
        centre = np.array([pw / 2.0, ph / 2.0]) - ppm * (lo + hi) / 2
        vs, Ks = _far_camera(turned, ppm, centre)
        side = draw_mesh_overlay(side, vs, faces, Ks, color=MESH_RGB, opacity=1.0)
    else:
        cv2.putText(front, "no mesh", (4, max(12, oh // 10)), cv2.FONT_HERSHEY_SIMPLEX, max(0.3, oh / 500), (255, 0, 0), lw)
    colour = (40, 200, 40) if box.source in ("bbox", "hog") else (160, 160, 160)
    x0, y0, x1, y1 = (np.asarray(box.xyxy) * k).tolist()
    cv2.rectangle(front, (int(round(x0)), int(round(y0))), (int(round(x1)) - 1, int(round(y1)) - 1), colour, lw)
    return np.concatenate([front, side], 1)


def write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    write_bytes(path, buf.tobytes())


# ----------------------------------------------------------------------------- the command

def model_paths(results: str | Path, profile: str) -> dict[str, Path]:
    """The trained files predict runs: the pipeline's DMP, IK (seed 0) and UVI (seed 0), and the UV assets."""
    root = Path(results) / profile
    pipe = Pipeline()
    if (root / REPORT_PARAMS).is_file():
        try:
            pipe = Pipeline(**json.loads((root / REPORT_PARAMS).read_text())["pipeline"])
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{root / REPORT_PARAMS}: expected the run's resolved parameters with a `pipeline` "
                              f"({type(e).__name__}: {e})") from None
    return {"dmp": root / f"models/dmp/{pipe.dmp}.pt", "ik": root / f"models/ik/{pipe.ik}/seed0.pt",
            "uvi": root / f"models/uvi/{pipe.uvi}/seed0.pt", "uv": root / "uv/uv_assets.npz"}


def check_models(paths: dict[str, Path], body_dir: Path, profile: str, body_given: bool = False) -> None:
    if body_given and not (body_dir / "assets.npz").is_file():
        what = "no such folder" if not body_dir.is_dir() else "no assets.npz in it"
        raise ConfigError(f"uvhmr predict: --body {body_dir}: expected a body-model export (resources/body/<backend>, "
                          f"written by the workflow's body_model rule), got {what}")
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if not (body_dir / "assets.npz").is_file():
        missing.append(str(body_dir / "assets.npz"))
    if missing:
        run = "snakemake --cores 2" + ("" if profile == "default" else f" --config profile={profile}")
        raise FileNotFoundError(
            f"uvhmr predict: the {profile} profile's trained models are missing ({', '.join(missing)}); "
            f"run the main job first (`{run}` or `dvc repro`), or point --results / --profile at a finished run")


# ----------------------------------------------------------------------------- never replacing the user's files

def read_manifest(out: Path) -> dict[str, str]:
    """{file name: SHA-256} of what predict wrote into `out`; {} when there is no (readable) manifest,
    so every existing file counts as the user's."""
    try:
        files = json.loads((out / MANIFEST).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def check_out(out: Path, files: Sequence[Path], names: Sequence[str], overwrite: bool) -> None:
    """Refuse (one ConfigError line) an --out that is a file or holds an input, and existing files
    of the names predict would write unless predict wrote them (their hash is in the manifest) or
    `overwrite`."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"uvhmr predict: --out {out}: is an existing file; expected a folder (created if needed)")
    if not out.is_dir():
        return
    home = out.resolve()
    for f in files:
        if f.resolve().parent == home:
            raise ConfigError(f"uvhmr predict: --out {out} holds the input {f.name}; predict never writes beside "
                              "your images: choose another output folder")
    if overwrite:
        return
    known = read_manifest(out)
    foreign = [out / n for n in names if (out / n).exists() and
               ((out / n).is_dir() or known.get(n) != sha256(out / n))]
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise ConfigError(f"uvhmr predict: {foreign[0]}{more} exists and was not written by uvhmr predict (or was "
                          "changed since); choose another --out, move it away, or pass --overwrite")


def _record(out: Path, written: dict[str, str]) -> None:
    write_json(out / MANIFEST, {"written_by": "uvhmr predict", "files": {**read_manifest(out), **written}})


def body_backend(params_yaml: Path) -> str:
    """The body model of params.yaml (anny when there is no params.yaml here)."""
    if not params_yaml.is_file():
        return "anny"
    import yaml
    raw = yaml.safe_load(params_yaml.read_text()) or {}
    return str((raw.get("body_model") or {}).get("backend", "anny"))


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)            # output stems written
    failed: list[tuple[str, str]] = field(default_factory=list)   # (input, why)


def _scaled(c: Crop, k: float) -> Crop:
    """The crop of a downscaled image in the original image's pixels (k = original / read size)."""
    return c if k == 1.0 else Crop(c.x * k, c.y * k, c.side * k, c.size)


def _scaled_box(box: Box, k: float) -> Box:
    if k == 1.0:
        return box
    return Box(tuple(v * k for v in box.xyxy), box.source, box.fill, box.score,
               None if box.detection is None else tuple(v * k for v in box.detection), box.note)


def check_inputs(inputs: Sequence[str | Path], bbox: Optional[Sequence[float]]
                 ) -> tuple[list[Path], list[tuple[int, int]], list[tuple[str, str]]]:
    """The inputs, checked before any model loads: -> (usable files, their (width, height),
    [(input, why)] of the unusable). Nothing usable raises one line: ConfigError (exit 2) for
    arguments naming no images, InputError (exit 1) for images that cannot be used."""
    files, missing = list_inputs(inputs)
    failed = [(str(p), why) for p, why in missing]
    if not files:
        if missing:
            raise ConfigError(f"uvhmr predict: {missing[0][0]}: {missing[0][1]}")
        raise ConfigError(f"uvhmr predict: no input files in {', '.join(map(str, inputs))} "
                          "(folders are read one level deep; hidden files are skipped)")
    ok, sizes = [], []
    for f in files:
        try:
            sizes.append(check_image(f, bbox))
            ok.append(f)
        except (ValueError, OSError) as e:
            failed.append((str(f), str(e)))
    if not ok:
        (first, why), more = failed[0], len(failed) - 1
        if more:
            for f, w in failed[1:]:
                log.warning("%s: %s", f, w)
        raise InputError(f"uvhmr predict: {first}: {why}" + (f" (and {more} more input(s), none usable)" if more else ""))
    for f, why in failed:
        log.warning("%s: %s; skipped", f, why)
    return ok, sizes, failed


def run_predict(inputs: Sequence[str | Path], out_dir: str | Path, *, profile: str = "default",
                results: str | Path = "results", body_dir: Optional[str | Path] = None,
                bbox: Optional[Sequence[float]] = None, detector: str = "auto", device: str = "auto",
                batch_size: int = 16, progress: Optional[bool] = None, overwrite: bool = False) -> Outcome:
    """Everything `uvhmr predict` does; see the module docstring. -> what was written and what failed.
    Every check (inputs, --out, the model files) is made before a model loads; predict writes only
    into `out_dir`, never over a file it did not write there (unless `overwrite`)."""
    out = Path(out_dir)
    files, sizes, failed = check_inputs(inputs, bbox)
    stems = output_stems(files)
    check_out(out, files, [f"{s}.{e}" for s in stems for e in ("obj", "json", "png")], overwrite)
    paths = model_paths(results, profile)
    body = Path(body_dir) if body_dir is not None else Path("resources/body") / body_backend(Path("params.yaml"))
    check_models(paths, body, profile, body_given=body_dir is not None)
    outcome = Outcome(failed=list(failed))

    import torch                 # here, not at the top: `uvhmr --help` (which reads this module's limits) stays fast
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from uvhmr.device import pick_device  # heavy: torch, which `uvhmr --help` never needs
    from uvhmr.predict import load_models, predict  # heavy: torch
    from uvhmr.uv.assets import load_uv_assets  # heavy: torch
    try:
        models = load_models(paths["dmp"], paths["ik"], paths["uvi"], paths["uv"].parent, body, pick_device(device))
    except (ValueError, RuntimeError) as e:       # stages that do not fit together; no CUDA for --device cuda
        if isinstance(e, ConfigError) or type(e).__module__.startswith("uvhmr."):
            raise                                 # the project's own errors already name their file
        raise ConfigError(f"uvhmr predict: {e}") from None
    faces = models.body.faces.cpu().numpy()
    face_uv = load_uv_assets(paths["uv"].parent).face_uv
    size = models.image_size or 224
    out.mkdir(parents=True, exist_ok=True)
    extra = {"profile": profile, "models": {k: str(v) for k, v in paths.items()}, "body_model": str(body)}
    header = ["uvhmr predict: mesh in metres, camera frame of the image (x right, y down, z forward; see the .json)",
              "texture coordinates: the project's UV layout (uv_assets)"]

    bs = max(1, int(batch_size))
    show = sys.stderr.isatty() if progress is None else progress
    with logging_redirect_tqdm(), tqdm(total=len(files), unit="img", desc="predict", disable=not show) as bar:
        for start in range(0, len(files), bs):
            batch = []
            for f, stem, wh in zip(files[start:start + bs], stems[start:start + bs], sizes[start:start + bs]):
                try:
                    image = read_image(f, MAX_SIDE)
                    # k: original pixels per pixel read (> 1 for a downscaled image); --bbox is in original pixels.
                    k = wh[0] / image.shape[1] if wh[0] else 1.0
                    box = find_person(image, None if bbox is None else [v / k for v in bbox], detector)
                    if box.note:
                        log.warning("%s: %s", f, box.note)
                    c = crop_for_box(box.xyxy, size, box.fill)
                    batch.append((f, stem, image, wh, k, box, c, cut(image, c)))
                except (ValueError, OSError) as e:
                    outcome.failed.append((str(f), str(e)))
                    log.warning("%s: %s; skipped", f, e)
                    bar.update(1)
            if not batch:
                continue
            x = torch.from_numpy(np.stack([b[7] for b in batch])).permute(0, 3, 1, 2).float() / 255.0
            joints, verts, cams = (t.cpu().numpy().astype(np.float64) for t in predict(x, models))
            written = {}
            for (f, stem, image, wh, k, box, c, _), j, v, cam in zip(batch, joints, verts, cams):
                try:
                    h, w = image.shape[:2]
                    W, H = wh if wh[0] else (w, h)
                    c0, box0 = _scaled(c, k), _scaled_box(box, k)      # in the original image's pixels
                    K, T = perspective_camera(cam, c0, W, H)
                    more = dict(extra, read_at={"size": [w, h], "scale": round(k, 6)}) if k != 1.0 else extra
                    names = (f"{stem}.obj", f"{stem}.json", f"{stem}.png")
                    write_obj(out / names[0], v + (T if T is not None else 0.0), faces, face_uv,
                              header + [f"from {f}"] + ([] if T is not None else ["degenerate camera: vertices root-relative"]))
                    write_text(out / names[1], dumps(result_json(f, (W, H), box0, c0, j, cam, K, T, more)))
                    write_png(out / names[2], overlay_image(image, v, faces, cam, c, box, j))
                    written.update({n: sha256(out / n) for n in names})
                    outcome.done.append(stem)
                except (ValueError, OSError) as e:
                    outcome.failed.append((str(f), str(e)))
                    log.warning("%s: %s", f, e)
                bar.update(1)
            if written:
                _record(out, written)
    return outcome


def main(a) -> int:
    """The CLI's `predict` (argparse namespace; see cli.py) -> exit code: 0, or 1 if an input failed."""
    bbox = parse_bbox(a.bbox) if a.bbox else None
    if not a.images:
        raise ConfigError("uvhmr predict: give at least one image file or folder")
    if a.batch_size < 1:
        raise ConfigError(f"uvhmr predict: --batch-size must be at least 1, got {a.batch_size}")
    o = run_predict(a.images, a.out, profile=a.profile, results=a.results, body_dir=a.body, bbox=bbox,
                    detector=a.detector, device=a.device, batch_size=a.batch_size, overwrite=a.overwrite)
    log.info("predict: %d image(s) written to %s (obj, json, png each)%s", len(o.done), a.out,
             f"; {len(o.failed)} failed" if o.failed else "")
    for f, why in o.failed:
        log.error("failed: %s: %s", f, why)
    return 1 if o.failed else 0
