"""What a synthetic picture is made of besides the body: camera, clothing texture, light, background.

Every sampler takes a `numpy.random.Generator` and nothing else random, so a sample is a pure
function of its seed.

Camera: OpenCV frame (x right, y down, z forward), metres; K with the principal point at the image
centre (render.py states the pixel convention). The body model's frame is turned so that a body
with identity root orientation faces the camera upright (`canonical_rotation`); the global
orientation itself is in the pose (uvhmr.data.orientation samples it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from uvhmr.data.render import Light
from uvhmr.uv.texels import build_lookup

# ----------------------------------------------------------------------------- camera


def canonical_rotation(up_axis: str) -> np.ndarray:
    """(3, 3) model frame -> camera frame for a camera in front of an upright body.
    Anny: Z up, facing -Y; SMPL: Y up, facing +Z. Both have +X = the body's left, which a camera
    facing the body sees on the image's right."""
    if up_axis == "z":
        return np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    if up_axis == "y":
        return np.diag([1.0, -1.0, -1.0])
    raise ValueError(f"up_axis must be 'z' or 'y', got {up_axis!r}")


def intrinsics(focal: float, size: int) -> np.ndarray:
    """(3, 3) square-pixel K with the principal point at the centre of a size x size image."""
    return np.array([[focal, 0.0, size / 2.0], [0.0, focal, size / 2.0], [0.0, 0.0, 1.0]])


def _box(X, Y, Z, t, f, size):
    """Pixel bounding box (x0, y0, x1, y1) of points (columns X, Y, Z) translated by t."""
    z = Z + t[2]
    x = f * (X + t[0]) / z
    y = f * (Y + t[1]) / z
    return np.array([x.min(), y.min(), x.max(), y.max()]) + size / 2.0


def place_camera(verts_model: np.ndarray, R: np.ndarray, rng: np.random.Generator, size: int,
                 focal_range=(2.0, 5.0), fill_range=(0.6, 0.95), center_jitter: float = 0.8):
    """Choose focal length and translation so the body fills a random fraction of the crop.

    verts_model (V, 3) posed body in the model frame (metres); R (3, 3) model -> camera rotation.
    focal_range: focal length in image sizes (log-uniform); fill_range: longer side of the
    body's 2D bounding box / image size (uniform); center_jitter: fraction of the free margin the
    box centre may move off the image centre. -> (K (3, 3), t (3,), achieved fill).
    """
    f = size * float(np.exp(rng.uniform(np.log(focal_range[0]), np.log(focal_range[1]))))
    fill = float(rng.uniform(*fill_range))
    jitter = rng.uniform(-1.0, 1.0, size=2) * center_jitter
    K = intrinsics(f, size)
    # Contiguous coordinate columns: numpy reduces those much faster than (N, 3) along axis 0.
    X, Y, Z = np.ascontiguousarray((np.asarray(verts_model, np.float64) @ R.T).T)
    # Iterate on a subsample (the box of 1 in 8 vertices is within a few mm of the full one),
    # then measure the achieved fill on every vertex.
    x, y, z = X[::8], Y[::8], Z[::8]
    zc = 0.5 * float(z.min() + z.max())
    dist = f * float(max(np.ptp(x), np.ptp(y))) / (fill * size)          # orthographic guess
    t = np.array([-(x.min() + x.max()) / 2, -(y.min() + y.max()) / 2, dist - zc])
    # Perspective makes the box differ from the guess: rescale the distance, re-centre, repeat.
    for _ in range(3):
        b = _box(x, y, z, t, f, size)
        dist *= float(max(b[2] - b[0], b[3] - b[1])) / (fill * size)
        t[2] = dist - zc
        b = _box(x, y, z, t, f, size)
        ext = b[2:] - b[:2]
        target = size / 2 + jitter * np.maximum(size - ext, 0.0) / 2
        t[:2] += (target - (b[:2] + b[2:]) / 2) * dist / f
    b = _box(X, Y, Z, t, f, size)
    return K, t, float(max(b[2] - b[0], b[3] - b[1]) / size)


