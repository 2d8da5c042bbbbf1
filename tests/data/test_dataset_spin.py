"""The SPIN/DecoMR `.npz` adapter, on a tiny synthetic SMPL-format model, a fixture file and
images that the test writes (no licensed data)."""
import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from uvhmr.config import BodyModelParams, DatasetParams, Resources, RuleParams, RunParams, UvAssetsParams
from uvhmr.data.dataset import SampleDataset
from uvhmr.data.render import project
from uvhmr.data.sources.spin_npz import SpinFormatError, crop_matrix, load_spin_npz

SIZE = 40
HERE = Path(__file__).resolve().parent


def _smpl_helpers():
    spec = importlib.util.spec_from_file_location("_smpl_fixture", HERE.parent / "body" / "test_smpl.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tube(tmp_path_factory):
    """A synthetic SMPL-format model exported through the SMPL backend, and its UV assets."""
    h = _smpl_helpers()
    d = tmp_path_factory.mktemp("spin")
    data, _, face_uv, head_top = h.synthetic_smpl()
    (d / "models").mkdir()
    with open(d / "models" / "SMPL_NEUTRAL.pkl", "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    h.write_uv_obj(d / "uv.obj", data, face_uv, np.random.default_rng(1))
    from uvhmr.body.model import load_body_model
    from uvhmr.body.smpl import export_smpl
    from uvhmr.uv.assets import build_uv_assets
    bm = BodyModelParams(backend="smpl", smpl_dir=str(d / "models"), smpl_uv_obj=str(d / "uv.obj"),
                         smpl_head_top_vertex=head_top)
    export_smpl(bm, d / "body", log=lambda *_: None)
    body = load_body_model(d / "body")
    build_uv_assets(body, UvAssetsParams(), d / "uv", log=lambda *_: None)
    return d, body


def spin_rows(body, files: Path):
    """Three rows in SPIN's format over two images; keypoints made with a known weak perspective."""
    import cv2
    rng = np.random.default_rng(0)
    (files / "imgs").mkdir(parents=True, exist_ok=True)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(files / "imgs" / name), rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    n = 3
    pose = np.zeros((n, 24, 3))
    pose[:, 0] = [np.pi, 0, 0]               # SMPL's Y up -> the camera's y down
    pose[:, 1:] = 0.15 * rng.standard_normal((n, 23, 3))
    shape = 0.5 * rng.standard_normal((n, 10))
    center = np.array([[60.0, 45.0], [50.0, 40.0], [64.0, 48.0]])
    scale = np.array([0.4, 0.35, 0.45])
    with torch.no_grad():
        out = body(torch.as_tensor(pose, dtype=torch.float32), torch.as_tensor(shape, dtype=torch.float32))
    part = np.zeros((n, 24, 3))
    for i in range(n):
        j = out.lsp14[i].double().numpy()
        s, t = 1.8 / 1.9, -0.5 * (j.min(0) + j.max(0))[:2]
        crop = (s * (j[:, :2] + t) + 1) * SIZE / 2
        part[i, :14, :2] = (crop - SIZE / 2) * 200 * scale[i] / SIZE + center[i]   # pixel indices, as the centre
        part[i, :14, 2] = 1.0
    np.savez(files / "fixture_test.npz", imgname=np.array(["imgs/a.png", "imgs/b.png", "imgs/a.png"]),
             center=center, scale=scale, part=part, pose=pose.reshape(n, 72), shape=shape,
             has_smpl=np.array([1.0, 1.0, 0.0]), S=np.zeros((n, 24, 4)))
    return part, center, scale


def rule(files: Path, **kw):
    sec = DatasetParams(source="spin_npz", files=str(files), image_size=SIZE, n_test=10, shard_size=8,
                        spin_splits={"test": ["fixture_test.npz"]}, spin_images={"fixture_test.npz": ""},
                        resources=Resources(threads=1), **kw)
    return RuleParams("smoke", "dataset", None, RunParams(seed=0), BodyModelParams(backend="smpl"), sec)


@pytest.fixture(scope="module")
def adapted(tube):
    from uvhmr.data.sources import run_dataset
    d, body = tube
    files = d / "files"
    part, center, scale = spin_rows(body, files)
    logs = []
    run_dataset(rule(files), d / "body", d / "uv", Path("unused"), "test", d / "out", log=logs.append)
    return d / "out", part, center, scale, logs


def test_adapter_writes_the_common_sample_format(adapted):
    out, part, center, scale, logs = adapted
    index = json.loads((out / "index.json").read_text())
    assert index["source"] == "spin_npz" and index["num_samples"] == 2 and index["backend"] == "smpl"
    assert index["pose_shape"] == [24, 3] and index["shape_dim"] == 10
    assert (out / "figures" / "dataset_samples.png").is_file()
    assert any("2 with SMPL parameters" in line for line in logs)
    ds = SampleDataset(out, occlusion=False)
    for i in range(2):
        s = ds[i]
        assert s["mask"].sum() > 30 and s["pose"].shape == (24, 3) and s["shape"].shape == (10,)
        assert torch.equal(s["M_d"], s["M_l"] - s["M_j"])
        # The stored 2-D joints are the projections of the mesh's joints, which the fixture's
        # keypoints were made from: the fitted camera brings them back (long focal length).
        A = crop_matrix(center[i] + 0.5, scale[i], SIZE)
        kp = (part[i, :14, :2] + 0.5) @ A[:, :2].T + A[:, 2]
        assert np.abs(s["joints2d"].numpy() - kp).max() < 0.2
        K = s["K"].numpy().astype(np.float64)
        assert np.abs(project(s["joints3d"].numpy() + s["root"].numpy(), K) - s["joints2d"].numpy()).max() < 0.5


def test_adapter_crops_the_photo(adapted, tube):
    import cv2
    out, part, center, scale, _ = adapted
    img = cv2.imread(str(tube[0] / "files" / "imgs" / "b.png"))[..., ::-1]
    s = SampleDataset(out, occlusion=False).raw(1)
    A = crop_matrix(center[1] + 0.5, scale[1], SIZE)
    # Crop pixel centre (r, c) <- image point A^-1 (c + 0.5, r + 0.5) (continuous coordinates).
    Ai = np.linalg.inv(np.vstack([A, [0, 0, 1]]))
    r, c = SIZE // 2, SIZE // 2
    x, y = (Ai @ [c + 0.5, r + 0.5, 1])[:2]
    assert np.abs(s["image"][r, c].astype(int) - img[int(y), int(x)].astype(int)).max() <= 40


def test_bad_files_are_named(tube, tmp_path, anny_dir):
    d, body = tube
    np.savez(tmp_path / "broken.npz", imgname=np.array(["x.png"]), center=np.zeros((1, 2)))
    with pytest.raises(SpinFormatError, match=r"broken\.npz: missing key\(s\) scale, part, pose, shape, has_smpl"):
        load_spin_npz(tmp_path / "broken.npz")
    from uvhmr.data.sources import run_dataset
    with pytest.raises(SpinFormatError, match="spin_npz needs body_model.backend smpl"):
        run_dataset(rule(tmp_path), anny_dir, d / "uv",
                    Path("unused"), "test", tmp_path / "out")


def test_synthetic_renders_also_work_on_the_smpl_backend(tube, tmp_path, monkeypatch):
    """The synthetic path is backend-generic (Y-up SMPL frame, SMPL joint names for the clothing)."""
    from uvhmr.data.sources import run_dataset
    from uvhmr.data.sources import synthetic as syn
    d, body = tube

    class Poses:
        def __len__(self):
            return 8

        def batch(self, idx):
            p = 0.2 * torch.randn(len(idx), 24, 3, generator=torch.Generator().manual_seed(0))
            p[:, 0] = 0
            return {"pose": p}
    monkeypatch.setattr(syn, "open_mocap", lambda *_: Poses())
    sec = DatasetParams(image_size=SIZE, n_dmp_train=4, shard_size=4, texture_size=32, resources=Resources(threads=1))
    rp = RuleParams("smoke", "dataset", None, RunParams(seed=0), BodyModelParams(backend="smpl"), sec)
    run_dataset(rp, d / "body", d / "uv", Path("unused"), "dmp_train", tmp_path / "out", log=lambda *_: None)
    s = SampleDataset(tmp_path / "out", occlusion=False)[0]
    assert s["mask"].sum() > 30 and torch.equal(s["M_d"], s["M_l"] - s["M_j"])
    # Upright: the head top is above (smaller image y than) the ankles.
    assert s["joints2d"][13, 1] < s["joints2d"][[0, 5], 1].min()
