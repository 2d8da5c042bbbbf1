"""J_initial: the mean of UV_j over each A_uv part's observed texels (issue #6 §4)."""
import torch

from uvhmr.config import UvAssetsParams
from uvhmr.uv.assets import build_uv_assets, load_uv_assets
from uvhmr.uv.gt import gt_uv_maps, joints_from_uv, root_of
from uvhmr.uv.texels import iuv_to_uv


def test_ground_truth_maps_warped_through_their_iuv_give_the_joints(anny, tmp_path):
    build_uv_assets(anny, UvAssetsParams(resolutions=[64]), tmp_path / "uv", log=lambda *a: None)
    uv = load_uv_assets(tmp_path / "uv", anny.faces.numpy())
    s, lab = uv.sampler(64), uv.auv(14, 64)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        o = anny(torch.randn(2, anny.num_joints, 3, generator=g) * 0.3, anny.sample_shape(2, seed=1))
        root = root_of(o.lsp14)
        uv_l, uv_j, uv_d = gt_uv_maps(s, lab, o.vertices, o.lsp14, root)
    # An "image" that sees every labelled texel once: pixel (r, c) shows texel (r, c).
    res = 64
    r, c = torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")
    iuv = torch.stack([(lab >= 0).float(), c / (res - 1), 1 - r / (res - 1)])[None].repeat(2, 1, 1, 1)
    hidden = 5                                               # L_ankle: hide its part in sample 0
    iuv[0, 0][lab == hidden] = 0
    warped, count = iuv_to_uv(torch.cat([uv_j, uv_l], 1), iuv, res)
    observed = count[:, 0] > 0
    on = observed[1]
    assert torch.allclose(warped[1, :3][:, on], uv_j[1][:, on]) and torch.allclose(warped[1, 3:][:, on], uv_l[1][:, on])
    joints, seen = joints_from_uv(warped[:, :3], observed, lab, 14)
    rel = o.lsp14 - root
    assert seen[1].all() and not seen[0, hidden] and seen[0].sum() == 13
    assert (joints[1] - rel[1]).norm(dim=-1).max() < 1e-3
    keep = torch.arange(14) != hidden
    assert (joints[0, keep] - rel[0, keep]).norm(dim=-1).max() < 1e-3
    assert (joints[0, hidden] == 0).all()
