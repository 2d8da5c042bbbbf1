"""predict (issue #8): DMP -> IK -> UVI end to end from the three model files, equal to the cache
rules + UVI inference on the same images."""
import numpy as np
import pytest
import torch

from uvhmr.cache.dmp import DmpCache, run_dmp_cache
from uvhmr.cache.ik import IkCache, run_ik_cache
from uvhmr.config import BodyModelParams, RuleParams, RunParams, StageParams
from uvhmr.data.dataset import SampleDataset
from uvhmr.models.dmp import DMPNet
from uvhmr.models.ik import IKNet
from uvhmr.models.uvi import OUT_RES, UVINet, infer, load_uvi, uvi_inputs
from uvhmr.predict import dense_camera, fit_weak_perspective, load_models, predict
from uvhmr.uv.assets import load_uv_assets

from tiny_data import SIZE

QUIET = lambda *a: None                                             # noqa: E731


def _perturb(layer: torch.nn.Module, std: float) -> None:
    """Zero-initialised output layers (DMP's camera, GIK-Net's pose, UVI's camera correction and map
    head) made random, so no stage passes a constant through and the comparison sees every stage."""
    with torch.no_grad():
        layer.weight.normal_(0, std)


@pytest.fixture(scope="module")
def model_files(anny, tmp_path_factory):
    """Randomly initialised dmp14, ik14 and uvi14 (width 8) saved as their trainers save them."""
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("models")
    dmp = DMPNet("resnet18", 2, parts=14)
    _perturb(dmp.camera[-1], 1e-3)
    (d / "dmp").mkdir()
    torch.save({"state_dict": dmp.state_dict(), "config": {"backbone": "resnet18", "out_stride": 2, "joints": 14,
                                                           "image_size": SIZE, "variant": "dmp14"}}, d / "dmp/dmp14.pt")
    ik = IKNet(anny.num_joints, anny.mean_shape())
    _perturb(ik.gik.mlp.out, 1e-2)
    (d / "ik/ik14").mkdir(parents=True)
    torch.save({"state_dict": ik.state_dict(), "config": {"num_bones": anny.num_joints, "shape_dim": len(anny.shape_labels),
                                                          "seed": 0, "variant": "ik14"}}, d / "ik/ik14/seed0.pt")
    uvi = UVINet(dmp.local[0].out_channels + 19, 8)
    _perturb(uvi.camera[-1], 1e-2)
    _perturb(uvi.head, 1e-2)
    (d / "uvi/uvi14").mkdir(parents=True)
    torch.save({"state_dict": uvi.state_dict(), "config": {"in_channels": dmp.local[0].out_channels + 19, "width": 8,
                                                           "residual": True,
                                                           "seed": 0, "variant": "uvi14", "use_dmp": True, "use_ik": True}},
               d / "uvi/uvi14/seed0.pt")
    return d


def _rule(rule: str, variant: str) -> RuleParams:
    # Batch 2: the caches' first batch is the 2 images predict() gets, so every op sees the same batch.
    return RuleParams("smoke", rule, variant, RunParams(seed=0, device="cpu"), BodyModelParams(), StageParams(batch_size=2))


def test_predict_equals_the_cache_path_and_uvi_inference(anny, anny_dir, tiny_uv_dir, tiny_split, model_files, tmp_path):
    torch.set_num_threads(1)
    m = model_files
    # The cache path: the dmp_cache and ik_cache rules, then UVI's evaluation inference.
    run_dmp_cache(_rule("dmp_cache", "dmp14"), m / "dmp/dmp14.pt", {"stage2_train": tiny_split, "test": tiny_split},
                  tiny_uv_dir, tmp_path / "dmp_cache", log=QUIET)
    run_ik_cache(_rule("ik_cache", "ik14"), m / "ik/ik14", tmp_path / "dmp_cache", anny_dir, tiny_uv_dir,
                 tmp_path / "ik_cache", log=QUIET)
    dmp, ik = DmpCache(tmp_path / "dmp_cache", "test"), IkCache(tmp_path / "ik_cache", "test")
    rows = np.arange(2)
    x, cam = uvi_inputs(dmp, ik, rows, True, True)
    net, _ = load_uvi(m / "uvi/uvi14/seed0.pt")
    uv = load_uv_assets(tiny_uv_dir, anny.faces.numpy())
    with torch.no_grad():
        out = net(x, cam)
        joints_c, verts_c = infer(out, uv.sampler(OUT_RES), uv.auv(14, OUT_RES))

    ds = SampleDataset(tiny_split, joints=14, augment=None, occlusion=True, seed=0)   # what dmp_cache read
    images = torch.stack([ds[int(i)]["image"] for i in np.asarray(dmp.arrays["index"])[rows]])
    models = load_models(m / "dmp/dmp14.pt", m / "ik/ik14/seed0.pt", m / "uvi/uvi14", tiny_uv_dir, anny_dir)
    joints, verts, camera = predict(images, models)

    assert joints.shape == (2, 14, 3) and verts.shape == (2, anny.num_vertices, 3) and camera.shape == (2, 3)
    assert all(torch.isfinite(t).all() for t in (joints, verts, camera))
    assert np.asarray(dmp.arrays["observed"][:2]).any()              # J_initial saw parts: IK got real input
    assert verts.std() > 0.01 and not torch.allclose(camera, cam)    # a body, and UVI refined DMP's camera
    assert torch.allclose(joints, joints_c, atol=1e-6, rtol=0)
    assert torch.allclose(verts, verts_c, atol=1e-6, rtol=0)
    # The camera is fitted to DMP's body pixels from the same pass, UVI's kept where too few.
    with torch.no_grad():
        fitted = dense_camera(models.dmp.infer(images), joints_c, out["camera"])
    assert torch.allclose(camera, fitted, atol=1e-5, rtol=0)
    # Other crop sizes are resized to DMP's; non-square crops are refused.
    j2, v2, c2 = predict(torch.nn.functional.interpolate(images, scale_factor=2), models)
    assert j2.shape == joints.shape and v2.shape == verts.shape and torch.isfinite(v2).all()
    with pytest.raises(ValueError, match="must be"):
        predict(images[..., :-1], models)


