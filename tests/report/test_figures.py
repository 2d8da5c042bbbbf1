"""The figures rule's pieces: the fixed choice of Fig. 8's test images, the weak-perspective
projection, and the figure itself on made-up predictions."""
import numpy as np

from uvhmr.report.figures import pick_samples, qualitative_figure, weak_project


def test_pick_samples_is_fixed_and_includes_occluded_images():
    rng = np.random.default_rng(0)
    visible = rng.random((100, 14)) > 0.1
    chosen = pick_samples(visible, 6, 3, 2)
    assert chosen == pick_samples(visible.copy(), 6, 3, 2) and len(chosen) == 6 == len(set(chosen))
    hidden = (~visible[chosen]).sum(1)
    assert (hidden >= 2).sum() == 3
    # Too few occluded images: the rest are clear ones (and the other way round).
    visible[:] = True
    visible[5, :3] = False
    assert pick_samples(visible, 6, 3, 2).count(5) == 1 and len(pick_samples(visible, 6, 3, 2)) == 6
    assert pick_samples(~np.zeros((4, 14), bool), 6, 3, 2) == [0, 1, 2, 3]


def test_weak_project_matches_the_dataset_camera_convention():
    # 2 x / S - 1 = s (X_xy + t): the root (0) lands at (t s + 1) S / 2.
    p = weak_project(np.array([[0.0, 0.0, 0.3], [0.5, -0.25, 0.0]]), np.array([0.8, 0.1, -0.2]), 64)
    assert np.allclose(p[0], [(0.08 + 1) * 32, (-0.16 + 1) * 32])
    assert np.allclose(p[1], [(0.8 * 0.6 + 1) * 32, (0.8 * -0.45 + 1) * 32])


def test_fig8_draws_every_panel(tmp_path):
    rng = np.random.default_rng(1)
    verts = np.array([[0, -0.5, 0], [0.3, 0.4, 0], [-0.3, 0.4, 0], [0, 0, 0.3]], np.float32)
    faces = np.array([[0, 1, 2], [0, 1, 3], [1, 2, 3], [0, 2, 3]])
    j = rng.normal(0, 0.3, (14, 3)).astype(np.float32)
    cam = np.array([0.9, 0.0, 0.0], np.float32)
    row = {"index": 3, "image": rng.random((16, 16, 3)).astype(np.float32), "gt_2d": rng.random((14, 2)) * 16,
           "visible": np.arange(14) % 3 > 0, "gt": j, "dmp": j, "dmp_observed": np.arange(14) % 2 == 0,
           "dmp_cam": cam, "ik": j, "ik_verts": verts, "uvi": j, "uvi_verts": verts, "uvi_cam": cam,
           "errors": {k: 1.0 for k in ("dmp", "ik", "ik_mesh", "uvi", "uvi_mesh")}}
    out = tmp_path / "fig8.png"
    qualitative_figure(out, [row, dict(row, index=4, visible=np.ones(14, bool))], faces, 48, "title")
    import matplotlib.image as mpimg
    img = mpimg.imread(out)
    assert img.shape[0] > 300 and img.shape[1] > 900
