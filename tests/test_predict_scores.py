"""uvhmr.predict_scores on hand-made fixtures whose scores are known exactly (issue #23)."""
import json
import math

import numpy as np
import pytest

from uvhmr.predict_cli import Box, Crop, dumps, perspective_camera, result_json, weak_to_image, write_obj
from uvhmr.predict_scores import (box_side, mesh_mask, pck, projected_vertices, read_obj, score_prediction,
                                  silhouette_iou)


def _gt_joints():
    """14 joints whose box is 100 px tall and 40 px wide: the PCK@0.1 threshold is 10 px."""
    gt = np.zeros((14, 2))
    gt[:, 0] = np.linspace(30, 70, 14)
    gt[:, 1] = np.linspace(10, 110, 14)
    return gt


def test_box_side_is_the_longer_side():
    assert box_side(_gt_joints()) == pytest.approx(100.0)
    assert box_side([[0, 0], [7, 3]]) == pytest.approx(7.0)


def test_pck_counts_joints_within_a_tenth_of_the_box():
    gt = _gt_joints()
    offsets = np.array([0, 5, 9.99, 10.0, 10.01, 30, 0, 0, 0, 0, 0, 0, 0, 0])   # px, along x
    pred = gt + np.stack([offsets, np.zeros(14)], 1)
    assert pck(pred, gt) == pytest.approx(12 / 14)           # 10.01 and 30 miss; 10.0 is on the threshold
    assert pck(pred, gt, alpha=0.2) == pytest.approx(13 / 14)  # threshold 20: only 30 misses
    # a diagonal offset of (6, 8) is 10 px: correct; (6, 8.1) is not
    diag = gt.copy()
    diag[0] += [6, 8]
    diag[1] += [6, 8.1]
    assert pck(diag, gt) == pytest.approx(13 / 14)


def test_pck_only_over_visible_joints():
    gt = _gt_joints()
    pred = gt.copy()
    pred[:4, 0] += 50                                         # joints 0-3 miss
    visible = np.ones(14, bool)
    visible[:4] = False
    assert pck(pred, gt) == pytest.approx(10 / 14)
    assert pck(pred, gt, visible) == pytest.approx(1.0)      # the misses are the invisible ones
    visible[:] = False
    visible[0] = True
    assert pck(pred, gt, visible) == 0.0
    assert math.isnan(pck(pred, gt, np.zeros(14, bool)))


def test_pck_non_finite_prediction_is_a_miss_and_shapes_are_checked():
    gt = _gt_joints()
    pred = gt.copy()
    pred[0] = np.nan
    pred[1, 0] = np.inf
    assert pck(pred, gt) == pytest.approx(12 / 14)
    with pytest.raises(ValueError):
        pck(gt[:13], gt)
    with pytest.raises(ValueError):
        pck(gt, gt, np.ones(13, bool))


def test_iou_of_a_square_and_its_shift():
    a = np.zeros((32, 32), bool)
    a[4:14, 4:14] = True                                      # 10 x 10
    b = np.zeros_like(a)
    b[4:14, 9:19] = True                                      # shifted 5 px right: 50 shared, 150 in all
    assert silhouette_iou(a, b) == pytest.approx(1 / 3)
    assert silhouette_iou(a, a) == 1.0
    c = np.zeros_like(a)
    c[20:30, 20:30] = True
    assert silhouette_iou(a, c) == 0.0
    assert math.isnan(silhouette_iou(np.zeros_like(a), np.zeros_like(a)))
    with pytest.raises(ValueError):
        silhouette_iou(a, a[:31])


def _square(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def test_mesh_mask_covers_the_pixel_centres_inside_the_faces():
    # The square [2, 6) x [3, 7) in continuous pixels holds the centres of columns 2-5, rows 3-6.
    xy = _square(2, 3, 6, 7)
    want = np.zeros((10, 12), bool)
    want[3:7, 2:6] = True
    for faces in ([[0, 1, 2], [0, 2, 3]], [[0, 2, 1], [0, 3, 2]]):          # either winding: no culling
        assert np.array_equal(mesh_mask(xy, np.array(faces), 10, 12), want)
    # Overlapping faces add up (they do not cancel as an even-odd polygon fill would).
    xy2 = np.concatenate([xy, xy])
    assert np.array_equal(mesh_mask(xy2, np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]]), 10, 12), want)
    # A square shifted by half a pixel covers different centres: [2.6, 6.6) holds columns 3-6.
    want_shift = np.zeros((10, 12), bool)
    want_shift[3:7, 3:7] = True
    assert np.array_equal(mesh_mask(xy + [0.6, 0], np.array([[0, 1, 2], [0, 2, 3]]), 10, 12), want_shift)
    # Outside the image: nothing; non-finite: nothing.
    assert not mesh_mask(xy + 100, np.array([[0, 1, 2]]), 10, 12).any()
    assert not mesh_mask(xy * np.nan, np.array([[0, 1, 2]]), 10, 12).any()