def weak_perspective(joints_rel: np.ndarray, joints2d: np.ndarray, size: int) -> np.ndarray:
    """Least-squares weak-perspective camera of root-relative camera-frame joints.

    joints_rel (K, 3) metres; joints2d (K, 2) pixels (continuous convention) ->
    (3,) (s, tx, ty) with x_ndc = s * (X_xy + t) approximating x_ndc = 2 * x_pix / size - 1.
    """
    X = np.asarray(joints_rel, np.float64)[:, :2]
    p = 2.0 * np.asarray(joints2d, np.float64) / size - 1.0
    xm, pm = X.mean(0), p.mean(0)
    s = float(((X - xm) * (p - pm)).sum() / max(((X - xm) ** 2).sum(), 1e-12))
    t = pm / s - xm
    return np.array([s, t[0], t[1]])


def weak_perspective_project(joints_rel: np.ndarray, cam: np.ndarray, size: int) -> np.ndarray:
    """(..., K, 3) root-relative joints, (..., 3) camera -> (..., K, 2) pixels."""
    cam = np.asarray(cam)
    ndc = cam[..., None, 0:1] * (np.asarray(joints_rel)[..., :2] + cam[..., None, 1:3])
    return (ndc + 1.0) * size / 2.0


# ----------------------------------------------------------------------------- light


def sample_light(rng: np.random.Generator) -> Light:
    """A key light from the camera's side of the body (mostly from above), ambient fill, and a
    slight colour tint."""
    d = np.array([rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 0.25), -rng.uniform(0.25, 1.2)])
    ambient = rng.uniform(0.25, 0.6)
    diffuse = rng.uniform(0.35, 0.85) * (1.0 - 0.4 * ambient)
    tint = np.clip(1.0 + rng.normal(0.0, 0.06, 3), 0.8, 1.2)
    return Light(tuple(d / np.linalg.norm(d)), tuple(ambient * tint), tuple(diffuse * tint))


# ----------------------------------------------------------------------------- clothing texture

REGIONS = ("head", "neck", "torso", "hips", "upper_arm", "forearm", "hand", "thigh", "shin", "foot")
# Bone name -> region, first match wins (lower-case substrings).
_REGION_RULES = {
    "anny": (("head", "head"), ("neck", "neck"), ("spine", "torso"), ("clavicle", "torso"),
             ("shoulder", "torso"), ("root", "hips"), ("pelvis", "hips"), ("upperarm", "upper_arm"),
             ("lowerarm", "forearm"), ("wrist", "hand"), ("hand", "hand"), ("finger", "hand"),
             ("upperleg", "thigh"), ("lowerleg", "shin"), ("foot", "foot"), ("toe", "foot")),
    "smpl": (("head", "head"), ("neck", "neck"), ("spine", "torso"), ("collar", "torso"),
             ("pelvis", "hips"), ("hip", "thigh"), ("knee", "shin"), ("ankle", "foot"), ("foot", "foot"),
             ("shoulder", "upper_arm"), ("elbow", "forearm"), ("wrist", "hand"), ("hand", "hand")),
}


def bone_regions(joint_names, backend: str) -> np.ndarray:
    """(J,) region index (into REGIONS) of each rig bone; unknown names count as torso."""
    rules = _REGION_RULES.get(backend, _REGION_RULES["smpl"])
    out = []
    for n in joint_names:
        low = n.lower()
        out.append(next((REGIONS.index(r) for key, r in rules if key in low), REGIONS.index("torso")))
    return np.array(out, np.int64)