def test_load_models_refuses_mismatched_stages(anny_dir, tiny_uv_dir, model_files, tmp_path):
    m = model_files
    blob = torch.load(m / "dmp/dmp14.pt", weights_only=True)
    dmp24 = DMPNet("resnet18", 2, parts=24)
    torch.save({"state_dict": dmp24.state_dict(), "config": {**blob["config"], "joints": 24}}, tmp_path / "dmp24.pt")
    with pytest.raises(ValueError, match="14-part DMP"):
        load_models(tmp_path / "dmp24.pt", m / "ik/ik14", m / "uvi/uvi14", tiny_uv_dir, anny_dir)
    uvi = UVINet(16 + 19, 8)
    torch.save({"state_dict": uvi.state_dict(), "config": {"in_channels": 35, "width": 8, "seed": 0, "variant": "uvi14",
                                                           "use_dmp": True, "use_ik": True}}, tmp_path / "uvi.pt")
    with pytest.raises(ValueError, match="input channels"):
        load_models(m / "dmp/dmp14.pt", m / "ik/ik14", tmp_path / "uvi.pt", tiny_uv_dir, anny_dir)


def _points(seed: int, n: int = 400) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, n, 2, generator=g) * torch.tensor([0.25, 0.5])      # (2, N, 2) a body's x, y spread


def test_fit_weak_perspective_recovers_a_known_camera():
    points = _points(0)
    true = torch.tensor([[1.3, 0.1, -0.2], [0.7, -0.3, 0.05]])
    pixels = true[:, None, :1] * (points + true[:, None, 1:])
    cam = fit_weak_perspective(points, pixels, torch.ones(2, points.shape[1]), torch.zeros(2, 3))
    assert torch.allclose(cam, true, atol=1e-4), cam


def test_fit_weak_perspective_resists_wrong_correspondences():
    """A fifth of the pixels matched with the wrong points (DMP's part errors): the re-weighted fit
    stays near the truth, plain least squares (one pass) does not."""
    points = _points(1)
    true = torch.tensor([[1.1, 0.05, 0.1], [0.9, -0.1, 0.0]])
    pixels = true[:, None, :1] * (points + true[:, None, 1:])
    bad = torch.arange(points.shape[1]) % 5 == 0
    wrong = points.clone()
    wrong[:, bad] = points[:, bad] * 0.2 + 0.6                  # a cluster far from where they belong
    w = torch.ones(2, points.shape[1])
    robust = fit_weak_perspective(wrong, pixels, w, torch.zeros(2, 3))
    plain = fit_weak_perspective(wrong, pixels, w, torch.zeros(2, 3), iters=1)
    err = lambda c: (c - true).abs().max().item()                # noqa: E731
    assert err(robust) < 0.1 and err(plain) > 3 * err(robust), (err(robust), err(plain))


def test_fit_weak_perspective_keeps_the_fallback_without_enough_pixels_or_a_positive_scale():
    points = _points(2)
    pixels = -0.8 * points                                       # a mirror: scale -0.8, not a camera
    fallback = torch.tensor([[0.9, 0.0, 0.0], [1.0, 0.2, 0.3]])
    w = torch.ones(2, points.shape[1])
    w[1, 10:] = 0                                                # 10 pixels < min_weight 20
    cam = fit_weak_perspective(points, pixels, w, fallback, min_weight=20)
    assert torch.equal(cam, fallback)
    w[0] = 0                                                     # no pixel at all: no NaN, the fallback;
    cam = fit_weak_perspective(points, points, w, fallback, min_weight=1)   # 10 pixels do, by themselves
    assert torch.equal(cam[0], fallback[0]) and torch.allclose(cam[1], torch.tensor([1.0, 0.0, 0.0]), atol=1e-4)
