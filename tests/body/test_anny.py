"""The Anny backend through the shared interface (needs the export: built once, ~70 s)."""
import numpy as np
import torch

from uvhmr.body.joints import LSP14_NAMES, SMPL24_NAMES, mirror_points
from uvhmr.body.model import load_body_model

REPO_CACHE = "resources/body/.anny-cache"


def _ref(anny, batch=1):
    return anny(anny.reference_pose(batch), anny.mean_shape()[None].expand(batch, -1))


def test_lsp14_is_spin_order_with_left_at_plus_x(anny):
    assert anny.lsp14.names == LSP14_NAMES
    j = _ref(anny).lsp14[0]
    idx = {n: i for i, n in enumerate(LSP14_NAMES)}
    for n in LSP14_NAMES:
        if n.startswith("L_"):
            assert j[idx[n], 0] > 0.05, n            # +X is the body's left on Anny
            r = j[idx["R_" + n[2:]]]
            assert torch.allclose(r, j[idx[n]] * torch.tensor([-1.0, 1, 1]), atol=1e-4), n
    z = j[:, 2]
    assert z[idx["L_ankle"]] < z[idx["L_knee"]] < z[idx["L_hip"]] < z[idx["L_shoulder"]] < z[idx["neck"]] < z[idx["head_top"]]
    assert z[idx["L_wrist"]] < z[idx["L_elbow"]] < z[idx["L_shoulder"]]   # A-pose: arms hang
    assert abs(j[idx["neck"], 0]) < 1e-3 and abs(j[idx["head_top"], 0]) < 1e-3
    # The head-top vertex is the top of the mesh (within 1 mm).
    v = _ref(anny).vertices[0]
    assert v[:, 2].max() - j[idx["head_top"], 2] < 1e-3


def test_lsp14_joints_are_the_documented_bones(anny):
    out = _ref(anny)
    names = list(anny.joint_names)
    for k, bone in [(0, "foot.R"), (1, "lowerleg01.R"), (2, "upperleg01.R"), (3, "upperleg01.L"),
                    (6, "wrist.R"), (7, "lowerarm01.R"), (8, "upperarm01.R"), (12, "neck03")]:
        assert torch.equal(out.lsp14[0, k], out.joints[0, names.index(bone)]), bone


def test_joints24_hands_and_feet_from_vertex_rings(anny):
    out = _ref(anny)
    j = out.joints24[0]
    i = {n: k for k, n in enumerate(SMPL24_NAMES)}
    assert torch.allclose(j[i["R_hand"]], j[i["L_hand"]] * torch.tensor([-1.0, 1, 1]), atol=1e-4)
    assert torch.allclose(j[i["R_foot"]], j[i["L_foot"]] * torch.tensor([-1.0, 1, 1]), atol=1e-4)
    # The hand joint lies beyond the wrist (and hangs lower in the A-pose); the foot joint lies
    # in front of the ankle (-Y is forward) and lower.
    hand, wrist = j[i["L_hand"]], j[i["L_wrist"]]
    assert 0.04 < (hand - wrist).norm() < 0.15 and hand[2] < wrist[2]
    foot, ankle = j[i["L_foot"]], j[i["L_ankle"]]
    assert foot[1] < ankle[1] - 0.05 and foot[2] < ankle[2]


def test_mirrored_pose_gives_mirrored_mesh(anny):
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(6, anny.num_joints, 3, generator=g) * 0.4
    shape = anny.sample_shape(6, seed=3)
    transl = torch.randn(6, 3, generator=g) * torch.tensor([0.0, 1.0, 1.0])  # a mirror keeps x = 0
    a = anny(pose, shape, transl)
    b = anny(anny.mirror_pose(pose), shape, transl)
    err = (mirror_points(a.vertices, anny.vertex_mirror) - b.vertices).norm(dim=-1).max()
    assert err < 1e-3, f"max vertex error {err * 1000:.3f} mm"
    lsp_err = (mirror_points(a.lsp14, anny.lsp14.mirror) - b.lsp14).norm(dim=-1).max()
    assert lsp_err < 1e-3


def test_mirror_maps_are_involutions_and_consistent(anny):
    vm, fm = anny.vertex_mirror, anny.face_mirror
    assert torch.equal(vm[vm], torch.arange(len(vm)))
    assert torch.equal(fm[fm], torch.arange(len(fm)))
    f = anny.faces
    assert torch.equal(vm[f].sort(1).values, f[fm].sort(1).values)
    assert (anny.face_uv >= 0).all() and (anny.face_uv <= 1).all()


def test_adult_shapes_stand_145_to_205(anny):
    shape = anny.sample_shape(400, seed=11)
    heights = []
    with torch.no_grad():
        for s in shape.split(100):
            v = anny(anny.reference_pose(len(s)), s).vertices
            heights.append(v[..., 2].amax(1) - v[..., 2].amin(1))
    h = torch.cat(heights)
    frac = ((h > 1.45) & (h < 2.05)).float().mean().item()
    assert frac >= 0.95, f"{frac:.3f} of sampled adults in 1.45-2.05 m (min {h.min():.2f}, max {h.max():.2f})"
    assert torch.equal(shape, anny.sample_shape(400, seed=11))   # deterministic by seed
    assert not torch.equal(shape, anny.sample_shape(400, seed=12))


def test_export_left_no_build_cache_and_loads_fast(anny_dir):
    import time
    from pathlib import Path
    assert not (Path(anny_dir).parents[1] / "body/.anny-cache").exists()
    t = time.perf_counter()
    load_body_model(anny_dir)
    assert time.perf_counter() - t < 20   # generous: the point is "no 70 s rebuild"


def test_bad_pose_shape_is_a_clear_error(anny):
    import pytest
    with pytest.raises(ValueError, match=r"pose must be \(B, 36, 3\)"):
        anny(torch.zeros(1, 24, 3), anny.mean_shape()[None])
