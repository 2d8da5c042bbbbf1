"""Licensed mocap readers (AMASS, AIST++, SPIN/DecoMR fits) on small fixture files in their formats,
written here; the whole mocap rule on them with a tiny stand-in SMPL body model; refusal under Anny."""
import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from uvhmr.body.joints import LSP14_NAMES, SMPL24_NAMES, SMPL24_PARENTS, SMPL24_TO_LSP14, make_joint_set, mirror_permutation
from uvhmr.body.base import BodyModel, joint_set_arrays
from uvhmr.config import load_params, rule_params
from uvhmr.data import mocap_loaders as ml
from uvhmr.data.mocap import MANIFEST, build_mocap, open_mocap

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)


def _amass(path, frames=40, rate=120.0, width=156, betas=16):
    np.savez(path, poses=RNG.normal(0, 0.3, (frames, width)).astype(np.float64), betas=RNG.normal(0, 1, betas),
             trans=RNG.normal(0, 1, (frames, 3)), mocap_framerate=np.array(rate), gender=np.array("female"))


def _aist(path, frames=30):
    with open(path, "wb") as fh:
        pickle.dump({"smpl_poses": RNG.normal(0, 0.3, (frames, 72)).astype(np.float32),
                     "smpl_trans": RNG.normal(0, 50, (frames, 3)).astype(np.float32),
                     "smpl_scaling": np.array([93.7], dtype=np.float32)}, fh)


def _spin_npz(path, n=50):
    has = np.ones(n)
    has[:5] = 0
    np.savez(path, imgname=np.array([f"im{i:04d}.jpg" for i in range(n)]), pose=RNG.normal(0, 0.3, (n, 72)),
             shape=RNG.normal(0, 1, (n, 10)), has_smpl=has)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("licensed")
    (d / "amass" / "CMU" / "01").mkdir(parents=True)
    _amass(d / "amass/CMU/01/01_01_poses.npz")
    _amass(d / "amass/CMU/01/01_02_poses.npz", frames=24, rate=60.0)
    _amass(d / "amass/CMU/01/01_03_poses.npz", frames=33, rate=120.0, width=165)    # SMPL-X AMASS
    np.savez(d / "amass/CMU/01/shape.npz", betas=np.zeros(16), gender=np.array("male"))
    (d / "aist").mkdir()
    for k in range(3):
        _aist(d / f"aist/gBR_sBM_cAll_d04_mBR0{k}_ch01.pkl")
    (d / "spin").mkdir()
    _spin_npz(d / "spin/coco_2014_train_fits.npz")
    np.save(d / "spin/lsp_fits.npy", RNG.normal(0, 0.5, (30, 82)).astype(np.float32))
    return d


def test_amass_reader(files):
    f = files / "amass/CMU/01/01_01_poses.npz"
    pose, betas = ml.read_amass(f)
    raw = np.load(f)["poses"]
    assert pose.shape == (40, 24, 3) and betas.shape == (16,)
    np.testing.assert_allclose(pose[:, :22].reshape(40, 66), raw[:, :66], rtol=1e-6)
    assert np.all(pose[:, 22:] == 0)                                     # SMPL+H: no SMPL hand joints
    seqs = ml.list_sequences("amass", files / "amass", fps=30, log=lambda s: None)
    assert [s.key for s in seqs] == ["CMU/01/01_01_poses.npz", "CMU/01/01_02_poses.npz", "CMU/01/01_03_poses.npz"]
    assert [(s.stride, s.frames) for s in seqs] == [(4, 10), (2, 12), (4, 9)]   # 120 / 60 fps -> 30 fps
    p, s = ml.read_sequence("amass", seqs[0], num_betas=10)
    np.testing.assert_allclose(p[:, 1:], pose[::4, 1:])
    assert np.all(p[:, 0] == 0)                                           # global orientation dropped
    np.testing.assert_allclose(s, np.broadcast_to(betas[:10], (10, 10)), rtol=1e-6)
    assert ml.read_sequence("amass", seqs[0], num_betas=20)[1][0, 16:].tolist() == [0.0] * 4   # padded


def test_aistpp_reader(files):
    f = files / "aist/gBR_sBM_cAll_d04_mBR00_ch01.pkl"
    pose, trans, scale = ml.read_aistpp(f)
    assert pose.shape == (30, 24, 3) and trans.shape == (30, 3) and scale == pytest.approx(93.7)
    seqs = ml.list_sequences("aistpp", files / "aist", fps=30)
    assert len(seqs) == 3 and seqs[0].stride == 2 and seqs[0].frames == 15
    p, s = ml.read_sequence("aistpp", seqs[0], 10)
    assert s is None and p.shape == (15, 24, 3) and np.all(p[:, 0] == 0)
    np.testing.assert_allclose(p[:, 1:], pose[::2, 1:])


