"""CPU renderer: a vectorised z-buffer rasterizer (face, barycentrics, depth per sample) and
deferred shading (texture through the per-sample UV, Lambert light), plus mesh overlays.

Image convention (the one place it is written): continuous pixel coordinates, pixel (row r,
column c) covers [c, c+1) x [r, r+1) and its centre is (c + 0.5, r + 0.5); a camera K with
cx = W / 2, cy = H / 2 looks through the image centre. Camera frame: OpenCV (x right, y down,
z forward), metres.

Ground truth and image come from one rasterization: the pixel-centre raster (`rasterize_view`)
gives the per-pixel face, perspective-correct barycentrics and depth, and the image is shaded from
it (deferred shading). Anti-aliasing keeps that alignment: the image is what shading a half-pixel
grid of (2H + 1) x (2W + 1) points (pixel corners, edge midpoints, centres; its odd rows and
columns are the pixel centres) and reducing it by the 3 x 3 tent [1, 2, 1] / 4 per axis around
each centre would give; `render_rgba` computes that only near silhouettes and occlusion
boundaries, where it differs from the centre sample.

No system packages, no GL: numpy, OpenCV (texture lookup, morphology), torch (sparse sums).
Deterministic, thread-free, safe in DataLoader workers. Exact: the faces it picks agree with ray
casting (tests/data/test_render.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Barycentric tolerance: samples exactly on a shared edge must not fall between two triangles
# through rounding; the z-test then keeps one.
_EDGE_EPS = 1e-9


@dataclass
class Raster:
    """Per sample: face (H, W) int32, -1 = background; bary (H, W, 3) float32, perspective-correct,
    in the order of the face's vertices; depth (H, W) float32 camera z (metres), inf = background."""
    face: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.face >= 0

    def centres(self) -> "Raster":
        """A fine (half-pixel) raster -> the pixel-centre raster it contains."""
        return Raster(self.face[1::2, 1::2], self.bary[1::2, 1::2], self.depth[1::2, 1::2])


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixel coordinates (x, y) (continuous convention)."""
    p = np.asarray(points, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    z = p[..., 2:3]
    return np.concatenate([K[0, 0] * p[..., 0:1] / z + K[0, 1] * p[..., 1:2] / z + K[0, 2],
                           K[1, 1] * p[..., 1:2] / z + K[1, 2]], -1)


@dataclass
class Samples:
    """The visible surface at the covered points of a sample grid, sparse: pix (M,) int64 flat
    grid index, increasing; face (M,) int64; bary (M, 3) float64 perspective-correct; depth (M,)
    float64 camera z (metres)."""
    pix: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    depth: np.ndarray


@dataclass
class ScreenFaces:
    """The drawable faces of one view in screen units: fid (M,) face ids; x, y (3, M) corner
    coordinates; area (M,) signed double area; iz (3, M) corner 1 / depth. Made once per view
    (`view_faces`) and shared by the pixel-centre and half-pixel rasters."""
    fid: np.ndarray
    x: np.ndarray
    y: np.ndarray
    area: np.ndarray
    iz: np.ndarray

    def to_grid(self, scale: float, offset: float) -> "ScreenFaces":
        """Screen units -> grid units g = scale * p + offset."""
        return ScreenFaces(self.fid, self.x * scale + offset, self.y * scale + offset, self.area * scale * scale,
                           self.iz)


def screen_faces(xy: np.ndarray, z: np.ndarray, faces: np.ndarray, cull_back: bool = True) -> ScreenFaces:
    """xy (V, 2) projected vertices, z (V,) camera depth > 0, faces (F, 3) -> ScreenFaces.
    A face is front-facing when its projected corners run clockwise on screen (counter-clockwise
    in a y-up view), i.e. its normal points at the camera for outward-oriented meshes; with
    `cull_back` only those are kept."""
    xy = np.asarray(xy, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if (z <= 0).any():
        raise ValueError("rasterize: a vertex is at or behind the camera (z <= 0); move the camera back")
    # Corner coordinates as separate rows: reductions over a length-3 axis are slow in numpy.
    f = np.asarray(faces).T
    x, y = xy[:, 0][f], xy[:, 1][f]
    area = (x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0])
    fid = np.flatnonzero((area < 0) if cull_back else (area != 0))
    return ScreenFaces(fid, x[:, fid], y[:, fid], area[fid], 1.0 / z[f[:, fid]])


def rasterize(xy: np.ndarray, z: np.ndarray, faces: np.ndarray, height: int, width: int,
              cull_back: bool = True, samples: np.ndarray | None = None) -> Raster:
    """Dense form of `rasterize_samples` (same arguments) -> Raster over the grid."""
    return _dense(rasterize_samples(xy, z, faces, height, width, cull_back, samples), height, width)


def _dense(s: Samples, height: int, width: int) -> Raster:
    n = height * width
    face = np.full(n, -1, np.int32)
    bary = np.zeros((n, 3), np.float32)
    depth = np.full(n, np.inf, np.float32)
    face[s.pix], bary[s.pix], depth[s.pix] = s.face, s.bary, s.depth
    return Raster(face.reshape(height, width), bary.reshape(height, width, 3), depth.reshape(height, width))


def rasterize_samples(xy: np.ndarray, z: np.ndarray, faces: np.ndarray, height: int, width: int,
                      cull_back: bool = True, samples: np.ndarray | None = None) -> Samples:
    """Z-buffer rasterization with samples at the integer points of a height x width grid.

    xy (V, 2) vertex positions in grid units (x right, y down); z (V,) camera depth > 0;
    faces (F, 3); cull_back: see `screen_faces`. samples (height, width) bool, optional: only
    these grid points are rasterized, at a cost that follows the faces near them.
    -> Samples (ties in depth: the first face in candidate order)."""
    return scan(screen_faces(xy, z, faces, cull_back), height, width, samples)


def scan(sf: ScreenFaces, height: int, width: int, samples: np.ndarray | None = None) -> Samples:
    """Rasterize ScreenFaces (in grid units) on the integer points of a height x width grid."""
    x0, x1, x2 = sf.x
    y0, y1, y2 = sf.y
    lox = np.maximum(np.ceil(np.minimum(np.minimum(x0, x1), x2) - _EDGE_EPS), 0).astype(np.int64)
    hix = np.minimum(np.floor(np.maximum(np.maximum(x0, x1), x2) + _EDGE_EPS), width - 1).astype(np.int64)
    loy = np.maximum(np.ceil(np.minimum(np.minimum(y0, y1), y2) - _EDGE_EPS), 0).astype(np.int64)
    hiy = np.minimum(np.floor(np.maximum(np.maximum(y0, y1), y2) + _EDGE_EPS), height - 1).astype(np.int64)
    nx, ny = hix - lox + 1, hiy - loy + 1
    n = np.where((nx > 0) & (ny > 0), nx * ny, 0)
    if samples is not None:
        # Drop faces whose box holds no wanted sample (summed-area table query per face).
        import cv2
        sat = cv2.integral(samples.astype(np.uint8))            # (H + 1, W + 1) int32
        ok = n > 0
        hy, hx, ly, lx = np.where(ok, hiy + 1, 0), np.where(ok, hix + 1, 0), np.where(ok, loy, 0), np.where(ok, lox, 0)
        n = np.where(sat[hy, hx] - sat[ly, hx] - sat[hy, lx] + sat[ly, lx] > 0, n, 0)
    # Every grid point in each face's bounding box (triangles are a few samples wide at most).
    cand = np.repeat(np.arange(len(n)), n)
    k = np.arange(len(cand)) - np.repeat(np.cumsum(n) - n, n)
    nxc = nx[cand]
    row = k // nxc
    col = lox[cand] + (k - row * nxc)
    row += loy[cand]
    if samples is not None:
        keep = samples[row, col]
        cand, col, row = cand[keep], col[keep], row[keep]
    px, py = col.astype(np.float64), row.astype(np.float64)
    ax, ay, bx, by, cx, cy = x0[cand], y0[cand], x1[cand], y1[cand], x2[cand], y2[cand]
    # Edge functions: lam_i is the signed area opposite corner i, normalised by the face's area.
    a = sf.area[cand]
    l0 = ((bx - px) * (cy - py) - (by - py) * (cx - px)) / a
    l1 = ((cx - px) * (ay - py) - (cy - py) * (ax - px)) / a
    l2 = 1.0 - l0 - l1
    inside = (l0 >= -_EDGE_EPS) & (l1 >= -_EDGE_EPS) & (l2 >= -_EDGE_EPS)
    c = cand[inside]
    pix = (row * width + col)[inside]
    # Perspective-correct interpolation: 1/z is linear on screen.
    q0 = np.maximum(l0[inside], 0) * sf.iz[0][c]
    q1 = np.maximum(l1[inside], 0) * sf.iz[1][c]
    q2 = np.maximum(l2[inside], 0) * sf.iz[2][c]
    depth = 1.0 / (q0 + q1 + q2)
    win = _nearest(pix, depth)
    d = depth[win]
    bary = np.stack([q0[win] * d, q1[win] * d, q2[win] * d], 1)
    return Samples(pix[win], sf.fid[c[win]], bary, d)


def _nearest(pix: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Z-test: index of the nearest candidate of each grid point, in increasing point order.
    One stable argsort of point + depth scaled into [0, 0.5): float64 keeps 1e-10 m of depth
    resolution next to point indices up to millions."""
    if len(pix) == 0:
        return np.zeros(0, np.int64)
    lo, hi = depth.min(), depth.max()
    key = pix + 0.5 * (depth - lo) / (hi - lo + 1e-12)
    order = np.argsort(key, kind="stable")
    ps = pix[order]
    first = np.ones(len(ps), bool)
    first[1:] = ps[1:] != ps[:-1]
    return order[first]