@dataclass
class TextureSpace:
    """Per texel of a T x T texture in the project's UV layout: where it lies on the rest body.

    texel (N,) flat indices of the texels that the texture lookup can reach (covered or padding);
    row (T * T,) the inverse: row of each texel in the arrays below, -1 for unreachable texels;
    rest (N, 3) rest-pose position (metres, model frame); height, front (N,) coordinates along the
    up and facing axes; region (N,) index into REGIONS; arm (N,) distance from the shoulder joint
    for arm texels (metres, else 0); up (3,) the model's up axis; landmarks: heights of ankle,
    knee, hip, shoulder, neck and head top, the head centre's facing coordinate, arm length,
    texel size on the body (metres).
    """
    size: int
    texel: np.ndarray
    row: np.ndarray
    rest: np.ndarray
    height: np.ndarray
    front: np.ndarray
    region: np.ndarray
    arm: np.ndarray
    up: np.ndarray
    landmarks: dict


def texture_space(body, face_uv: np.ndarray, size: int) -> TextureSpace:
    """Build the per-texel fields once per process (about 0.5 s at 256)."""
    faces = body.faces.numpy()
    lk = build_lookup(face_uv, size)
    with torch.no_grad():
        ref = body(body.reference_pose(1), body.mean_shape()[None])
    v = ref.vertices[0].double().numpy()
    j = ref.lsp14[0].double().numpy()
    texel = np.flatnonzero(lk.valid.reshape(-1))
    f = lk.face.reshape(-1)[texel]
    b = lk.bary.reshape(-1, 3)[texel].astype(np.float64)
    vi = faces[f]
    rest = (b[:, :, None] * v[vi]).sum(1)
    vreg = bone_regions(body.joint_names, body.name)[body.vertex_part.numpy()]
    region = vreg[vi[np.arange(len(vi)), b.argmax(1)]]
    up = np.zeros(3)
    up["xyz".index(body.up_axis)] = 1.0
    facing = np.array([0.0, -1.0, 0.0]) if body.up_axis == "z" else np.array([0.0, 0.0, 1.0])
    height, front = rest @ up, rest @ facing
    # Arm texels: distance from the shoulder on the texel's side of the body.
    sh = np.where((rest[:, 0] > 0)[:, None], j[9][None], j[8][None])
    is_arm = np.isin(region, [REGIONS.index(r) for r in ("upper_arm", "forearm", "hand")])
    arm = np.where(is_arm, np.linalg.norm(rest - sh, axis=1), 0.0)
    head = region == REGIONS.index("head")
    lm = {"ankle": float(j[[0, 5]] @ up @ [0.5, 0.5]), "knee": float(j[[1, 4]] @ up @ [0.5, 0.5]),
          "hip": float(j[[2, 3]] @ up @ [0.5, 0.5]), "shoulder": float(j[[8, 9]] @ up @ [0.5, 0.5]),
          "neck": float(j[12] @ up), "top": float(j[13] @ up),
          "head_front": float(front[head].mean()) if head.any() else 0.0,
          "arm_length": float(np.linalg.norm(j[11] - j[9]))}
    # Texel size on the body: median distance between horizontally adjacent texels of one island.
    grid = np.full((size * size, 3), np.nan)
    grid[texel] = rest
    grid = grid.reshape(size, size, 3)
    step = np.linalg.norm(grid[:, 1:] - grid[:, :-1], axis=-1)
    step = step[np.isfinite(step) & (step < 0.1)]
    lm["texel"] = float(np.median(step)) if len(step) else 0.01
    torso = np.isin(region, [REGIONS.index("torso"), REGIONS.index("hips")])
    lm["torso_front"] = float(np.median(front[torso])) if torso.any() else 0.0
    row = np.full(size * size, -1, np.int64)
    row[texel] = np.arange(len(texel))
    f32 = np.float32
    return TextureSpace(size, texel, row, rest.astype(f32), height.astype(f32), front.astype(f32), region,
                        arm.astype(f32), up.astype(f32), lm)


