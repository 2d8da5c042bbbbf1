"""UVI (issue #8): the UNet's shapes, its input stacking, and the inference that turns UV maps
into joints and a mesh."""
import pytest
import torch

from uvhmr.models.uvi import OUT_RES, UVINet, infer, input_channels, load_uvi, stack_inputs
from uvhmr.uv.assets import load_uv_assets
from uvhmr.uv.gt import distribute_joints, gt_uv_maps, root_of
from uvhmr.uv.texels import UVSampler, build_lookup

FEATURES = 32       # DMP's local feature channels


def test_unet_maps_64_to_128_and_refines_the_camera():
    torch.manual_seed(0)
    net = UVINet(FEATURES + 19).eval()
    x, cam = torch.randn(2, FEATURES + 19, 64, 64), torch.tensor([[0.9, 0.1, -0.05], [1.1, 0.0, 0.2]])
    with torch.no_grad():
        out = net(x, cam)
    assert set(out) == {"uv_l", "uv_j", "uv_d", "camera"}
    for k in ("uv_l", "uv_j", "uv_d"):
        assert out[k].shape == (2, 3, OUT_RES, OUT_RES) and torch.isfinite(out[k]).all(), k
    assert out["camera"].shape == (2, 3)
    # The correction starts at zero (DMP's camera), and it is learnable: one step moves it.
    assert torch.equal(out["camera"], cam)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    (net(x, cam)["camera"] - cam - 1).abs().sum().backward()
    opt.step()
    with torch.no_grad():
        assert not torch.allclose(net.eval()(x, cam)["camera"], cam)


def test_stack_inputs_channels_and_switches():
    g = torch.Generator().manual_seed(0)
    b, r = 2, 64
    labels = torch.full((r, r), -1)
    labels[10:20, 10:20] = 3
    dmp = {"uv_feat": torch.randn(b, FEATURES, r, r, generator=g).half(),
           "uv_maps": torch.randn(b, 9, r, r, generator=g).half(),
           "hits": torch.randint(0, 3, (b, r, r), generator=g).to(torch.uint8),
           "camera": torch.tensor([[0.8, 0.1, 0.2], [1.0, -0.1, 0.0]])}
    ik = {"uv_l": torch.randn(b, 3, r, r, generator=g).half(),
          "uv_j": distribute_joints(torch.randn(b, 14, 3, generator=g), labels).half()}
    x, cam = stack_inputs(dmp, ik, True, True)
    assert x.shape == (b, FEATURES + 19, r, r) and x.dtype == torch.float32 and torch.equal(cam, dmp["camera"])
    assert input_channels(FEATURES) == x.shape[1]       # what the trainer, predict and the benches size UVI by
    assert torch.equal(x[:, :FEATURES], dmp["uv_feat"].float())
    assert torch.equal(x[:, FEATURES:FEATURES + 9], dmp["uv_maps"].float())
    assert torch.equal(x[:, FEATURES + 9], (dmp["hits"] > 0).float())
    il, ij = ik["uv_l"].float(), ik["uv_j"].float()
    assert torch.equal(x[:, -9:-3], torch.cat([il, ij], 1))
    on = labels >= 0                                                   # UV_d only where A_uv labels a texel
    assert torch.equal(x[:, -3:][..., on], (il - ij)[..., on]) and (x[:, -3:][..., ~on] == 0).all()
    x0, cam0 = stack_inputs(dmp, ik, False, True)                      # uvi14_nodmp
    assert (x0[:, :FEATURES + 10] == 0).all() and torch.equal(x0[:, -9:], x[:, -9:])
    assert torch.equal(cam0, dmp["camera"])                           # DMP still runs upstream
    x1, cam1 = stack_inputs(dmp, ik, True, False)                      # uvi14_noik
    assert (x1[:, -9:] == 0).all() and torch.equal(x1[:, :-9], x[:, :-9]) and torch.equal(cam1, cam)


@pytest.fixture(scope="module")
def posed(anny):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        o = anny(torch.randn(4, anny.num_joints, 3, generator=g) * 0.3, anny.sample_shape(4, seed=1))
    root = root_of(o.lsp14)
    return o.vertices - root, o.lsp14 - root, root


