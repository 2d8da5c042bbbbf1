"""The SMPL backend on a small synthetic SMPL-format model (no licensed files anywhere).

The fixture writes a chumpy-free pickle of numpy arrays with SMPL's keys: a left-right symmetric
open tube (a grid with a centre vertex per quad, so the triangulation mirrors exactly) in SMPL's
frame (Y up, +X the body's left), a joint regressor, skinning weights, shape and pose blend shapes
all made exactly symmetric, and a matching UV OBJ (faces shuffled, corners rotated, a UV seam).
"""
import pickle

import numpy as np
import pytest
import torch

from uvhmr.body.joints import SMPL24_NAMES, SMPL24_PARENTS, SMPL24_TO_LSP14, mirror_permutation, mirror_points

N_AROUND, N_RINGS, HEIGHT = 16, 13, 1.7
RADII = np.array([0.32, 0.12])          # elliptic tube: wide in x, thin in z
# Left (+x) and midline joint targets; right joints are their mirror images.
LEFT_TARGETS = {
    "pelvis": (0, 0.90, 0), "L_hip": (0.1, 0.85, 0), "spine1": (0, 1.0, 0), "L_knee": (0.1, 0.5, 0),
    "spine2": (0, 1.12, 0), "L_ankle": (0.1, 0.1, 0), "spine3": (0, 1.24, 0), "L_foot": (0.1, 0.03, 0.08),
    "neck": (0, 1.48, 0), "L_collar": (0.08, 1.42, 0), "head": (0, 1.6, 0), "L_shoulder": (0.18, 1.42, 0),
    "L_elbow": (0.24, 1.3, 0), "L_wrist": (0.28, 1.15, 0), "L_hand": (0.3, 1.08, 0),
}


def _grid(k, i):
    return i * N_AROUND + k % N_AROUND


def _centre(k, i):
    return N_AROUND * N_RINGS + i * N_AROUND + k % N_AROUND