def rasterize_view(verts_cam: np.ndarray, faces: np.ndarray, K: np.ndarray, height: int, width: int,
                   fine: bool = False, cull_back: bool = True, screen: ScreenFaces | None = None) -> Raster:
    """verts_cam (V, 3) camera frame (metres) -> Raster at the pixel centres (H, W), or with
    `fine` on the half-pixel grid (2H + 1, 2W + 1) whose `centres()` are the pixel centres.
    screen: `view_faces(verts_cam, faces, K)` if already made (it fixes the culling)."""
    sf = view_faces(verts_cam, faces, K, cull_back) if screen is None else screen
    if fine:
        return _dense(scan(sf.to_grid(2.0, 0.0), 2 * height + 1, 2 * width + 1), 2 * height + 1, 2 * width + 1)
    return _dense(scan(sf.to_grid(1.0, -0.5), height, width), height, width)


def view_faces(verts_cam: np.ndarray, faces: np.ndarray, K: np.ndarray, cull_back: bool = True) -> ScreenFaces:
    """ScreenFaces of a mesh seen by camera K, in continuous pixel coordinates."""
    return screen_faces(project(verts_cam, K), np.asarray(verts_cam)[:, 2], faces, cull_back)


# ----------------------------------------------------------------------------- interpolation

def covered(raster: Raster) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (flat indices of the covered samples (N,), their faces (N,), bary (N, 3) float64)."""
    flat = raster.face.reshape(-1)
    idx = np.flatnonzero(flat >= 0)
    return idx, flat[idx], raster.bary.reshape(-1, 3)[idx].astype(np.float64)


def interpolate_vertices(faces: np.ndarray, f: np.ndarray, bary: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-vertex values (V, C) at the samples on faces f (N,) with bary (N, 3) -> (N, C), in the
    dtype of `values`/`bary` (float64 for ground truth)."""
    vi = faces[f]
    return bary[:, 0:1] * values[vi[:, 0]] + bary[:, 1:2] * values[vi[:, 1]] + bary[:, 2:3] * values[vi[:, 2]]


