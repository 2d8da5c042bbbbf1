"""The dataset rule on synthetic renders: ground truth exactness, the on-disk format, the Dataset's
load-time occlusion and augmentation, determinism."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from uvhmr.config import BodyModelParams, DatasetParams, Resources, RuleParams, RunParams, UvAssetsParams
from uvhmr.data import format as fmt
from uvhmr.data import render_sample as rs
from uvhmr.data.sources import run_dataset
from uvhmr.data.sources import synthetic as syn
from uvhmr.data.dataset import Augment, SampleDataset, flip_sample, read_sample, rebuild_vertices
from uvhmr.data.render import project
from uvhmr.data.shards import Shard, ShardError, write_shard

from tiny_data import SIZE, StandInMocap, build, rule, section  # noqa: E402,F401


@pytest.fixture(scope="module")
def uv_dir(anny, tmp_path_factory):
    from uvhmr.uv.assets import build_uv_assets
    d = tmp_path_factory.mktemp("uv") / "uv"
    build_uv_assets(anny, UvAssetsParams(), d, log=lambda *_: None)
    return d


@pytest.fixture(scope="module")
def split_dir(anny_dir, uv_dir, tmp_path_factory):
    return build(anny_dir, uv_dir, tmp_path_factory.mktemp("data") / "dmp_train")


@pytest.fixture(scope="module")
def ctx(anny, uv_dir):
    return rs.load_context(anny, uv_dir, section())


def cam_vertices(anny, raw):
    """Vertices rebuilt from the stored pose, shape and camera -> (V, 3) float64 camera frame."""
    with torch.no_grad():
        v = anny(torch.from_numpy(raw["pose"])[None], torch.from_numpy(raw["shape"])[None]).vertices[0].double().numpy()
    return v @ raw["R"].astype(np.float64).T + raw["t"].astype(np.float64)


def ray_cast(verts, faces, K, pixels):
    """Nearest front-facing hit of the ray through each pixel centre (r, c) -> (points (N, 3), faces (N,))."""
    pts, fid = [], []
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    e1, e2 = v1 - v0, v2 - v0
    front = (np.cross(e1, e2) * v0).sum(-1) < 0
    for chunk in np.array_split(pixels, max(1, len(pixels) // 16)):
        d = np.stack([(chunk[:, 1] + 0.5 - K[0, 2]) / K[0, 0], (chunk[:, 0] + 0.5 - K[1, 2]) / K[1, 1],
                      np.ones(len(chunk))], -1)[:, None]
        p = np.cross(d, e2[None])
        det = (e1[None] * p).sum(-1)
        u = (-v0[None] * p).sum(-1) / det
        q = np.cross(-v0[None], e1[None])
        w = (d * q).sum(-1) / det
        t = (e2[None] * q).sum(-1) / det
        hit = (u >= -1e-9) & (w >= -1e-9) & (u + w <= 1 + 1e-9) & (t > 0) & front[None]
        t = np.where(hit, t, np.inf)
        f = t.argmin(1)
        pts.append(d[:, 0] * t[np.arange(len(f)), f][:, None])
        fid.append(np.where(np.isfinite(t[np.arange(len(f)), f]), f, -1))
    return np.concatenate(pts), np.concatenate(fid)


# ----------------------------------------------------------------------------- format

def test_split_layout_index_and_figure(split_dir):
    index = json.loads((split_dir / "index.json").read_text())
    assert index["format"] == "uvhmr-dataset" and index["num_samples"] == 12 and index["image_size"] == SIZE
    assert [s["file"] for s in index["shards"]] == ["shard-00000.shard", "shard-00001.shard"]
    assert [s["num_samples"] for s in index["shards"]] == [8, 4]
    assert index["occlusion"]["families"] == "train"
    st = index["stats"]
    assert 0.55 < st["fill_mean"] < 0.97 and 0 < st["wp_reprojection_error_px_mean"] < 0.05 * SIZE
    png = split_dir / "figures" / "dataset_samples.png"
    assert png.is_file() and png.stat().st_size > 10_000
    sh = Shard(split_dir / "shard-00000.shard", verify=True)
    assert sh["image"].dtype == np.uint8 and sh["image"].shape == (8, SIZE, SIZE, 3)
    assert sh["M_l"].dtype == np.float32 and sh["uv"].dtype == np.uint16 and sh["part14"].dtype == np.int8
    assert sh["offsets"][-1] == len(sh["M_l"]) == len(sh["uv"])


def test_same_seed_gives_byte_identical_files(anny_dir, uv_dir, split_dir, tmp_path):
    again = build(anny_dir, uv_dir, tmp_path / "again")
    names = sorted(p.relative_to(split_dir).as_posix() for p in split_dir.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file())
    for n in names:
        assert (split_dir / n).read_bytes() == (again / n).read_bytes(), n
    other = build(anny_dir, uv_dir, tmp_path / "other", seed=1, n_dmp_train=8)
    assert (other / "shard-00000.shard").read_bytes() != (split_dir / "shard-00000.shard").read_bytes()


def test_test_split_uses_held_out_occluder_families(anny_dir, uv_dir, tmp_path):
    d = build(anny_dir, uv_dir, tmp_path / "test", split="test")
    index = json.loads((d / "index.json").read_text())
    assert index["occlusion"]["families"] == "test" and index["num_samples"] == 6
    a, b = SampleDataset(d)[3], SampleDataset(d)[3]          # fixed occluders: the same every time
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["occluder"], b["occluder"])
    assert a["occluder"].sum() > 0


def test_truncated_or_corrupt_shards_are_named(split_dir, tmp_path):
    raw = (split_dir / "shard-00001.shard").read_bytes()
    cut = tmp_path / "cut.shard"
    cut.write_bytes(raw[:-100])
    with pytest.raises(ShardError, match=r"cut\.shard: truncated"):
        Shard(cut)
    bad = tmp_path / "bad.shard"
    flipped = bytearray(raw)
    flipped[-200] ^= 0xFF
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ShardError, match=r"bad\.shard: corrupt: array"):
        Shard(bad, verify=True)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "index.json").write_bytes((split_dir / "index.json").read_bytes())
    (copy / "shard-00000.shard").write_bytes((split_dir / "shard-00000.shard").read_bytes())
    with pytest.raises(ShardError, match=r"shard-00001\.shard: no such shard"):
        SampleDataset(copy)


# ----------------------------------------------------------------------------- ground truth

@pytest.mark.parametrize("i", [0, 9])
def test_M_l_is_the_surface_point_seen_through_each_pixel(anny, split_dir, i):
    """Rebuild the body from the stored pose, shape and camera; cast the ray of every covered
    pixel through it: M_l + root is where it hits, within 1e-5 m."""
    ds = SampleDataset(split_dir)
    raw = ds.raw(i)
    v = cam_vertices(anny, raw)
    pix = np.argwhere(raw["mask"])
    assert len(pix) > 50
    hit, face = ray_cast(v, anny.faces.numpy(), raw["K"].astype(np.float64), pix)
    assert (face >= 0).all()
    err = np.linalg.norm(hit - raw["root"] - raw["M_l"][pix[:, 0], pix[:, 1]], axis=1)
    assert err.max() < 1e-5, err.max()
    # Nothing is hit where the mask says background (a ring of pixels around the body).
    import cv2
    ring = cv2.dilate(raw["mask"].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~raw["mask"]
    _, miss = ray_cast(v, anny.faces.numpy(), raw["K"].astype(np.float64), np.argwhere(ring))
    assert (miss < 0).mean() > 0.99


def test_iuv_lands_on_the_same_surface_point_within_one_texel(anny, uv_dir, split_dir):
    from uvhmr.uv.assets import load_uv_assets
    uv = load_uv_assets(uv_dir, anny.faces.numpy())
    res = 128
    sampler, lk = uv.sampler(res), uv.lookup(res)
    faces, layout = anny.faces.numpy(), uv.face_uv.astype(np.float64)
    ok, total = 0, 0
    for i in (0, 5, 11):
        raw = SampleDataset(split_dir).raw(i)
        v = cam_vertices(anny, raw)
        pix = np.argwhere(raw["mask"])
        _, face = ray_cast(v, faces, raw["K"].astype(np.float64), pix)
        uvs = raw["uv"][pix[:, 0], pix[:, 1]].astype(np.float64)
        r = np.rint((1 - uvs[:, 1]) * (res - 1)).astype(int)
        c = np.rint(uvs[:, 0] * (res - 1)).astype(int)
        uv_l = sampler.from_vertices(torch.from_numpy(v - raw["root"]).float()[None])[0].permute(1, 2, 0).numpy()
        looked = uv_l[r, c]
        # One texel on the surface: the face's UV -> 3-D Jacobian times the texel spacing.
        P, U = v[faces[face]], layout[face]
        J = np.einsum("nij,njk->nik", np.stack([P[:, 1] - P[:, 0], P[:, 2] - P[:, 0]], -1),
                      np.linalg.inv(np.stack([U[:, 1] - U[:, 0], U[:, 2] - U[:, 0]], -1)))
        texel = np.linalg.norm(J, ord=2, axis=(1, 2)) / (res - 1)
        d = np.linalg.norm(looked - raw["M_l"][pix[:, 0], pix[:, 1]], axis=1)
        good = d <= texel + 1e-5
        assert good[lk.mask[r, c]].mean() > 0.99          # texels inside an island
        ok, total = ok + good.sum(), total + len(good)
    assert ok / total > 0.98                               # island borders and seams included


def test_M_d_is_M_l_minus_M_j_exactly_and_M_j_is_the_part_joint(split_dir):
    for joints in (14, 24):
        ds = SampleDataset(split_dir, joints=joints, augment=Augment(), seed=3)
        for i in (0, 7):
            s = ds[i]
            assert torch.equal(s["M_d"], s["M_l"] - s["M_j"])
            on = s["parts"] >= 0
            assert torch.equal(on, s["mask"][0] > 0)
            key = "joints3d" if joints == 14 else "joints3d_24"
            assert torch.equal(s["M_j"].permute(1, 2, 0)[on], s[key][s["parts"][on]])
            assert (s["M_l"][:, ~on] == 0).all() and (s["iuv"][:, ~on] == 0).all()


def test_2d_joints_are_the_perspective_projections_of_the_3d_joints(anny, split_dir):
    ds = SampleDataset(split_dir)
    errs = []
    for i in range(len(ds)):
        raw = ds.raw(i)
        with torch.no_grad():
            out = anny(torch.from_numpy(raw["pose"])[None], torch.from_numpy(raw["shape"])[None])
        R, t, K = (raw[k].astype(np.float64) for k in ("R", "t", "K"))
        for key, j2, jm in (("joints3d", "joints2d", out.lsp14), ("joints3d_24", "joints2d_24", out.joints24)):
            cam = jm[0].double().numpy() @ R.T + t
            assert np.abs(project(cam, K) - raw[j2]).max() < 0.5
            np.testing.assert_allclose(cam - raw["root"], raw[key], atol=1e-5)
        from uvhmr.data.scene import weak_perspective_project
        errs.append(np.linalg.norm(weak_perspective_project(raw["joints3d"], raw["cam_wp"], SIZE) - raw["joints2d"], axis=1).mean())
    # The weak-perspective camera the networks regress: a few per cent of the image at most.
    assert np.mean(errs) < 0.03 * SIZE


# ----------------------------------------------------------------------------- occlusion

def test_a_joint_whose_part_is_fully_occluded_is_invisible(split_dir, monkeypatch):
    import uvhmr.data.dataset as dsmod
    ds = SampleDataset(split_dir, occlusion=False)
    raw = ds.raw(2)
    k = 9                                                     # L_shoulder
    part = raw["part14"] == k
    assert part.sum() > 0
    clean = ds[2]
    assert clean["visible"][k] and clean["occluder"].sum() == 0

    def cover(rng, size, params):                             # one occluder exactly over that part
        return np.zeros((size, size, 3), np.float32), part.astype(np.float32)
    monkeypatch.setattr(dsmod, "occluders", cover)
    s = SampleDataset(split_dir, occlusion=True)[2]
    assert not s["visible"][k]
    others = [j for j in range(14) if j != k and clean["visible"][j]]
    assert s["visible"][others].all()
    assert (s["mask"][0][torch.from_numpy(part)] == 0).all() and (s["body_mask"][0][torch.from_numpy(part)] == 1).all()
    assert (s["M_l"][:, torch.from_numpy(part)] == 0).all()


def test_load_time_occlusion_changes_only_the_image_and_visible_masks(split_dir):
    a = SampleDataset(split_dir, occlusion=False)[4]
    b = SampleDataset(split_dir, occlusion=True)[4]
    occ = b["occluder"][0] > 0
    assert occ.any()
    assert torch.equal(a["body_mask"], b["body_mask"]) and torch.equal(a["joints3d"], b["joints3d"])
    assert torch.equal(b["mask"][0], a["mask"][0] * ~occ)
    assert torch.equal(b["M_l"], a["M_l"] * ~occ)


# ----------------------------------------------------------------------------- augmentation

def test_flip_augmentation_equals_the_sample_of_the_mirrored_body(anny, ctx, tmp_path):
    """Render a body and its mirror image (mirrored pose, mirrored camera); flipping the first
    sample gives the second."""
    from uvhmr.data.orientation import OrientationSampler, with_orientation
    from uvhmr.data.scene import place_camera
    g = torch.Generator().manual_seed(5)
    pose = 0.3 * torch.randn(1, 36, 3, generator=g)
    pose = with_orientation(pose, OrientationSampler().sample(1, 11))
    shape = anny.sample_shape(1, 3)
    mpose = anny.mirror_pose(pose)
    recs = []
    with torch.no_grad():
        a, b = anny(pose, shape), anny(mpose, shape)
    va = a.vertices[0].double().numpy()
    K, t, _ = place_camera(va, ctx.R0, np.random.default_rng(0), SIZE)
    MX = np.diag([-1.0, 1, 1])
    for out, R, tt in ((a, ctx.R0, t), (b, MX @ ctx.R0 @ MX, MX @ t)):
        recs.append(rs.render_sample(ctx, out.vertices[0].double().numpy(), out.lsp14[0].double().numpy(),
                                      out.joints24[0].double().numpy(), K, R, tt, np.random.default_rng(1)))
    arrays = fmt.pack_records(recs, torch.cat([pose, mpose]).numpy(), torch.cat([shape, shape]).numpy(), np.arange(2))
    write_shard(tmp_path / "pair.shard", arrays)
    sh = Shard(tmp_path / "pair.shard")
    s0, s1 = read_sample(sh, 0, SIZE, fmt.UV_SCALE), read_sample(sh, 1, SIZE, fmt.UV_SCALE)
    mirror = {"lsp14": anny.lsp14.mirror, "joints24": anny.joints24.mirror, "rig": anny.joint_mirror.numpy()}
    f = flip_sample(s0, mirror, SIZE)
    assert (f["mask"] == s1["mask"]).mean() > 0.995
    both = f["mask"] & s1["mask"]
    assert np.abs(f["uv"][both] - s1["uv"][both]).max() < 2e-3
    assert np.abs(f["M_l"][both] - s1["M_l"][both]).max() < 1e-3
    assert (f["part14"][both] == s1["part14"][both]).mean() > 0.99
    assert (f["part24"][both] == s1["part24"][both]).mean() > 0.99
    for k, tol in (("joints3d", 1e-4), ("joints3d_24", 1e-4), ("joints2d", 1e-2), ("joints2d_24", 1e-2),
                   ("root", 1e-4), ("cam_wp", 1e-4), ("R", 1e-6), ("t", 1e-5), ("pose", 1e-6)):
        np.testing.assert_allclose(f[k], s1[k], atol=tol, err_msg=k)


def test_rotation_and_zoom_keep_every_map_on_its_camera(split_dir):
    """After augmentation the stored camera still explains the sample: joints project onto the
    2-D joints and each pixel's M_l + root projects back onto (about) that pixel."""
    ds = SampleDataset(split_dir, augment=Augment(scale=0.25, rotation=30, rot_prob=1.0, flip=0.5), seed=7)
    seen = set()
    for i in range(6):
        s = {k: v.numpy() for k, v in ds[i].items()}
        K = s["K"].astype(np.float64)
        for j3, j2 in (("joints3d", "joints2d"), ("joints3d_24", "joints2d_24")):
            assert np.abs(project(s[j3] + s["root"], K) - s[j2]).max() < 0.5
        on = s["mask"][0] > 0                      # M_l is defined on visible body pixels
        rc = np.argwhere(on)
        p = project(s["M_l"].transpose(1, 2, 0)[on] + s["root"], K)
        assert np.quantile(np.linalg.norm(p - (rc[:, ::-1] + 0.5), axis=1), 0.99) < 1.5
        seen.add(bool(s["flipped"]))
        assert s["image"].min() >= 0 and s["image"].max() <= 1
    assert seen == {True, False}