def lerp_colour(t: np.ndarray, a, b) -> np.ndarray:
    """(...) weights, colours a, b (3,) -> (..., 3) float32 a + t (b - a). One channel at a time:
    numpy's broadcast of a (3,) vector against (..., 1) is many times slower."""
    out = np.empty(t.shape + (3,), np.float32)
    for c in range(3):
        out[..., c] = a[c] + (b[c] - a[c]) * t
    return out


def _hsv(h, s, v) -> np.ndarray:
    import colorsys
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def skin_colour(rng) -> np.ndarray:
    """A skin tone between deep brown and pale, with a small hue variation (linear RGB-ish)."""
    dark, light = np.array([0.33, 0.21, 0.14]), np.array([0.95, 0.78, 0.66])
    c = dark + rng.uniform(0, 1) ** 0.8 * (light - dark)
    return np.clip(c * (1 + rng.normal(0, 0.04, 3)), 0, 1)


def cloth_colour(rng) -> np.ndarray:
    """Common garment colours (dark, neutral, denim) half the time, any colour otherwise."""
    k = rng.integers(4)
    if k == 0:
        return _hsv(rng.uniform(), rng.uniform(0, 0.15), rng.uniform(0.05, 0.95))      # neutrals
    if k == 1:
        return _hsv(rng.uniform(0.55, 0.66), rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.6))  # denim/navy
    return _hsv(rng.uniform(), rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0))


def hair_colour(rng) -> np.ndarray:
    k = rng.integers(5)
    if k == 4:
        return _hsv(rng.uniform(), rng.uniform(0.3, 0.9), rng.uniform(0.4, 0.9))   # dyed
    return _hsv(rng.uniform(0.05, 0.11), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.75))


def _pattern(rng, P: np.ndarray, up: np.ndarray, c1: np.ndarray, texel: float) -> np.ndarray:
    """Colour (N, 3) of a garment at rest positions P (N, 3): flat, stripes, checks, dots or
    blotches, in 3-D so the pattern is continuous across UV seams; no detail finer than 3 texels
    (`texel` metres) so the texture itself does not alias."""
    kind = rng.choice(["flat", "flat", "stripes", "checks", "dots", "blotches"])
    c2 = cloth_colour(rng)
    n = len(P)
    if kind == "flat":
        m = np.zeros(n, np.float32)
    elif kind in ("stripes", "checks"):
        d = up + rng.normal(0, 0.25 if rng.random() < 0.7 else 1.0, 3)
        d /= np.linalg.norm(d)
        period = rng.uniform(max(0.015, 3 * texel), max(0.1, 6 * texel))
        m = ((P @ d / period + rng.uniform()) % 1.0) < rng.uniform(0.25, 0.6)
        if kind == "checks":
            e = np.cross(d, rng.normal(size=3))
            e /= np.linalg.norm(e)
            m = m ^ (((P @ e / period) % 1.0) < 0.5)
        m = m.astype(np.float32)
    elif kind == "dots":
        period = rng.uniform(max(0.03, 4 * texel), max(0.08, 8 * texel))
        q = (P / period + rng.uniform(size=3)) % 1.0 - 0.5
        m = (np.linalg.norm(q, axis=1) < rng.uniform(0.2, 0.4)).astype(np.float32)
    else:
        w = rng.normal(size=(4, 3)) / rng.uniform(max(0.04, 4 * texel), max(0.15, 8 * texel))
        field = np.sin(P @ w.T + rng.uniform(0, 2 * np.pi, 4)).sum(1)
        m = (field > rng.uniform(-0.5, 0.5)).astype(np.float32)
    return lerp_colour(m, c1, c2)


def paint_texture(rng: np.random.Generator, space: TextureSpace) -> np.ndarray:
    """(T, T, 3) float32 albedo in the UV layout (`paint_colours` on every reachable texel,
    grey elsewhere)."""
    t = space.size
    tex = np.full((t * t, 3), 0.5, np.float32)
    tex[space.texel] = paint_colours(rng, space, np.arange(len(space.texel)))
    return tex.reshape(t, t, 3)


