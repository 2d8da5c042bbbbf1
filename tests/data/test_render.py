"""The CPU rasterizer and deferred shading (uvhmr.data.render) against brute-force oracles."""
import numpy as np
import pytest
import torch

from uvhmr.data import render as R
from uvhmr.data.scene import canonical_rotation, intrinsics


def brute_force(verts_cam, faces, K, h, w, cull_back=False):
    """Per pixel centre: intersect the ray with every triangle (float64), keep the nearest."""
    o = np.zeros(3)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    d = np.stack([(xx - K[0, 2]) / K[0, 0], (yy - K[1, 2]) / K[1, 1], np.ones_like(xx)], -1).reshape(-1, 1, 3)
    v0, v1, v2 = (verts_cam[faces[:, i]][None] for i in range(3))
    e1, e2 = v1 - v0, v2 - v0
    p = np.cross(d, e2)
    det = (e1 * p).sum(-1)
    s = o - v0
    u = (s * p).sum(-1) / det
    q = np.cross(s, e1)
    v = (d * q).sum(-1) / det
    t = (e2 * q).sum(-1) / det
    hit = (u >= -1e-12) & (v >= -1e-12) & (u + v <= 1 + 1e-12) & (t > 0)
    if cull_back:
        n = np.cross(e1, e2)
        hit &= (n * v0).sum(-1) < 0
    t = np.where(hit, t, np.inf)
    f = t.argmin(1)
    depth = t[np.arange(len(f)), f]          # direction has z = 1, so t is the camera depth
    face = np.where(np.isfinite(depth), f, -1)
    bary = np.stack([1 - u - v, u, v], -1)[np.arange(len(f)), f]
    return face.reshape(h, w), bary.reshape(h, w, 3), depth.reshape(h, w)


@pytest.fixture(scope="module")
def soup():
    """40 random triangles 2-4 m in front of the camera, overlapping in depth."""
    rng = np.random.default_rng(0)
    c = rng.uniform([-0.6, -0.6, 2.0], [0.6, 0.6, 4.0], (40, 1, 3))
    v = (c + rng.normal(scale=0.35, size=(40, 3, 3))).reshape(-1, 3)
    return v, np.arange(120).reshape(40, 3), intrinsics(60.0, 48)


def test_rasterizer_matches_ray_casting_on_a_triangle_soup(soup):
    v, f, K = soup
    r = R.rasterize_view(v, f, K, 48, 48, cull_back=False)
    face, bary, depth = brute_force(v, f, K, 48, 48)
    assert (face >= 0).sum() > 500
    assert (r.face == face).mean() == 1.0
    on = face >= 0
    np.testing.assert_allclose(r.bary[on], bary[on], atol=1e-5)
    np.testing.assert_allclose(r.depth[on], depth[on], rtol=1e-6)
    assert np.isinf(r.depth[~on]).all()


def test_restricted_samples_give_the_same_answer_there(soup):
    v, f, K = soup
    full = R.rasterize_samples(R.project(v, K) - 0.5, v[:, 2], f, 48, 48, cull_back=False)
    mask = np.random.default_rng(1).random((48, 48)) < 0.3
    part = R.rasterize_samples(R.project(v, K) - 0.5, v[:, 2], f, 48, 48, cull_back=False, samples=mask)
    keep = mask.reshape(-1)[full.pix]
    assert np.array_equal(part.pix, full.pix[keep]) and np.array_equal(part.face, full.face[keep])
    np.testing.assert_array_equal(part.bary, full.bary[keep])


@pytest.fixture(scope="module")
def body_view(anny):
    with torch.no_grad():
        out = anny(anny.reference_pose(1), anny.mean_shape()[None])
    R0 = canonical_rotation(anny.up_axis)
    K = intrinsics(3.0 * 96, 96)
    v = out.vertices[0].double().numpy() @ R0.T
    v = v + np.array([0.0, 0.0, 3.0 * 1.6 / 0.8 - v[:, 2].min()])
    return v, anny.faces.numpy(), K, anny.face_uv.numpy()


def test_anny_faces_point_outward_so_culling_changes_nothing(body_view):
    v, f, K, _ = body_view
    culled = R.rasterize_view(v, f, K, 96, 96)
    both = R.rasterize_view(v, f, K, 96, 96, cull_back=False)
    assert culled.mask.sum() > 300
    assert (culled.face == both.face).mean() == 1.0


def test_fine_grid_contains_the_pixel_centres(body_view):
    v, f, K, _ = body_view
    gt = R.rasterize_view(v, f, K, 96, 96)
    fine = R.rasterize_view(v, f, K, 96, 96, fine=True)
    assert fine.face.shape == (193, 193)
    assert (fine.centres().face == gt.face).mean() > 0.9999
    np.testing.assert_allclose(fine.centres().depth[gt.mask], gt.depth[gt.mask], rtol=1e-6)


def test_edge_aware_anti_aliasing_equals_shading_the_whole_half_pixel_grid(body_view):
    """render_rgba shades the half-pixel grid only near edges; away from them the tent of a
    uniform surface is its centre value. Compare with shading everything on that grid."""
    import cv2
    v, f, K, uv = body_view
    tex = cv2.resize(np.random.default_rng(2).random((4, 4, 3)).astype(np.float32), (64, 64))   # smooth
    premult, alpha, centres = R.render_rgba(v, f, K, 96, 96, uv, tex)
    fine = R.rasterize_view(v, f, K, 96, 96, fine=True)
    ref = R.tent_reduce(np.concatenate([R.shade(fine, v, f, uv, tex), fine.mask[..., None].astype(np.float32)], -1))
    assert (alpha == 1).sum() > 200 and ((alpha > 0) & (alpha < 1)).sum() > 50
    bad = np.abs(ref[..., 3] - alpha) > 1e-6
    assert bad.sum() <= 3                     # sub-pixel slivers no pixel centre sees
    # Inside a uniform surface the centre colour stands for the tent (texture varies slightly).
    assert np.abs(ref[..., :3] - premult)[~bad].mean() < 2e-3
    assert np.array_equal(centres.face, R.rasterize_view(v, f, K, 96, 96).face)


def test_shading_is_deterministic_and_lambertian(body_view):
    v, f, K, _ = body_view
    light = R.Light((0.0, 0.0, -1.0), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    a = R.render_rgba(v, f, K, 96, 96, light=light, color=(1, 1, 1))
    b = R.render_rgba(v, f, K, 96, 96, light=light, color=(1, 1, 1))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    full = a[1] == 1
    # Facing the camera and the light: bright; never above the light's intensity.
    assert a[0][full].max() <= 1.0 + 1e-6 and np.median(a[0][full][:, 0]) > 0.6


def test_overlay_changes_only_pixels_the_mesh_covers(body_view):
    v, f, K, _ = body_view
    img = np.full((96, 96, 3), 40, np.uint8)
    out = R.draw_mesh_overlay(img, v, f, K)
    _, alpha, _ = R.render_rgba(v, f, K, 96, 96)
    changed = (out != img).any(-1)
    assert changed.sum() > 300 and not changed[alpha == 0].any()
    sk = R.draw_skeleton(img, np.array([[10.5, 10.5], [40.5, 50.5]] + [[20.5, 20.5]] * 12), R.LSP14_PARENTS)
    assert sk.shape == img.shape and (sk != img).any()


def test_vertex_behind_the_camera_is_an_error(soup):
    v, f, K = soup
    with pytest.raises(ValueError, match="behind the camera"):
        R.rasterize_view(v - [0, 0, 3.0], f, K, 48, 48)