def synthetic_smpl(seed=0):
    """-> (dict of SMPL arrays, vertex mirror, per-face UVs in `f` order, head-top vertex)."""
    rng = np.random.default_rng(seed)
    n, h = N_AROUND, HEIGHT / (N_RINGS - 1)
    verts, uvs, mirror = [], [], []
    for i in range(N_RINGS):
        for k in range(n):
            t = 2 * np.pi * k / n
            verts.append((RADII[0] * np.cos(t), i * h, RADII[1] * np.sin(t)))
            mirror.append(_grid(n // 2 - k, i))
    for i in range(N_RINGS - 1):
        for k in range(n):
            t = 2 * np.pi * (k + 0.5) / n
            verts.append((RADII[0] * np.cos(t), (i + 0.5) * h, RADII[1] * np.sin(t)))
            mirror.append(_centre(n // 2 - 1 - k, i))
    v = np.array(verts)
    mirror = np.array(mirror)
    flip = np.array([-1.0, 1.0, 1.0])
    v = 0.5 * (v + v[mirror] * flip)                         # exact symmetry

    def uv_of(k, i, centre=False):
        return ((k + (0.5 if centre else 0)) / n * 0.9 + 0.05, (i + (0.5 if centre else 0)) / (N_RINGS - 1) * 0.9 + 0.05)

    faces, face_uv = [], []
    for i in range(N_RINGS - 1):
        for k in range(n):
            a, b, c, d, e = (k, i), (k + 1, i), (k + 1, i + 1), (k, i + 1), (k, i)
            for tri in ((a, b, e), (b, c, e), (c, d, e), (d, a, e)):
                faces.append([_centre(*x) if x is e else _grid(*x) for x in tri])
                face_uv.append([uv_of(*x, centre=x is e) for x in tri])
    faces = np.array(faces, dtype=np.int64)
    face_uv = np.array(face_uv, dtype=np.float32)

    names = list(SMPL24_NAMES)
    jmir = mirror_permutation(names)
    targets = np.zeros((24, 3))
    for name, p in LEFT_TARGETS.items():
        targets[names.index(name)] = p
        targets[jmir[names.index(name)]] = np.array(p) * flip
    d2 = ((v[:, None] - targets[None]) ** 2).sum(-1)          # (V, 24)
    weights = np.exp(-(d2 - d2.min(1, keepdims=True)) / 0.02)
    weights /= weights.sum(1, keepdims=True)
    reg = np.exp(-(d2 - d2.min(0, keepdims=True)) / 0.005).T
    reg /= reg.sum(1, keepdims=True)

    nv = len(v)
    shapedirs = rng.normal(scale=0.01, size=(nv, 3, 10))
    shapedirs = 0.5 * (shapedirs + shapedirs[mirror] * flip[None, :, None])
    # Pose blend shapes: P[v, c, (j, a, b)] = s_c s_a s_b P[m(v), c, (m(j), a, b)], s = (-1, 1, 1).
    pd = rng.normal(scale=0.005, size=(nv, 3, 23, 3, 3))
    sign = flip[None, :, None, None, None] * flip[None, None, None, :, None] * flip[None, None, None, None, :]
    pd = 0.5 * (pd + sign * pd[mirror][:, :, jmir[1:] - 1])

    kintree = np.array([SMPL24_PARENTS, range(24)], dtype=np.int64)
    kintree[0, 0] = 4294967295                                # as in the official files
    data = {"v_template": v, "shapedirs": shapedirs, "posedirs": pd.reshape(nv, 3, 207),
            "J_regressor": reg, "weights": weights, "kintree_table": kintree,
            "f": faces.astype(np.uint32)}
    head_top = _grid(n // 4, N_RINGS - 1)
    assert mirror[head_top] == head_top
    return data, mirror, face_uv, head_top


def write_uv_obj(path, data, face_uv, rng, drop_face=False):
    """An OBJ with the model's topology: faces shuffled and corners rotated, UVs de-duplicated."""
    uv_index, uv_list, lines = {}, [], []
    for p in data["v_template"]:
        lines.append(f"v {p[0]:.6f} {p[1]:.6f} {p[2]:.6f}")
    order = rng.permutation(len(data["f"]))
    if drop_face:
        order = order[1:]
    flines = []
    for fi in order:
        corners = []
        for vi, uv in zip(data["f"][fi], face_uv[fi]):
            key = (round(float(uv[0]), 6), round(float(uv[1]), 6))
            if key not in uv_index:
                uv_index[key] = len(uv_list) + 1
                uv_list.append(key)
            corners.append(f"{int(vi) + 1}/{uv_index[key]}")
        r = int(rng.integers(3))
        flines.append("f " + " ".join(corners[r:] + corners[:r]))
    lines += [f"vt {u:.6f} {w:.6f}" for u, w in uv_list] + ["# faces", "g body"] + flines
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("smpl")
    data, mirror, face_uv, head_top = synthetic_smpl()
    (d / "models").mkdir()
    with open(d / "models" / "SMPL_NEUTRAL.pkl", "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    write_uv_obj(d / "smpl_uv.obj", data, face_uv, np.random.default_rng(1))
    return dict(dir=d, data=data, mirror=mirror, face_uv=face_uv, head_top=head_top)


def _params(synth, **kw):
    from uvhmr.config import BodyModelParams
    base = dict(backend="smpl", smpl_dir=str(synth["dir"] / "models"), smpl_uv_obj=str(synth["dir"] / "smpl_uv.obj"),
                smpl_head_top_vertex=synth["head_top"])
    return BodyModelParams(**{**base, **kw})


@pytest.fixture(scope="module")
def exported(synth):
    from uvhmr.body.smpl import export_smpl
    out = synth["dir"] / "resources" / "body" / "smpl"
    logs = []
    export_smpl(_params(synth), out, log=logs.append)
    assert any("wrote" in line for line in logs)
    return out


@pytest.fixture(scope="module")
def model(exported):
    from uvhmr.body.model import load_body_model
    return load_body_model(exported)


def test_export_writes_only_derived_assets(synth, exported):
    assert sorted(p.name for p in exported.iterdir()) == ["assets.npz"]
    with np.load(exported / "assets.npz", allow_pickle=False) as z:
        assert str(z["backend"]) == "smpl"
        assert str(z["smpl_model_path"]) == str((synth["dir"] / "models" / "SMPL_NEUTRAL.pkl").resolve())
        assert int(z["num_betas"]) == 10
        assert "v_template" not in z.files and "shapedirs" not in z.files
        assert np.array_equal(z["vertex_mirror"], synth["mirror"])
        np.testing.assert_allclose(z["face_uv"], synth["face_uv"], atol=1e-6)   # re-ordered to SMPL's faces
        assert np.array_equal(z["faces"], synth["data"]["f"].astype(np.int64))
        fm = z["face_mirror"]
        assert np.array_equal(fm[fm], np.arange(len(fm)))
        assert np.array_equal(z["vertex_part"], synth["data"]["weights"].argmax(1))
        assert list(z["joint_parents"]) == list(SMPL24_PARENTS)


def test_load_and_forward_shapes(synth, model):
    from uvhmr.body.smpl import SmplBody
    assert isinstance(model, SmplBody) and model.name == "smpl" and model.up_axis == "y"
    assert model.joint_names == SMPL24_NAMES and model.shape_labels[0] == "beta00" and len(model.shape_labels) == 10
    assert list(model.parameters()) == []
    nv = len(synth["data"]["v_template"])
    assert model.num_vertices == nv
    g = torch.Generator().manual_seed(0)
    b = 3
    pose = 0.3 * torch.randn(b, 24, 3, generator=g)
    out = model(pose, model.sample_shape(b, 5), torch.randn(b, 3, generator=g))
    assert out.vertices.shape == (b, nv, 3) and out.joints.shape == (b, 24, 3)
    assert out.lsp14.shape == (b, 14, 3) and out.joints24.shape == (b, 24, 3)
    assert torch.equal(out.lsp14[:, :13], out.joints[:, list(SMPL24_TO_LSP14[:13])])
    assert torch.equal(out.lsp14[:, 13], out.vertices[:, synth["head_top"]])
    assert torch.equal(out.joints24, out.joints)


def test_zero_pose_matches_the_template_and_left_is_plus_x(synth, model):
    data = synth["data"]
    out = model(model.reference_pose(1), model.mean_shape()[None])
    np.testing.assert_allclose(out.vertices[0].numpy(), data["v_template"], atol=1e-6)
    np.testing.assert_allclose(out.joints[0].numpy(), data["J_regressor"] @ data["v_template"], atol=1e-6)
    j = out.joints[0]
    assert j[SMPL24_NAMES.index("L_hip"), 0] > 0.02 > -0.02 > j[SMPL24_NAMES.index("R_hip"), 0]
    assert j[SMPL24_NAMES.index("L_shoulder"), 0] > 0 > j[SMPL24_NAMES.index("R_shoulder"), 0]


def test_mirrored_pose_gives_mirrored_mesh(model):
    g = torch.Generator().manual_seed(3)
    b = 4
    pose = 0.5 * torch.randn(b, 24, 3, generator=g)
    shape = 2.0 * torch.randn(b, 10, generator=g)
    transl = torch.randn(b, 3, generator=g)
    out = model(pose, shape, transl)
    mir = model(model.mirror_pose(pose), shape, transl * torch.tensor([-1.0, 1.0, 1.0]))
    v_err = (mirror_points(out.vertices, model.vertex_mirror) - mir.vertices).abs().max()
    j_err = (mirror_points(out.joints, model.joint_mirror) - mir.joints).abs().max()
    l_err = (mirror_points(out.lsp14, model.lsp14.mirror) - mir.lsp14).abs().max()
    assert v_err < 1e-3 and j_err < 1e-3 and l_err < 1e-3
    # and the pose matters (the test is not vacuous)
    assert (out.vertices - model(torch.zeros_like(pose), shape, transl).vertices).abs().max() > 0.01


def test_shape_sampler_and_gradients(model):
    a, b = model.sample_shape(5, 7), model.sample_shape(5, 7)
    assert a.shape == (5, 10) and a.dtype == torch.float32 and torch.equal(a, b)
    assert not torch.equal(a, model.sample_shape(5, 8))
    assert torch.equal(model.mean_shape(), torch.zeros(10))
    pose = torch.zeros(2, 24, 3, requires_grad=True)
    model(pose, model.sample_shape(2, 0)).vertices.sum().backward()
    assert pose.grad is not None and pose.grad.abs().sum() > 0


def test_export_rejects_a_foreign_uv_obj_and_an_asymmetric_template(synth, tmp_path):
    from uvhmr.body.smpl import export_smpl
    bad_obj = tmp_path / "bad.obj"
    write_uv_obj(bad_obj, synth["data"], synth["face_uv"], np.random.default_rng(2), drop_face=True)
    with pytest.raises(ValueError, match="not SMPL's topology.*smpl_uv_obj"):
        export_smpl(_params(synth, smpl_uv_obj=str(bad_obj)), tmp_path / "out1", log=lambda s: None)
    assert not (tmp_path / "out1").exists()

    data = dict(synth["data"])
    v = data["v_template"].copy()
    v[0, 0] += 0.01                                                  # 10 mm off
    data["v_template"] = v
    (tmp_path / "asym").mkdir()
    with open(tmp_path / "asym" / "SMPL_NEUTRAL.pkl", "wb") as fh:
        pickle.dump(data, fh)
    with pytest.raises(ValueError, match="not left-right symmetric"):
        export_smpl(_params(synth, smpl_dir=str(tmp_path / "asym")), tmp_path / "out2", log=lambda s: None)

    with pytest.raises(ValueError, match="smpl_head_top_vertex"):
        export_smpl(_params(synth, smpl_head_top_vertex=10**6), tmp_path / "out3", log=lambda s: None)


def test_chumpy_pickle_gets_a_clear_error(synth, tmp_path):
    from uvhmr.body.smpl import export_smpl
    (tmp_path / "ch").mkdir()
    # A protocol-0 pickle of {'v_template': chumpy.ch.Ch}: unpickling imports chumpy.
    (tmp_path / "ch" / "SMPL_NEUTRAL.pkl").write_bytes(b"(dp0\nS'v_template'\np1\ncchumpy.ch\nCh\np2\ns.")
    try:
        import chumpy  # noqa: F401
        pytest.skip("chumpy is installed here")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="chumpy"):
        export_smpl(_params(synth, smpl_dir=str(tmp_path / "ch")), tmp_path / "out", log=lambda s: None)


def test_check_smpl_files_messages(synth, tmp_path):
    from uvhmr.config import check_smpl_files
    from uvhmr.config import ConfigError
    check_smpl_files(_params(synth), "params.yaml")                  # all present: no error
    empty = tmp_path / "empty"
    empty.mkdir()
    for smpl_dir in (None, str(tmp_path / "missing"), str(empty)):
        with pytest.raises(ConfigError) as e:
            check_smpl_files(_params(synth, smpl_dir=smpl_dir), "params.yaml")
        msg = str(e.value)
        assert msg.startswith("params.yaml: body_model.smpl_dir: ") and "SMPL_NEUTRAL.pkl" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="SMPL_MALE.pkl"):
        check_smpl_files(_params(synth, smpl_gender="male"), "params.yaml")
    for obj in (None, str(tmp_path / "missing.obj")):
        with pytest.raises(ConfigError, match=r"^params\.yaml: body_model\.smpl_uv_obj: "):
            check_smpl_files(_params(synth, smpl_uv_obj=obj), "params.yaml")


def test_parse_params_checks_smpl_files():
    from uvhmr.config import ConfigError, parse_params
    with pytest.raises(ConfigError, match=r"body_model\.smpl_dir"):
        parse_params({"body_model": {"backend": "smpl", "smpl_dir": "/nonexistent"}}, profile="smoke")
    with pytest.raises(ConfigError, match=r"body_model\.smpl_dir.*SMPL_NEUTRAL\.pkl"):
        parse_params({"body_model": {"backend": "smpl"}}, profile="smoke")


def test_read_uv_obj_quads_and_errors(tmp_path):
    from uvhmr.body.smpl import read_uv_obj
    good = tmp_path / "quad.obj"
    good.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvn 0 0 1\n"
                    "f 1/1/1 2/2/1 3/3/1 4/4/1\nf -4/-4 -3/-3 -2/-2\n")
    faces, face_uv = read_uv_obj(good)
    assert faces.dtype == np.int64 and face_uv.dtype == np.float32
    assert faces.tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 2]]
    np.testing.assert_array_equal(face_uv[1], [[0, 0], [1, 1], [0, 1]])
    for text, what in (("v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1//1 2//1 3//1\n", "no UV index"),
                       ("v 0 0 0\nvt 0 0\nf 1/1 2/1 3/1\n", "points past"),
                       ("v 0 0 0\nvt 0 x\n", "vt"),
                       ("v 0 0 0\nvt 0 0\nf 1/a 1/1 1/1\n", "integer"),
                       ("v 0 0 0\n", "no faces")):
        bad = tmp_path / "bad.obj"
        bad.write_text(text)
        with pytest.raises(ValueError, match="bad.obj") as e:
            read_uv_obj(bad)
        assert what in str(e.value)