def test_read_obj_reads_what_predict_writes(tmp_path):
    v = np.array([[0, 0, 1], [1, 0, 1], [1, 1, 1.5], [0, 1, 2]], np.float64)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.random.default_rng(0).random((2, 3, 2))
    write_obj(tmp_path / "m.obj", v, f, uv, ["a header"])
    rv, rf = read_obj(tmp_path / "m.obj")
    assert np.allclose(rv, v) and np.array_equal(rf, f)


def _write_prediction(tmp_path, cam, c, size_wh, joints, verts, faces):
    """predict's two files for one image, written by predict's own functions."""
    K, T = perspective_camera(cam, c, *size_wh)
    write_obj(tmp_path / "p.obj", verts + (T if T is not None else 0.0), faces, np.zeros((len(faces), 3, 2)))
    res = result_json(tmp_path / "p.png", size_wh, Box((0, 0) + tuple(size_wh), "bbox"), c, joints, cam, K, T, {})
    (tmp_path / "p.json").write_text(dumps(res))
    return res


def test_score_prediction_end_to_end(tmp_path):
    """A flat 'body' (a square in the z = 0 plane, root-relative metres) predicted with a weak camera
    in a crop of a 40 x 30 image: the scores against ground truths made from that same camera are
    1, and against a ground truth shifted by a known amount they are known."""
    c = Crop(x=4, y=-2, side=32, size=64)
    cam = np.array([0.5, 0.1, -0.2])                          # s, tx, ty: 8 px per metre in the image
    verts = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    joints = np.concatenate([verts, np.zeros((10, 3))])[:14] * 0.9
    res = _write_prediction(tmp_path, cam, c, (40, 30), joints, verts, faces)
    corners = weak_to_image(verts, cam, c)                    # (x, y) = 8 (X + t) + 16 + (4, -2)
    assert np.allclose(corners[0], [8 * (-1 + 0.1) + 20, 8 * (-1 - 0.2) + 14])
    lo, hi = corners.min(0), corners.max(0)                   # a 16 x 16 px square
    yy, xx = np.mgrid[0:30, 0:40] + 0.5
    gt_mask = (xx >= lo[0]) & (xx <= hi[0]) & (yy >= lo[1]) & (yy <= hi[1])
    gt_j = weak_to_image(joints, cam, c)
    s = score_prediction(tmp_path / "p.json", tmp_path / "p.obj", gt_j, None, gt_mask)
    assert s["pck"] == 1.0 and s["iou"] == 1.0
    # The .obj holds the mesh in the perspective camera; projected back by the weak camera it is the square.
    v, _ = read_obj(tmp_path / "p.obj")
    assert np.allclose(projected_vertices(json.loads((tmp_path / "p.json").read_text()), v, "weak"), corners, atol=1e-5)
    # A flat body at the root's depth projects the same through the pinhole camera, up to
    # the .obj's 6 decimals.
    assert np.allclose(projected_vertices(res, v, "perspective"), corners, atol=1e-3)
    assert s["iou_perspective"] == 1.0
    # Ground truth shifted 4 px right (a quarter of the square): IoU 12 / 20; joints 4 px off with a
    # box of 0.9 x 16 = 14.4 px (threshold 1.44 px): PCK 0.
    gt_shift = np.roll(gt_mask, 4, axis=1)
    s2 = score_prediction(tmp_path / "p.json", tmp_path / "p.obj", gt_j + [4, 0], None, gt_shift)
    assert s2["iou"] == pytest.approx(12 * 16 / (20 * 16))
    assert s2["pck"] == 0.0
    # Only the two joints that are "visible" counted, and one of them is right: 0.5.
    near = gt_j.copy()
    near[1] += [4, 0]
    vis = np.zeros(14, bool)
    vis[[0, 1]] = True
    assert score_prediction(tmp_path / "p.json", tmp_path / "p.obj", near, vis, gt_mask)["pck"] == 0.5


def test_projected_vertices_rejects_unknown_camera():
    with pytest.raises(ValueError):
        projected_vertices({"camera": {"translation": None}}, np.zeros((1, 3)), "orthographic")
