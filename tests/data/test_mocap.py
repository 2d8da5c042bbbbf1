"""The mocap rule on the built-in prior: output layout, determinism, streaming reader, errors."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from uvhmr.config import load_params, rule_params
from uvhmr.data.mocap import FIGURE, MANIFEST, MocapFormatError, build_mocap, open_mocap, run_mocap

REPO = Path(__file__).resolve().parents[2]


def _rp(**over):
    rp = rule_params(load_params(REPO / "params.yaml", "smoke"), "mocap")
    return dataclasses.replace(rp, section=dataclasses.replace(rp.section, **over))


@pytest.fixture(scope="module")
def built(tmp_path_factory, anny_dir):
    out = tmp_path_factory.mktemp("mocap") / "mocap"
    logs = []
    run_mocap(_rp(n_train=300, n_val=40, shard_size=128), anny_dir, out, log=logs.append)
    return out, logs


def test_layout_and_manifest(built, anny):
    out, logs = built
    m = json.loads((out / MANIFEST).read_text())
    assert m["backend"] == "anny" and m["source"] == "prior" and m["up_axis"] == "z"
    assert m["splits"]["train"] == {"count": 300, "shards": [128, 128, 44]}
    assert m["splits"]["val"] == {"count": 40, "shards": [40]}
    assert m["fields"]["pose"] == {"shape": [anny.num_joints, 3], "dtype": "float32"}
    assert m["lsp14_names"] == list(anny.lsp14.names) and m["joint_names"] == list(anny.joint_names)
    assert set(m["limits_deg"]) == set(anny.joint_names)
    st = m["stats"]["train"]
    assert st["candidates"] == 300 + st["rejected_self_penetration"]
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == sorted([MANIFEST, FIGURE] + [f"train/{f}-{i:05d}.npy" for f in m["fields"] for i in range(3)]
                           + [f"val/{f}-00000.npy" for f in m["fields"]])
    assert (out / FIGURE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("ms/pose" in line for line in logs)


def test_rows_are_body_frame_root_relative_and_match_the_model(built, anny):
    out, _ = built
    d = open_mocap(out, "train")
    assert len(d) == 300
    b = d.batch(np.arange(0, 300, 7))
    assert torch.all(b["pose"][:, 0] == 0)                                  # root: identity
    torch.testing.assert_close(b["lsp14"][:, [2, 3]].mean(1), torch.zeros(len(b["pose"]), 3), atol=1e-6, rtol=0)
    with torch.no_grad():
        o = anny(b["pose"], b["shape"])
    root = o.lsp14[:, [2, 3]].mean(1, keepdim=True)
    torch.testing.assert_close(b["lsp14"], o.lsp14 - root, atol=1e-5, rtol=0)
    torch.testing.assert_close(b["joints24"], o.joints24 - root, atol=1e-5, rtol=0)
    assert b["lsp14"][:, 13, 2].min() > 0.3                                # head top well above the hips (Z up)
    assert set(b["category"].tolist()) <= set(range(8))


def test_same_params_give_byte_identical_arrays(built, anny, tmp_path):
    out, _ = built
    again = tmp_path / "again"
    build_mocap(_rp(n_train=300, n_val=40, shard_size=128, figure=False), anny, again, log=lambda s: None)
    for f in sorted((out / "train").iterdir()) + sorted((out / "val").iterdir()):
        assert (again / f.parent.name / f.name).read_bytes() == f.read_bytes(), f.name
    other = tmp_path / "other"
    rp = _rp(n_train=300, n_val=40, shard_size=128, figure=False)
    build_mocap(dataclasses.replace(rp, run=dataclasses.replace(rp.run, seed=1)), anny, other, log=lambda s: None)
    assert (other / "train/pose-00000.npy").read_bytes() != (out / "train/pose-00000.npy").read_bytes()


def test_iter_batches_streams_every_row_once(built):
    out, _ = built
    d = open_mocap(out, "train")
    seen = [b["category"].shape[0] for b in d.iter_batches(64, shuffle=True, seed=3)]
    assert seen == [64, 64, 64, 64, 44]
    key = lambda b: [tuple(r) for r in b["lsp14"][:, 0].numpy().round(6)]
    rows = sorted(r for b in d.iter_batches(64, shuffle=True, seed=3) for r in key(b))
    assert rows == sorted(key(d.batch(np.arange(300))))
    a = [b["pose"] for b in d.iter_batches(64, shuffle=True, seed=3)]
    c = [b["pose"] for b in d.iter_batches(64, shuffle=True, seed=4)]
    assert torch.equal(a[0], next(d.iter_batches(64, shuffle=True, seed=3))["pose"]) and not torch.equal(a[0], c[0])
    plain = next(d.iter_batches(10))
    assert torch.equal(plain["pose"], d.batch(np.arange(10))["pose"])
    assert [b["pose"].shape[0] for b in d.iter_batches(128, drop_last=True)] == [128, 128]


def test_corrupt_or_missing_shards_are_named(built, tmp_path):
    import shutil
    out, _ = built
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    f = bad / "train" / "lsp14-00001.npy"
    f.write_bytes(f.read_bytes()[:1000])                                     # truncated
    with pytest.raises(MocapFormatError, match="lsp14-00001.npy"):
        open_mocap(bad, "train")
    assert len(open_mocap(bad, "val")) == 40
    (bad / "train" / "lsp14-00001.npy").unlink()
    with pytest.raises(MocapFormatError, match="lsp14-00001.npy: missing"):
        open_mocap(bad, "train")
    (bad / MANIFEST).write_text("{oops")
    with pytest.raises(MocapFormatError, match="manifest.json: corrupt"):
        open_mocap(bad, "val")
    with pytest.raises(MocapFormatError, match="no mocap manifest"):
        open_mocap(tmp_path / "nowhere", "train")
    with pytest.raises(MocapFormatError, match="no split 'test'"):
        open_mocap(out, "test")


def test_licensed_sources_refuse_anny(anny, tmp_path):
    from uvhmr.data.mocap_loaders import MocapSourceError
    with pytest.raises(MocapSourceError, match="needs body_model.backend: smpl"):
        build_mocap(_rp(source="amass", files=str(tmp_path)), anny, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_figure_lays_the_lying_example_down(anny):
    """The figure's "lying" body is posed as the renders pose that family (trunk within 30 deg of
    the ground plane, Z up); the other families' bodies stay as drawn."""
    from uvhmr.data.mocap import _figure_body
    from uvhmr.data.pose_prior import PosePrior
    smp = PosePrior.from_model(anny, {"lying": 1.0}).sample(6, np.random.default_rng(0))
    pose, shape = torch.from_numpy(smp.pose), anny.mean_shape()[None].expand(6, -1)
    with torch.no_grad():
        lsp = anny(pose, shape).lsp14
    lsp = lsp - lsp[:, 2:4].mean(1, keepdim=True)
    labels = set()
    for i in range(6):
        label, p, _ = _figure_body("lying", pose[i], shape[i], lsp[i], anny.up_axis, seed=i)
        with torch.no_grad():
            j = anny(p[None], shape[i:i + 1]).lsp14[0]
        trunk = j[12] - j[2:4].mean(0)
        assert abs(float(trunk[2] / trunk.norm())) < np.sin(np.deg2rad(30)), label
        labels.add(label)
    assert labels <= {"lying (on the back)", "lying (on the front)", "lying (on a side)"} and len(labels) > 1
    label, p, s = _figure_body("arms_overhead", pose[0], shape[0], lsp[0], anny.up_axis, seed=0)
    assert label == "arms overhead" and torch.equal(p, pose[0]) and torch.equal(p[0], torch.zeros(3))