def test_dataset_items_are_deterministic_and_work_in_loader_workers(split_dir):
    ds = SampleDataset(split_dir, augment=Augment(), seed=1)
    ds.set_epoch(2)
    a = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0)))
    b = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ds.set_epoch(3)
    c = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0)))
    assert not torch.equal(a["image"], c["image"])
    keys = {"image": (3, SIZE, SIZE), "mask": (1, SIZE, SIZE), "iuv": (3, SIZE, SIZE), "M_j": (3, SIZE, SIZE),
            "M_l": (3, SIZE, SIZE), "M_d": (3, SIZE, SIZE), "parts": (SIZE, SIZE), "joints3d": (14, 3),
            "joints2d": (14, 2), "visible": (14,), "visible_24": (24,), "cam_wp": (3,), "K": (3, 3), "pose": (36, 3)}
    for k, shp in keys.items():
        assert tuple(a[k].shape[1:]) == shp, k


def test_rebuild_vertices_matches_M_l(anny, split_dir):
    s = torch.utils.data.default_collate([SampleDataset(split_dir)[i] for i in (1, 3)])
    with torch.no_grad():
        v = rebuild_vertices(anny, s["pose"], s["shape"], s["R"], s["t"], s["root"])
    assert v.shape == (2, anny.num_vertices, 3)
    # Every M_l value lies within a triangle's size of some vertex.
    m = s["M_l"][0].permute(1, 2, 0)[s["mask"][0, 0] > 0]
    assert torch.cdist(m, v[0]).min(1).values.max() < 0.03