def test_inference_on_ground_truth_maps_gives_the_joints_and_mesh(anny, tiny_uv_dir, posed):
    """UVI's inference on the ground-truth UV maps at its output resolution (128): joints are the
    A_uv part means of UV_j, exact; the mesh is UV_l sampled at each vertex's UV.

    The mesh misses the 2 mm target at 128: mean 2.21 mm, median 1.54 mm, max 19 mm (4 posed
    Anny bodies). Not a bug but the map's resolution: 13,348 vertices against 6,646 covered
    texels, median triangle edge 0.3 texel on the head, hands and feet and 1.1 on the body, so
    the bilinear sample of the four texels around a vertex cuts across creases of the surface.
    The error is first order in the texel size: mean 4.90 mm at 64, 2.21 at 128, 0.93 at 256."""
    verts, joints, root = posed
    uv = load_uv_assets(tiny_uv_dir, anny.faces.numpy())
    s, lab = uv.sampler(OUT_RES), uv.auv(14, OUT_RES)
    uv_l, uv_j, uv_d = gt_uv_maps(s, lab, verts + root, joints + root, root)
    j, v = infer({"uv_l": uv_l, "uv_j": uv_j, "uv_d": uv_d}, s, lab)
    assert j.shape == joints.shape and v.shape == verts.shape
    assert (j - joints).norm(dim=-1).max() < 1e-4                       # 0.1 mm: float32 rounding only
    err = (v - verts).norm(dim=-1)
    assert err.median() < 2e-3, f"median {err.median() * 1e3:.2f} mm"
    assert err.mean() < 2.5e-3, f"mean {err.mean() * 1e3:.2f} mm"      # 2.21 mm measured: see above
    # Doubling the resolution halves the error or better (a resolution limit, not a constant bias
    # such as a misaligned texel convention or wrongly averaged seam copies).
    s256 = UVSampler(anny.faces.numpy(), uv.face_uv, build_lookup(uv.face_uv, 256))
    err256 = (s256.to_vertices(s256.from_vertices(verts)) - verts).norm(dim=-1)
    assert err256.mean() < 0.5 * err.mean() and err256.mean() < 1.2e-3, f"{err256.mean() * 1e3:.2f} mm at 256"


def test_resolutions_are_the_model_files_config(tmp_path):
    """in_res / out_res: constructor arguments the model file records; a file written before they
    existed loads with the defaults (64 in, 128 out); a ratio that is not a power of two is refused."""
    net = UVINet(FEATURES + 19, 8, in_res=32, out_res=128)
    with torch.no_grad():
        out = net(torch.randn(1, FEATURES + 19, 32, 32), torch.zeros(1, 3))
    assert out["uv_l"].shape == (1, 3, 128, 128)
    cfg = {"in_channels": FEATURES + 19, "width": 8}
    torch.save({"state_dict": UVINet(FEATURES + 19, 8).state_dict(), "config": cfg}, tmp_path / "old.pt")
    loaded, _ = load_uvi(tmp_path / "old.pt")
    assert (loaded.in_res, loaded.out_res) == (64, 128)
    torch.save({"state_dict": net.state_dict(), "config": {**cfg, "in_res": 32, "out_res": 128}}, tmp_path / "new.pt")
    assert load_uvi(tmp_path / "new.pt")[0].in_res == 32
    with pytest.raises(ValueError, match="power of two"):
        UVINet(FEATURES + 19, 8, in_res=64, out_res=192)


def test_the_maps_start_at_iks_and_learn_a_correction(tmp_path):
    """residual (the default): at initialisation the maps are IK's input maps (its last 9 input
    channels), each texel repeated to the output resolution; one step changes them; without IK's
    inputs (zeros, `uvi14_noik`) they start at 0. A model file without `residual` in its config
    (written before it) loads as the plain UNet."""
    torch.manual_seed(0)
    net = UVINet(FEATURES + 19, 8)
    x, cam = torch.randn(2, FEATURES + 19, 64, 64), torch.zeros(2, 3)
    with torch.no_grad():
        out = net(x, cam)
    ik = x[:, -9:].repeat_interleave(2, -2).repeat_interleave(2, -1)
    assert torch.equal(torch.cat([out["uv_l"], out["uv_j"], out["uv_d"]], 1), ik)
    x0 = x.clone()
    x0[:, -9:] = 0
    with torch.no_grad():
        assert (net(x0, cam)["uv_l"] == 0).all()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    (net(x, cam)["uv_l"] - 1).abs().mean().backward()
    opt.step()
    with torch.no_grad():
        assert not torch.equal(net(x, cam)["uv_l"], out["uv_l"])
    plain = UVINet(FEATURES + 19, 8, residual=False)
    torch.save({"state_dict": plain.state_dict(), "config": {"in_channels": FEATURES + 19, "width": 8}}, tmp_path / "old.pt")
    assert load_uvi(tmp_path / "old.pt")[0].residual is False
    torch.save({"state_dict": net.state_dict(), "config": {"in_channels": FEATURES + 19, "width": 8, "residual": True}},
               tmp_path / "new.pt")
    assert load_uvi(tmp_path / "new.pt")[0].residual is True