def paint_colours(rng: np.random.Generator, space: TextureSpace, rows: np.ndarray) -> np.ndarray:
    """Skin, hair, a top (sleeveless, short or long sleeves), a bottom (shorts to trousers),
    shoes, each garment flat or patterned, at the texels `rows` of the space -> (n, 3) float32.
    The random draws do not depend on `rows`: a subset is painted exactly as in the whole."""
    lm = space.landmarks
    region = space.region[rows]
    reg = {r: region == i for i, r in enumerate(REGIONS)}
    h, front, arm, rest = space.height[rows], space.front[rows], space.arm[rows], space.rest[rows]
    up = space.up
    grain = 1 + 0.04 * np.sin(rest @ (rng.normal(size=3) / 0.02).astype(np.float32))   # skin grain
    col = lerp_colour(grain, np.zeros(3), skin_colour(rng))

    waist = lm["hip"] + rng.uniform(0.05, 0.3) * (lm["shoulder"] - lm["hip"])
    torso = reg["torso"] | reg["hips"]
    if rng.random() < 0.95:                                   # a top
        sleeve = rng.choice([0.0, rng.uniform(0.08, 0.22), lm["arm_length"] * rng.uniform(0.6, 1.05)])
        collar = lm["neck"] - rng.uniform(0.0, 0.12)
        deep = front > lm["torso_front"]                      # the neckline is deeper in front
        hem = waist - rng.uniform(-0.05, 0.12)
        top = torso & (h > hem) & ((h < collar) | ~deep & (h < lm["neck"]))
        top |= (reg["upper_arm"] | reg["forearm"]) & (arm < sleeve)
        col[top] = _pattern(rng, rest[top], up, cloth_colour(rng), lm["texel"])
    if rng.random() < 0.97:                                   # a bottom
        hem = rng.choice([lm["ankle"] + rng.uniform(-0.02, 0.06),
                          lm["knee"] + rng.uniform(-0.15, 0.1),
                          lm["knee"] + rng.uniform(0.1, 0.6) * (lm["hip"] - lm["knee"])])
        legs = reg["thigh"] | reg["shin"] | reg["hips"] | reg["foot"]
        bottom = (legs & (h > hem)) | (torso & (h < waist))
        col[bottom] = _pattern(rng, rest[bottom], up, cloth_colour(rng), lm["texel"])
        if rng.random() < 0.3:                                # a belt
            belt = bottom & (np.abs(h - waist) < 0.018)
            col[belt] = cloth_colour(rng) * 0.6
    if rng.random() < 0.9:                                    # shoes or boots
        shoe = reg["foot"] | (reg["shin"] & (h < lm["ankle"] + rng.choice([0.02, rng.uniform(0.05, 0.25)])))
        col[shoe] = cloth_colour(rng) * rng.uniform(0.3, 1.0)
    if rng.random() < 0.9:                                    # hair
        head = reg["head"]
        cap = head & (h > lm["top"] - rng.uniform(0.03, 0.09))
        back = head & (front < lm["head_front"] - rng.uniform(0.0, 0.03)) & (h > lm["top"] - rng.uniform(0.08, 0.25))
        hair = cap | back
        streaks = 1 + 0.08 * np.sin(rest[hair] @ (rng.normal(size=3) / 0.004).astype(np.float32))
        col[hair] = lerp_colour(streaks, np.zeros(3), hair_colour(rng))
    return np.clip(col, 0, 1)


# ----------------------------------------------------------------------------- backgrounds

def _noise(rng, size: int, cells: int, channels: int = 3) -> np.ndarray:
    """Smooth value noise in [0, 1]: random cells**2 values upsampled bicubically."""
    import cv2
    small = rng.random((cells, cells, channels)).astype(np.float32)
    out = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(out.reshape(size, size, channels), 0, 1)