def interpolate_corners(f: np.ndarray, bary: np.ndarray, corner_values: np.ndarray) -> np.ndarray:
    """Per-face-corner values (F, 3, C) (e.g. UVs) at the samples -> (N, C) (dtype of the inputs)."""
    c = corner_values[f]
    return bary[:, 0:1] * c[:, 0] + bary[:, 1:2] * c[:, 1] + bary[:, 2:3] * c[:, 2]


def incidence(faces: np.ndarray, num_vertices: int) -> torch.Tensor:
    """(V, F) sparse float32 vertex-face incidence (CSR): sums face values onto vertices in one
    matmul."""
    rows = np.asarray(faces).reshape(-1)
    cols = np.repeat(np.arange(len(faces)), 3)
    order = np.argsort(rows, kind="stable")
    crow = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=num_vertices))])
    import warnings
    with warnings.catch_warnings():          # "sparse CSR support is in beta": it is what we need
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols[order]),
                                       torch.ones(len(rows), dtype=torch.float32), size=(num_vertices, len(faces)))


def vertex_normals(verts: np.ndarray, faces: np.ndarray, inc: torch.Tensor | None = None) -> np.ndarray:
    """(V, 3), (F, 3) -> (V, 3) float32 unit area-weighted vertex normals (outward for outward
    faces); shading only, hence float32. `inc`: `incidence(faces, V)`, cached by the caller."""
    v = np.asarray(verts, np.float32)
    X, Y, Z = v[:, 0].copy(), v[:, 1].copy(), v[:, 2].copy()
    f0, f1, f2 = faces[:, 0], faces[:, 1], faces[:, 2]
    ax, ay, az = X[f0], Y[f0], Z[f0]
    ux, uy, uz = X[f1] - ax, Y[f1] - ay, Z[f1] - az
    wx, wy, wz = X[f2] - ax, Y[f2] - ay, Z[f2] - az
    fn = np.stack([uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx], 1)
    if inc is None:
        inc = incidence(faces, len(v))
    out = (inc @ torch.from_numpy(fn)).numpy()
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup. texture (T, T, C) float32 in the UV texel convention (texel (r, c) at
    u = c / (T - 1), v = 1 - r / (T - 1), edges replicated); uv (N, 2) -> (N, C) float32."""
    import cv2
    t = texture.shape[0]
    n = len(uv)
    # cv2 maps must stay under 32767 per side: lay the samples out as rows of 1024.
    rows = max(1, -(-n // 1024))
    mx = np.zeros(rows * 1024, np.float32)
    my = np.zeros(rows * 1024, np.float32)
    mx[:n] = uv[:, 0] * (t - 1)
    my[:n] = (1.0 - uv[:, 1]) * (t - 1)
    out = cv2.remap(texture, mx.reshape(rows, 1024), my.reshape(rows, 1024), interpolation=cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, texture.shape[2])[:n]


# ----------------------------------------------------------------------------- shading

@dataclass(frozen=True)
class Light:
    """Lambert light in the camera frame: direction (3,) from the surface towards the light;
    ambient, diffuse (3,) RGB intensities."""
    direction: tuple
    ambient: tuple
    diffuse: tuple


DEFAULT_LIGHT = Light((0.3, -0.5, -0.8), (0.45, 0.45, 0.45), (0.65, 0.65, 0.65))


def shade_samples(f: np.ndarray, b: np.ndarray, faces: np.ndarray, face_uv: np.ndarray | None,
                  texture: np.ndarray | None, light: Light, color, normals: np.ndarray) -> np.ndarray:
    """Colours (M, 3) float32 of surface samples on faces f (M,) with bary (M, 3): texture (or
    flat `color`) times ambient + diffuse * max(0, n . l), n the interpolated vertex normals
    (V, 3) (camera frame)."""
    b32 = b.astype(np.float32)      # colours need no float64
    n = interpolate_vertices(faces, f, b32, normals.astype(np.float32, copy=False))
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    ld = np.asarray(light.direction, np.float64)
    lam = np.clip(n @ (ld / np.linalg.norm(ld)).astype(np.float32), 0.0, None)
    if texture is not None:
        albedo = sample_texture(texture, interpolate_corners(f, b32, face_uv))
    else:
        albedo = np.broadcast_to(np.asarray(color, np.float32), (len(f), 3))
    out = np.empty((len(f), 3), np.float32)
    for c in range(3):      # per channel: numpy broadcasts (N, 1) x (1, 3) slowly
        out[:, c] = albedo[:, c] * (light.ambient[c] + light.diffuse[c] * lam)
    return out


def shade(raster: Raster, verts_cam: np.ndarray, faces: np.ndarray, face_uv: np.ndarray | None,
          texture: np.ndarray | None, light: Light = DEFAULT_LIGHT, color=(0.75, 0.75, 0.75),
          normals: np.ndarray | None = None) -> np.ndarray:
    """Deferred shading of the covered samples of a raster (`shade_samples`).
    -> (h, w, 3) float32 colour, 0 off the mesh."""
    h, w = raster.face.shape
    out = np.zeros((h * w, 3), np.float32)
    idx, f, b = covered(raster)
    if len(idx):
        vn = vertex_normals(verts_cam, faces) if normals is None else normals
        out[idx] = shade_samples(f, b, faces, face_uv, texture, light, color, vn)
    return out.reshape(h, w, 3)


def tent_reduce(fine: np.ndarray) -> np.ndarray:
    """(2H + 1, 2W + 1, ...) half-pixel grid -> (H, W, ...) by the separable [1, 2, 1] / 4 filter
    centred on each pixel centre (odd grid index)."""
    a = 0.25 * fine[0:-2:2] + 0.5 * fine[1::2] + 0.25 * fine[2::2]
    return 0.25 * a[:, 0:-2:2] + 0.5 * a[:, 1::2] + 0.25 * a[:, 2::2]


def edge_pixels(raster: Raster, depth_step: float = 0.05) -> np.ndarray:
    """(H, W) bool: pixels whose 3 x 3 neighbourhood holds a change of coverage or a depth jump
    of more than `depth_step` metres (an occlusion boundary) in a pixel-centre raster; these are
    the pixels that anti-aliasing has to resolve."""
    import cv2
    # Background counts as depth 0, so the coverage boundary is a depth jump too.
    d = np.where(raster.mask, raster.depth, 0.0).astype(np.float32)
    k = np.ones((3, 3), np.uint8)
    rng = cv2.dilate(d, k, borderType=cv2.BORDER_REPLICATE) - cv2.erode(d, k, borderType=cv2.BORDER_REPLICATE)
    return rng > depth_step


def _fine_blocks(edges: np.ndarray) -> np.ndarray:
    """(H, W) pixels -> (2H + 1, 2W + 1) half-pixel samples of their 3 x 3 tent footprints."""
    import cv2
    h, w = edges.shape
    centre = np.zeros((2 * h + 1, 2 * w + 1), np.uint8)
    centre[1::2, 1::2] = edges
    return cv2.dilate(centre, np.ones((3, 3), np.uint8)).astype(bool)


_TENT = np.outer([0.25, 0.5, 0.25], [0.25, 0.5, 0.25]).reshape(-1)
_OFF = np.arange(9) != 4                                 # the 8 taps around a pixel's centre
_TENT_OFF, _TAP_ROW, _TAP_COL = _TENT[_OFF], np.repeat([0, 1, 2], 3)[_OFF], np.tile([0, 1, 2], 3)[_OFF]


def render_rgba(verts_cam: np.ndarray, faces: np.ndarray, K: np.ndarray, height: int, width: int,
                face_uv: np.ndarray | None = None, texture: np.ndarray | None = None,
                light: Light = DEFAULT_LIGHT, color=(0.75, 0.75, 0.75), centres: Raster | None = None,
                normals: np.ndarray | None = None, screen: ScreenFaces | None = None):
    """Anti-aliased shaded mesh, with the pixel-centre raster it was shaded from.

    Pixels whose 3 x 3 neighbourhood is all one surface take the colour shaded at their centre;
    the others (`edge_pixels`) are rasterized again on the half-pixel grid, restricted to their
    tent footprints, shaded per sample and reduced by the [1, 2, 1] / 4 tent, as if the whole
    image had been shaded on that grid (`rasterize_view(fine=True)` + `tent_reduce`), at a
    fraction of the cost. centres: the pixel-centre raster, screen: `view_faces(...)`, if
    already made.
    -> (premultiplied RGB (H, W, 3) float32, alpha (H, W) float32, centre raster)."""
    vc = np.asarray(verts_cam, np.float64)
    sf = view_faces(vc, faces, K) if screen is None else screen
    if centres is None:
        centres = rasterize_view(vc, faces, K, height, width, screen=sf)
    if normals is None:
        normals = vertex_normals(vc, faces)
    idx, f, b = covered(centres)
    edges = edge_pixels(centres)
    fine = None
    if edges.any():
        # The footprints' samples other than the pixel centres, which the centre raster holds.
        need = _fine_blocks(edges)
        need[1::2, 1::2] = False
        fine = scan(sf.to_grid(2.0, 0.0), 2 * height + 1, 2 * width + 1, samples=need)
        f, b = np.concatenate([f, fine.face]), np.concatenate([b, fine.bary])
    shaded = shade_samples(f, b, faces, face_uv, texture, light, color, normals)
    col = np.zeros((height * width, 3), np.float32)
    col[idx] = shaded[:len(idx)]
    alpha = centres.mask.astype(np.float32).reshape(-1)
    if fine is not None:
        fcol = shaded[len(idx):]
        w2 = 2 * width + 1
        r, c = np.nonzero(edges)
        e = r * width + c
        taps = ((2 * r)[:, None] + _TAP_ROW[None]) * w2 + (2 * c)[:, None] + _TAP_COL[None]
        # Look the 8 off-centre taps of each edge pixel up among the covered fine samples
        # (sorted by index); the centre tap is the pixel's own centre sample.
        if len(fine.pix):
            at = np.minimum(np.searchsorted(fine.pix, taps), len(fine.pix) - 1)
            wt = _TENT_OFF[None] * (fine.pix[at] == taps)
            col_e = np.einsum("nk,nkc->nc", wt, fcol[at])
        else:
            wt, col_e = np.zeros(taps.shape), np.zeros((len(e), 3), np.float32)
        col[e] = col_e + 0.25 * col[e]
        alpha[e] = wt.sum(1) + 0.25 * alpha[e]
    return col.reshape(height, width, 3), alpha.reshape(height, width), centres


def over(premult: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Premultiplied foreground over a (H, W, 3) float background -> (H, W, 3) float32."""
    return (premult + (1.0 - alpha[..., None]) * background).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8, rounding half up (deterministic)."""
    return np.floor(np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- overlays

def draw_mesh_overlay(image: np.ndarray, verts_cam: np.ndarray, faces: np.ndarray, K: np.ndarray,
                      color=(0.55, 0.75, 1.0), opacity: float = 0.85, light: Light = DEFAULT_LIGHT) -> np.ndarray:
    """A shaded mesh drawn over a photo (what `uvhmr predict` writes).
    image (H, W, 3) uint8 RGB; verts_cam (V, 3) camera frame; K (3, 3) for this image -> uint8."""
    h, w = image.shape[:2]
    premult, alpha, _ = render_rgba(np.asarray(verts_cam, np.float64), faces, K, h, w, light=light, color=color)
    bg = image.astype(np.float32) / 255.0
    return to_uint8(over(opacity * premult, opacity * alpha, bg))


def draw_skeleton(image: np.ndarray, joints2d: np.ndarray, parents, color=(255, 64, 32),
                  radius: int = 2) -> np.ndarray:
    """Joints (K, 2) in pixels (continuous convention) joined to their parents (-1: none)."""
    import cv2
    out = np.ascontiguousarray(image.copy())
    shift = 4                                         # sub-pixel drawing: coordinates * 16
    pts = np.round((np.asarray(joints2d) - 0.5) * (1 << shift)).astype(np.int64)
    for k, par in enumerate(parents):
        if par >= 0:
            cv2.line(out, tuple(int(v) for v in pts[k]), tuple(int(v) for v in pts[par]), color, 1, cv2.LINE_AA, shift)
    for p in pts:
        cv2.circle(out, tuple(int(v) for v in p), radius << shift, color, -1, cv2.LINE_AA, shift)
    return out


# LSP-14 bones for skeleton drawings: (joint, parent) in SPIN order.
LSP14_PARENTS = (1, 2, 12, 12, 3, 4, 7, 8, 12, 12, 9, 10, 13, -1)
