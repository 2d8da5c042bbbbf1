"""Synthetic occlusion after Sárándi et al. (2018), with procedural occluders instead of Pascal VOC
objects (no dataset needed): 1-7 random textured shapes pasted at random places, composited at load
time over renders made without them.

Two disjoint families, so the test split measures robustness to occluders the network never saw:
training occluders are ellipses, polygons and bars with flat, striped or noise textures; test
occluders are blobs, stars and rings with checker, gradient or dotted textures.

`occluders` draws the layer; `composite` pastes it; the occluder mask is alpha >= 0.5, and a joint
is visible when any pixel of its A_uv part is on the body and off that mask (`joint_visibility`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAMILIES = {
    "train": {"shapes": ("ellipse", "polygon", "bar"), "textures": ("flat", "stripes", "noise")},
    "test": {"shapes": ("blob", "star", "ring"), "textures": ("checker", "gradient", "dots")},
}
_SHIFT = 4          # cv2 sub-pixel drawing: coordinates in 1/16 px


@dataclass(frozen=True)
class OcclusionParams:
    """count: occluders per image, uniform in [lo, hi]; scale: an occluder's longer side in image
    sizes, uniform in [lo, hi]; families: "train" or "test" (FAMILIES); prob: of occluding at all."""
    count: tuple = (1, 7)
    scale: tuple = (0.15, 0.5)
    families: str = "train"
    prob: float = 1.0

    def __post_init__(self):
        if self.families not in FAMILIES:
            raise ValueError(f"occlusion families must be one of {', '.join(FAMILIES)}, got {self.families!r}")


def _pt(p) -> tuple:
    return (int(round(p[0] * (1 << _SHIFT))), int(round(p[1] * (1 << _SHIFT))))


def _shape_mask(rng, kind: str, n: int) -> np.ndarray:
    """An anti-aliased (n, n) float32 alpha of one shape filling most of an n x n patch."""
    import cv2
    m = np.zeros((n, n), np.float32)
    c = np.array([n / 2 - 0.5, n / 2 - 0.5])
    r = n / 2 - 1
    ang = rng.uniform(0, 2 * np.pi)
    if kind == "ellipse":
        ax = (int(r * (1 << _SHIFT)), int(r * rng.uniform(0.3, 1.0) * (1 << _SHIFT)))
        cv2.ellipse(m, _pt(c), ax, float(np.degrees(ang)), 0, 360, 1.0, -1, cv2.LINE_AA, _SHIFT)
    elif kind in ("polygon", "star"):
        k = int(rng.integers(3, 9)) if kind == "polygon" else 2 * int(rng.integers(4, 8))
        a = np.sort(rng.uniform(0, 2 * np.pi, k)) if kind == "polygon" else ang + np.arange(k) * 2 * np.pi / k
        rad = r * (rng.uniform(0.5, 1.0, k) if kind == "polygon" else np.where(np.arange(k) % 2, rng.uniform(0.3, 0.55), 1.0))
        pts = np.stack([c[0] + rad * np.cos(a), c[1] + rad * np.sin(a)], 1)
        cv2.fillPoly(m, [np.round(pts * (1 << _SHIFT)).astype(np.int32)], 1.0, cv2.LINE_AA, _SHIFT)
    elif kind == "bar":
        w = r * rng.uniform(0.12, 0.35)
        d = np.array([np.cos(ang), np.sin(ang)])
        e = np.array([-d[1], d[0]])
        pts = np.stack([c + r * d + w * e, c + r * d - w * e, c - r * d - w * e, c - r * d + w * e])
        cv2.fillPoly(m, [np.round(pts * (1 << _SHIFT)).astype(np.int32)], 1.0, cv2.LINE_AA, _SHIFT)
    elif kind == "ring":
        outer = (int(r * (1 << _SHIFT)), int(r * rng.uniform(0.6, 1.0) * (1 << _SHIFT)))
        cv2.ellipse(m, _pt(c), outer, float(np.degrees(ang)), 0, 360, 1.0, -1, cv2.LINE_AA, _SHIFT)
        inner = tuple(int(v * rng.uniform(0.35, 0.7)) for v in outer)
        off = c + rng.uniform(-0.3, 0.3, 2) * r      # off-centre hole: rings and crescents
        cv2.ellipse(m, _pt(off), inner, float(np.degrees(ang)), 0, 360, 0.0, -1, cv2.LINE_AA, _SHIFT)
    elif kind == "blob":
        cells = int(rng.integers(3, 6))
        g = cv2.resize(rng.random((cells, cells)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
        yy, xx = (np.mgrid[0:n, 0:n] - (n - 1) / 2) / max(r, 1)
        field = g - 0.6 * (xx ** 2 + yy ** 2)
        m = np.clip((field - np.quantile(field, rng.uniform(0.35, 0.6))) * 8 + 0.5, 0, 1).astype(np.float32)
    else:
        raise ValueError(f"unknown occluder shape {kind!r}")
    return m


def _texture(rng, kind: str, n: int) -> np.ndarray:
    """An (n, n, 3) float32 texture for one occluder, with a shading ramp for some depth cue."""
    import cv2
    a, b = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    u = xx * np.cos(ang) + yy * np.sin(ang)
    v = -xx * np.sin(ang) + yy * np.cos(ang)
    period = max(n * rng.uniform(0.08, 0.4), 2.0)
    if kind == "flat":
        t = np.broadcast_to(a, (n, n, 3))
    elif kind == "stripes":
        t = np.where(((u / period) % 1.0 < 0.5)[..., None], a, b)
    elif kind == "noise":
        cells = int(rng.integers(2, 8))
        w = cv2.resize(rng.random((cells, cells)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
        w = np.clip(w, 0, 1)[..., None]
        t = a * w + b * (1 - w)
    elif kind == "checker":
        t = np.where(((np.floor(u / period) + np.floor(v / period)) % 2 == 0)[..., None], a, b)
    elif kind == "gradient":
        s = np.clip((u - u.min()) / max(float(np.ptp(u)), 1e-6), 0, 1)[..., None]
        t = a * s + b * (1 - s)
    elif kind == "dots":
        q = np.stack([(u / period) % 1.0 - 0.5, (v / period) % 1.0 - 0.5], -1)
        t = np.where((np.linalg.norm(q, axis=-1) < 0.3)[..., None], a, b)
    else:
        raise ValueError(f"unknown occluder texture {kind!r}")
    ramp = 0.75 + 0.5 * (u - u.min()) / max(float(np.ptp(u)), 1e-6)
    return np.clip(t * ramp[..., None], 0, 1).astype(np.float32)


def occluders(rng: np.random.Generator, size: int, params: OcclusionParams = OcclusionParams()):
    """Draw one occluder layer for a size x size image.
    -> (premultiplied RGB (S, S, 3) float32, alpha (S, S) float32); alpha is 0 where nothing is."""
    rgb = np.zeros((size, size, 3), np.float32)
    alpha = np.zeros((size, size), np.float32)
    if rng.random() >= params.prob:
        return rgb, alpha
    fam = FAMILIES[params.families]
    for _ in range(int(rng.integers(params.count[0], params.count[1] + 1))):
        n = max(int(round(rng.uniform(*params.scale) * size)), 3)
        shape = fam["shapes"][rng.integers(len(fam["shapes"]))]
        tex = fam["textures"][rng.integers(len(fam["textures"]))]
        m = _shape_mask(rng, shape, n)
        t = _texture(rng, tex, n)
        # Centre anywhere in the image, as Sárándi et al.; the patch may hang over the border.
        x0 = int(np.floor(rng.uniform(0, size) - n / 2))
        y0 = int(np.floor(rng.uniform(0, size) - n / 2))
        xs, ys = slice(max(x0, 0), min(x0 + n, size)), slice(max(y0, 0), min(y0 + n, size))
        ps = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
        if xs.start >= xs.stop or ys.start >= ys.stop:
            continue
        a = m[ps]
        rgb[ys, xs] = rgb[ys, xs] * (1 - a[..., None]) + t[ps] * a[..., None]
        alpha[ys, xs] = alpha[ys, xs] * (1 - a) + a
    return rgb, alpha


def composite(image: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """image (S, S, 3) uint8 or float in [0, 1] -> float32 [0, 1] with the occluder layer over it."""
    img = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    return rgb + (1.0 - alpha[..., None]) * img


def occluder_mask(alpha: np.ndarray) -> np.ndarray:
    """(S, S) alpha -> bool mask of the pixels an occluder hides."""
    return alpha >= 0.5


def joint_visibility(parts: np.ndarray, occluded: np.ndarray, joints: int) -> np.ndarray:
    """parts (S, S) int A_uv label of each body pixel (-1 off the body), occluded (S, S) bool ->
    (joints,) bool: a joint is visible if any pixel of its part is on the body and not occluded."""
    lab = parts[(parts >= 0) & ~occluded]
    return np.bincount(lab.astype(np.int64), minlength=joints)[:joints] > 0