def test_spin_fits_reader(files):
    pose, betas = ml.read_spin_fits(files / "spin/coco_2014_train_fits.npz")
    assert pose.shape == (45, 24, 3) and betas.shape == (45, 10)          # has_smpl == 0 rows dropped
    raw = np.load(files / "spin/coco_2014_train_fits.npz")
    np.testing.assert_allclose(pose.reshape(45, 72), raw["pose"][5:], rtol=1e-6)
    pose, betas = ml.read_spin_fits(files / "spin/lsp_fits.npy")
    assert pose.shape == (30, 24, 3) and betas.shape == (30, 10)
    seqs = ml.list_sequences("spin_fits", files / "spin", fps=30)
    assert sum(s.frames for s in seqs) == 75


def test_malformed_files_are_named(tmp_path):
    np.savez(tmp_path / "a.npz", poses=np.zeros((5, 10)), betas=np.zeros(16), trans=np.zeros((5, 3)))
    with pytest.raises(ml.MocapSourceError, match=r"a.npz: `poses` must be"):
        ml.read_amass(tmp_path / "a.npz")
    (tmp_path / "b.npz").write_bytes(b"not a zip")
    with pytest.raises(ml.MocapSourceError, match="b.npz: not a readable .npz"):
        ml.read_amass(tmp_path / "b.npz")
    with open(tmp_path / "c.pkl", "wb") as fh:
        pickle.dump({"smpl_poses": np.zeros((3, 72))}, fh)
    with pytest.raises(ml.MocapSourceError, match="c.pkl: an AIST\\+\\+ motion needs"):
        ml.read_aistpp(tmp_path / "c.pkl")
    np.save(tmp_path / "d.npy", np.zeros((4, 10)))
    with pytest.raises(ml.MocapSourceError, match="d.npy: SPIN static fits must be"):
        ml.read_spin_fits(tmp_path / "d.npy")
    with pytest.raises(ml.MocapSourceError, match="no amass files"):
        ml.list_files("amass", _empty(tmp_path))


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


@pytest.mark.parametrize("source", ml.SOURCES)
def test_loaders_refuse_anny_with_a_clear_message(source):
    with pytest.raises(ml.MocapSourceError) as e:
        ml.require_smpl(source, "anny")
    msg = str(e.value)
    assert f"mocap.source: {source}" in msg and "body_model.backend: smpl" in msg and "mocap.source: prior" in msg
    ml.require_smpl(source, "smpl")                                        # no error


# ------------------------------------------------------------------ the rule with a stand-in SMPL

class TinySmpl(BodyModel):
    """A 25-vertex stand-in with SMPL's 24 joints and names (no licensed data): joints move
    linearly with the pose and the first beta, so the rule's bookkeeping can be checked."""
    name, up_axis = "smpl", "y"

    def __init__(self):
        rest = np.zeros((24, 3))
        for j, p in enumerate(SMPL24_PARENTS):
            if p >= 0:
                side = 1.0 if SMPL24_NAMES[j].startswith("L_") else -1.0 if SMPL24_NAMES[j].startswith("R_") else 0.0
                rest[j] = rest[p] + (0.1 * side, 0.15 if j in (3, 6, 9, 12, 15) else -0.12, 0.0)
        self.rest = torch.tensor(rest, dtype=torch.float32)
        head_top = 24
        vm = np.append(mirror_permutation(SMPL24_NAMES), head_top)
        lsp = make_joint_set(LSP14_NAMES, list(SMPL24_TO_LSP14), {13: (np.array([head_top]), np.ones(1))}, 25)
        j24 = make_joint_set(SMPL24_NAMES, list(range(24)), {}, 25)
        super().__init__({
            "faces": np.array([[0, 1, 2]]), "face_uv": np.zeros((1, 3, 2)), "vertex_mirror": vm,
            "face_mirror": np.array([0]), "joint_parents": np.array(SMPL24_PARENTS), "joint_names": np.array(SMPL24_NAMES),
            "joint_mirror": mirror_permutation(SMPL24_NAMES), "shape_labels": np.array([f"beta{i:02d}" for i in range(10)]),
            "vertex_part": np.append(np.arange(24), 15), **joint_set_arrays("lsp14", lsp), **joint_set_arrays("joints24", j24)})

    def _skin(self, pose, shape, transl):
        joints = self.rest + 0.05 * pose + 0.01 * shape[:, :1, None] + transl[:, None]
        top = joints[:, 15:16] + torch.tensor([0.0, 0.1, 0.0])
        return torch.cat([joints, top], 1), joints

    def sample_shape(self, batch, seed):
        return torch.randn(batch, 10, generator=torch.Generator().manual_seed(int(seed)))

    def mean_shape(self):
        return torch.zeros(10)