def test_parallel_shard_builders_write_the_same_bytes(anny, anny_dir, uv_dir, tmp_path, monkeypatch):
    """With resources.threads > 1 the rule starts one `python -m uvhmr.data.sources` per worker
    (what a cluster job would run per shard); the result is byte-identical to a serial build.
    Uses a tiny real mocap output, since the workers read it themselves."""
    from uvhmr.config import MocapParams
    from uvhmr.data.mocap import build_mocap
    mrp = RuleParams("smoke", "mocap", None, RunParams(seed=0), BodyModelParams(),
                     MocapParams(n_train=12, n_val=4, shard_size=12, figure=False))
    build_mocap(mrp, anny, tmp_path / "mocap", log=lambda *_: None)
    monkeypatch.setattr(syn, "PARALLEL_MIN_SAMPLES", 0)
    for threads in (1, 2):
        rp = rule(n_dmp_train=6, shard_size=3, resources=Resources(threads=threads))
        run_dataset(rp, anny_dir, uv_dir, tmp_path / "mocap", "dmp_train", tmp_path / f"t{threads}", log=lambda *_: None)
    names = sorted(p.name for p in (tmp_path / "t1").iterdir() if p.is_file())
    assert names == ["index.json", "shard-00000.shard", "shard-00001.shard"]
    for n in names:
        assert (tmp_path / "t1" / n).read_bytes() == (tmp_path / "t2" / n).read_bytes(), n

