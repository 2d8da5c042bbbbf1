"""UVI's losses (issue #8): l_dismag (paper eq. 7) and DecoMR's consistency loss."""
import numpy as np
import pytest
import torch

from uvhmr.data.render import covered, interpolate_corners, rasterize
from uvhmr.data.scene import canonical_rotation
from uvhmr.losses import consistency_loss, dismag_loss
from uvhmr.uv.assets import load_uv_assets
from uvhmr.uv.gt import root_of

RES = 128           # UVI's output resolution


@pytest.fixture(scope="module")
def uv(anny, tiny_uv_dir):
    return load_uv_assets(tiny_uv_dir, anny.faces.numpy())


def mirror_symmetric(a: torch.Tensor) -> torch.Tensor:
    """(B, 3, R, R) -> the average of `a` and its body mirror (UV flip, x negated): a map whose
    texel c holds the mirror image of texel R - 1 - c's vector, so equal magnitudes but not
    equal vectors (the loss must compare magnitudes)."""
    m = a.flip(-1) * torch.tensor([-1.0, 1, 1]).reshape(1, 3, 1, 1)
    return (a + m) / 2


def test_dismag_is_zero_for_a_symmetric_map_and_grows_when_one_side_is_scaled(uv):
    on = uv.auv(14, RES) >= 0
    g = torch.Generator().manual_seed(0)
    sym = mirror_symmetric(torch.randn(2, 3, RES, RES, generator=g) * 0.1) * on
    assert not torch.allclose(sym, sym.flip(-1))                     # not trivially flip-invariant
    assert dismag_loss(sym, on) < 1e-8
    # Texels off the body (in either the texel or its mirror) do not count.
    noisy = sym + torch.randn(2, 3, RES, RES, generator=g) * ~(on & on.flip(-1))
    assert dismag_loss(noisy, on) < 1e-8

    # The image's left half (u < 0.5) scaled by 1.2: every pair differs by 0.2 x the magnitude.
    left = (torch.arange(RES) < RES // 2).to(sym.dtype)
    scaled = sym * (1 + 0.2 * left)
    both = on & on.flip(-1)
    expected = 0.2 * sym.norm(dim=1)[:, both].mean()
    got = dismag_loss(scaled, on)
    assert got > 0.01 and torch.isclose(got, expected, rtol=1e-4), (got, expected)
    assert dismag_loss(sym * (1 + 0.4 * left), on) > 1.9 * got     # linear in the asymmetry


def render_iuv(anny, uv, vertices: torch.Tensor, camera: torch.Tensor, size: int) -> torch.Tensor:
    """The IUV image (3, S, S) of root-relative camera-frame vertices (V, 3) seen through the weak-
    perspective camera (s, tx, ty): the z-buffer rasterizer at the pixel centres on the projected
    vertices, with depth pushed 1 km back so its perspective-correct barycentrics are affine."""
    n = camera[0].double() * (vertices[:, :2].double() + camera[1:].double())       # 2 x / S - 1
    grid = ((n + 1) * size / 2 - 0.5).numpy()                                         # centres at integers
    r = rasterize(grid, vertices[:, 2].double().numpy() + 1000.0, anny.faces.numpy(), size, size)
    idx, f, bary = covered(r)
    iuv = np.zeros((3, size * size), np.float32)
    iuv[0, idx] = 1
    iuv[1:, idx] = interpolate_corners(f, bary, uv.face_uv.astype(np.float64)).T
    return torch.from_numpy(iuv.reshape(3, size, size))


def test_consistency_is_near_zero_on_ground_truth_and_grows_with_a_camera_error(anny, uv):
    size = 64
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        o = anny(torch.randn(2, anny.num_joints, 3, generator=g) * 0.3, anny.sample_shape(2, seed=2))
    C = torch.as_tensor(canonical_rotation(anny.up_axis), dtype=torch.float32)
    verts = (o.vertices - root_of(o.lsp14)) @ C.T                     # camera frame, mid-hip-relative
    cams = []
    for v in verts:                                                    # fill 85 % of the crop, off-centre
        lo, hi = v[:, :2].min(0).values, v[:, :2].max(0).values
        cams.append(torch.cat([1.7 / (hi - lo).max()[None], -(lo + hi) / 2 + torch.tensor([0.03, -0.02])]))
    cam = torch.stack(cams)
    iuv = torch.stack([render_iuv(anny, uv, v, c, size) for v, c in zip(verts, cam)])
    assert (iuv[:, 0].sum((1, 2)) > 400).all()
    uv_l = uv.sampler(RES).from_vertices(verts)                       # UV_l through the UV sampler

    gt = consistency_loss(uv_l, cam, iuv)
    # Measured 1.8e-6, i.e. 0.04 px RMS at 64 px: what remains is UV_l's bilinear sampling at 128.
    assert gt.sqrt() * size / 2 < 0.1, f"{float(gt.sqrt() * size / 2):.3f} px RMS on ground truth"
    losses = []
    n = iuv[:, 0].sum((1, 2))
    for d in (0.005, 0.01, 0.02, 0.04):
        losses.append(consistency_loss(uv_l, cam + torch.tensor([0, d, 0]), iuv))
        # Shifting tx by d moves every projection by s d: loss = gt + cross term + E[s^2] d^2, and
        # by Cauchy-Schwarz the cross term is at most 2 sqrt(gt E[s^2] d^2).
        shift = (n * cam[:, 0] ** 2).sum() / n.sum() * d ** 2
        assert (losses[-1] - gt - shift).abs() <= 2 * (gt * shift).sqrt() + 1e-9
    assert all(a < b for a, b in zip(losses, losses[1:]))
    assert losses[2] > 100 * gt                                        # 0.02 in tx: 0.86 px RMS
    assert consistency_loss(uv_l, cam * torch.tensor([1.05, 1, 1]), iuv) > 100 * gt