def _rp(**over):
    rp = rule_params(load_params(REPO / "params.yaml", "smoke"), "mocap")
    rp = dataclasses.replace(rp, body_model=dataclasses.replace(rp.body_model, backend="smpl"))
    return dataclasses.replace(rp, section=dataclasses.replace(rp.section, **{"shard_size": 8, **over}))


@pytest.mark.parametrize("source, folder, spin, n_train, n_val", [
    ("amass", "amass", True, 20, 5), ("aistpp", "aist", False, 25, 8), ("aistpp", "aist", True, 10, 4),
    ("spin_fits", "spin", False, 40, 10)])
def test_rule_on_licensed_sources(files, tmp_path, source, folder, spin, n_train, n_val):
    model = TinySmpl()
    spin_file = str(files / "spin/coco_2014_train_fits.npz") if spin else None
    out = tmp_path / "mocap"
    logs = []
    rp = _rp(source=source, files=str(files / folder), spin_fits=spin_file, n_train=n_train, n_val=n_val)
    m = build_mocap(rp, model, out, log=logs.append)
    assert json.loads((out / MANIFEST).read_text()) == json.loads(json.dumps(m))
    assert (out / "figures/mocap_prior.png").is_file()
    train, val = open_mocap(out, "train"), open_mocap(out, "val")
    assert 0 < len(val) <= n_val and 0 < len(train) <= n_train
    tb, vb = train.batch(np.arange(len(train))), val.batch(np.arange(len(val)))
    # Whole sequences go to one split.
    assert not set(tb["sequence"].tolist()) & set(vb["sequence"].tolist())
    assert torch.all(tb["pose"][:, 0] == 0) and tb["pose"].shape[1:] == (24, 3)
    # Joints: the body model's, root-relative (mid-hips).
    o = model(tb["pose"], tb["shape"])
    root = o.lsp14[:, [2, 3]].mean(1, keepdim=True)
    torch.testing.assert_close(tb["lsp14"], o.lsp14 - root)
    # Rows trace back to the files: pose at (sequence, frame) equals the file's frame (root zeroed).
    read = {"amass": lambda f: ml.read_amass(f)[0], "aistpp": lambda f: ml.read_aistpp(f)[0],
            "spin_fits": lambda f: ml.read_spin_fits(f)[0]}[source]
    joints = slice(1, 22) if source == "amass" else slice(1, 24)
    for k in range(0, len(train), 3):
        path = files / folder / m["sequences"][int(tb["sequence"][k])].split("#")[0]
        raw = read(path)[int(tb["frame"][k])]
        np.testing.assert_allclose(tb["pose"][k, joints].numpy(), raw[joints], rtol=1e-6)
    if source == "amass":              # hand joints drawn from the SPIN fits (appendix C)
        assert (tb["pose"][:, 22:].abs().sum((1, 2)) > 0).all()
    if source == "aistpp":             # one body shape per sequence
        for sid in set(tb["sequence"].tolist()):
            rows = tb["shape"][tb["sequence"] == sid]
            assert torch.equal(rows, rows[:1].expand_as(rows))
        assert any(("SPIN fits" if spin else "shape prior") in line for line in logs)


def test_rule_refuses_anny_and_needs_files(files, tmp_path, anny):
    with pytest.raises(ml.MocapSourceError, match="needs body_model.backend: smpl"):
        build_mocap(_rp(source="aistpp", files=str(files / "aist")), anny, tmp_path / "m")
    with pytest.raises(ValueError, match="mocap.files"):
        build_mocap(_rp(source="aistpp", files=None), TinySmpl(), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_single_sequence_is_split_by_frames(tmp_path):
    (tmp_path / "one").mkdir()
    _amass(tmp_path / "one/walk.npz", frames=80, rate=30.0)
    logs = []
    m = build_mocap(_rp(source="amass", files=str(tmp_path / "one"), n_train=60, n_val=20, figure=False),
                    TinySmpl(), tmp_path / "out", log=logs.append)
    assert any("only one sequence" in line for line in logs)
    train = open_mocap(tmp_path / "out", "train").batch(np.arange(60))["frame"]
    val = open_mocap(tmp_path / "out", "val").batch(np.arange(20))["frame"]
    assert m["splits"]["train"]["count"] == 60 and m["splits"]["val"]["count"] == 20
    assert train.max() < val.min() and val.tolist() == list(range(60, 80))