def _axes(size: int):
    """Centred pixel coordinates as a column (S, 1) and a row (1, S), for broadcasting."""
    c = (np.arange(size, dtype=np.float32) + 0.5 - size / 2)
    return c[:, None], c[None, :]


def _gradient(rng, size: int) -> np.ndarray:
    a, b = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = _axes(size)
    return lerp_colour(np.clip(0.5 + (xx * np.cos(ang) + yy * np.sin(ang)) / size, 0, 1), a, b)


def _tiles(rng, size: int) -> np.ndarray:
    """Stripes or a checkerboard with random period and angle (floors, walls, fabric)."""
    a, b = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
    ang = rng.uniform(0, np.pi)
    period = rng.uniform(4, 40) * size / 96
    yy, xx = _axes(size)
    u = np.floor((xx * np.cos(ang) + yy * np.sin(ang)) / period)
    if rng.random() < 0.5:
        m = u % 2 == 0
    else:
        m = (u + np.floor((-xx * np.sin(ang) + yy * np.cos(ang)) / period)) % 2 == 0
    return lerp_colour(m.astype(np.float32), b, a)


def _shapes(rng, img: np.ndarray, count: int) -> np.ndarray:
    import cv2
    size = img.shape[0]
    sh = 4
    for _ in range(count):
        c = tuple(float(x) for x in rng.random(3))
        k = rng.integers(3)
        p = (rng.random(2) * size * (1 << sh)).astype(np.int64)
        r = int(rng.uniform(0.03, 0.35) * size * (1 << sh))
        if k == 0:
            cv2.circle(img, (int(p[0]), int(p[1])), r, c, -1, cv2.LINE_AA, sh)
        elif k == 1:
            q = p + (rng.uniform(-1, 1, 2) * r * 2).astype(np.int64)
            cv2.rectangle(img, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), c, -1, cv2.LINE_AA, sh)
        else:
            pts = (p[None] + rng.uniform(-1, 1, (int(rng.integers(3, 7)), 2)) * r).astype(np.int32)
            cv2.fillPoly(img, [pts], c, cv2.LINE_AA, sh)
    return img


BACKGROUND_RES = 128        # larger backgrounds are drawn at this size and upsampled (soft, like defocus)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A procedural scene: a base layer (value noise, gradient, tiles, or a wall/floor split),
    random shapes, then maybe defocus blur. -> (size, size, 3) float32 in [0, 1]."""
    import cv2
    if size > BACKGROUND_RES:
        small = background(rng, BACKGROUND_RES)
        return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    k = rng.integers(4)
    if k == 0:                                            # two-colour value noise, a little colour jitter
        w = _noise(rng, size, int(rng.integers(2, 16)), 1)[..., 0]
        img = lerp_colour(w, rng.random(3), rng.random(3)) + 0.15 * (_noise(rng, size, int(rng.integers(2, 8))) - 0.5)
    elif k == 1:
        img = _gradient(rng, size)
    elif k == 2:
        img = _tiles(rng, size)
    else:                                                 # wall over floor
        img = _gradient(rng, size)
        floor = _tiles(rng, size) if rng.random() < 0.5 else _noise(rng, size, int(rng.integers(3, 20)))
        horizon = int(rng.uniform(0.3, 0.9) * size)
        img[horizon:] = floor[horizon:]
    img = np.ascontiguousarray(np.clip(img, 0, 1), dtype=np.float32)
    if rng.random() < 0.7:
        img = _shapes(rng, img, int(rng.integers(1, 12)))
    if rng.random() < 0.3:
        img = img * (0.75 + 0.5 * _noise(rng, size, int(rng.integers(8, 32)), 1))   # (S, S, 3) * (S, S, 1)
    if rng.random() < 0.5:
        sigma = rng.uniform(0.5, 2.5) * size / 96
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return np.clip(img, 0, 1).astype(np.float32)
