import math

import numpy as np
import pytest
import torch

from uvhmr.evaluate.metrics import (
    LSP14_HIPS,
    mpjpe,
    mpve,
    pa_mpjpe,
    per_joint_error,
    procrustes_align,
    root_align,
    root_align_by,
    summarize,
)


def skeletons(b=4, seed=0):
    """(b, 14, 3) float64 random non-planar point sets of about body size, metres."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 14, 3, generator=g, dtype=torch.float64) * 0.3


def random_rotations(b, seed=1):
    """(b, 3, 3) proper rotations from QR with the sign fix-ups."""
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(b, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=1, dim2=2))[:, None, :]
    # QR gives det -1 half the time; flip one column to make every matrix a rotation.
    q[:, :, 0] *= torch.sign(torch.linalg.det(q))[:, None]
    return q


def test_random_rotations_are_proper():
    r = random_rotations(16)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(16, 3, 3))
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(16, dtype=torch.float64))


def test_root_align_puts_mid_hip_at_origin():
    j = skeletons()
    out = root_align(j)
    torch.testing.assert_close(out[:, list(LSP14_HIPS)].mean(1), torch.zeros(4, 3, dtype=torch.float64))
    torch.testing.assert_close(out[:, 5] - out[:, 0], j[:, 5] - j[:, 0])


def test_mpjpe_identical_is_exactly_zero():
    j = skeletons()
    assert torch.equal(mpjpe(j, j.clone()), torch.zeros(4, dtype=torch.float64))


def test_mpjpe_translation_invariant_and_in_mm():
    gt = skeletons(seed=0)
    pred = gt + 0.01 * skeletons(seed=5)
    base = mpjpe(pred, gt)
    assert base.shape == (4,) and (base > 1).all()
    shifted = mpjpe(pred + torch.tensor([1.5, -2.0, 7.0], dtype=torch.float64), gt)
    torch.testing.assert_close(shifted, base, atol=1e-9, rtol=0)
    # 1 cm offset of one non-hip joint, nothing else: 10 mm / 14 joints.
    pred2 = gt.clone()
    pred2[:, 13, 2] += 0.01
    torch.testing.assert_close(mpjpe(pred2, gt), torch.full((4,), 10.0 / 14, dtype=torch.float64))


def test_pa_mpjpe_invariant_to_similarity_transform_of_prediction():
    gt = skeletons(b=8, seed=0)
    pred = gt + 0.02 * skeletons(b=8, seed=3)
    base = pa_mpjpe(pred, gt)
    assert (base > 1).all()  # not trivially zero
    rot = random_rotations(8, seed=7)
    scale = torch.tensor([0.5, 1.0, 2.0, 3.7, 0.1, 1.3, 0.9, 10.0], dtype=torch.float64)
    shift = torch.randn(8, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    moved = scale[:, None, None] * (pred @ rot.transpose(1, 2)) + shift
    assert (mpjpe(moved, gt) > 10 * base).all()  # the transform really moved it
    torch.testing.assert_close(pa_mpjpe(moved, gt), base, atol=1e-6, rtol=0)


def test_procrustes_recovers_exact_similarity():
    gt = skeletons(b=3)
    rot = random_rotations(3)
    pred = 2.5 * (gt @ rot) - 0.4
    torch.testing.assert_close(procrustes_align(pred, gt), gt, atol=1e-10, rtol=0)
    assert pa_mpjpe(pred, gt).abs().max() < 1e-7


def implied_linear_map(src, dst):
    """(3, 3) A with dst_centered ≈ src_centered @ A, by least squares."""
    s = src - src.mean(0)
    d = dst - dst.mean(0)
    return torch.linalg.lstsq(s, d).solution


def test_mirrored_skeleton_is_not_fixed_by_procrustes():
    gt = skeletons(b=4)
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    pred = gt @ mirror
    aligned = procrustes_align(pred, gt)
    # A reflection would map pred back onto gt exactly; a proper rotation cannot.
    assert (pa_mpjpe(pred, gt) > 20).all()
    for i in range(4):
        a = implied_linear_map(pred[i], aligned[i])
        assert torch.linalg.det(a) > 0
        # The map is scale * rotation: A^T A = s^2 I.
        ata = a.T @ a
        torch.testing.assert_close(ata, ata[0, 0] * torch.eye(3, dtype=torch.float64))


def test_accepts_numpy_and_float32():
    gt = skeletons(b=2)
    pred = gt + 0.01
    pred[:, 0] += 0.05
    ref = mpjpe(pred, gt)
    from_np = mpjpe(pred.numpy(), gt.numpy())
    torch.testing.assert_close(from_np, ref)
    torch.testing.assert_close(pa_mpjpe(pred.float().numpy(), gt.float()), pa_mpjpe(pred, gt), atol=1e-3, rtol=0)
    assert procrustes_align(pred.float(), gt).dtype == torch.float32


def hand_example():
    """Two samples; prediction = gt except joint 0 off by 3 cm and joint 13 off by 4 cm."""
    gt = skeletons(b=2)
    pred = gt.clone()
    pred[:, 0, 0] += 0.03
    pred[:, 13, 1] += 0.04
    return pred, gt


def test_visible_only_mpjpe_hand_computed():
    pred, gt = hand_example()
    torch.testing.assert_close(mpjpe(pred, gt), torch.full((2,), 70.0 / 14, dtype=torch.float64))
    visible = torch.zeros(2, 14, dtype=torch.bool)
    visible[0, [0, 5, 13]] = True  # errors 30, 0, 40 mm
    visible[1, [1, 2]] = True  # errors 0, 0 mm
    torch.testing.assert_close(mpjpe(pred, gt, visible=visible),
                               torch.tensor([70.0 / 3, 0.0], dtype=torch.float64))


def test_all_invisible_sample_is_nan_and_summarize_skips_it():
    pred, gt = hand_example()
    visible = torch.ones(2, 14, dtype=torch.bool)
    visible[1] = False
    for fn in (mpjpe, pa_mpjpe):
        out = fn(pred, gt, visible=visible)
        assert not math.isnan(out[0]) and math.isnan(out[1])
    s = summarize(mpjpe(pred, gt, visible=visible))
    assert s == {"mean": pytest.approx(5.0), "median": pytest.approx(5.0), "n": 1}


def test_pa_visible_fits_on_all_joints():
    gt = skeletons(b=3)
    pred = gt + 0.03 * skeletons(b=3, seed=11)
    visible = torch.zeros(3, 14, dtype=torch.bool)
    visible[:, :6] = True  # legs only
    err_all_fit = per_joint_error(pred, gt, "procrustes")[:, :6].mean(1) * 1000
    torch.testing.assert_close(pa_mpjpe(pred, gt, visible=visible), err_all_fit)
    # Fitting on the visible joints alone gives another number; it must not be what we report.
    err_leg_fit = pa_mpjpe(pred[:, :6], gt[:, :6])
    assert ((err_leg_fit - err_all_fit).abs() > 1e-3).all()


def test_mpve_hand_checked_uses_each_own_root():
    gt_joints = torch.zeros(1, 14, 3, dtype=torch.float64)
    gt_joints[0, 2] = torch.tensor([-0.1, 0.0, 0.0])
    gt_joints[0, 3] = torch.tensor([0.1, 0.0, 0.0])
    offset = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    pred_joints = gt_joints + offset
    gt_verts = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    pred_verts = torch.tensor([[[1.0, 2.0, 3.0], [1.003, 3.0, 3.004]]], dtype=torch.float64)
    # Root-relative: pred [0,0,0], [0.003, 1, 0.004] vs gt [0,0,0], [0, 1, 0] -> 0 and 5 mm.
    torch.testing.assert_close(mpve(pred_verts, gt_verts, pred_joints, gt_joints),
                               torch.tensor([2.5], dtype=torch.float64))
    torch.testing.assert_close(root_align_by(pred_verts, pred_joints)[0, 1],
                               torch.tensor([0.003, 1.0, 0.004], dtype=torch.float64))


def test_per_joint_error_none_and_bad_align():
    pred, gt = hand_example()
    err = per_joint_error(pred, gt, "none")
    assert err.shape == (2, 14)
    torch.testing.assert_close(err[:, 0], torch.full((2,), 0.03, dtype=torch.float64))
    with pytest.raises(ValueError):
        per_joint_error(pred, gt, "umeyama")
    with pytest.raises(ValueError):
        mpjpe(pred[:, :13], gt)


def test_summarize():
    assert summarize(np.array([1.0, np.nan, 3.0, 10.0])) == {"mean": pytest.approx(14 / 3), "median": 3.0, "n": 3}
    assert summarize(torch.tensor([1.0, 2.0])) == {"mean": 1.5, "median": 1.5, "n": 2}
    empty = summarize([math.nan])
    assert empty["n"] == 0 and math.isnan(empty["mean"]) and math.isnan(empty["median"])


def test_depth_correlation_sees_depth_only():
    from uvhmr.evaluate.metrics import depth_correlation
    z = torch.randn(50, 14, 3)
    assert depth_correlation(z, z) == pytest.approx(1.0)
    flipped = z * torch.tensor([1.0, 1.0, -1.0])              # the front/back mirror image
    assert depth_correlation(flipped, z) == pytest.approx(-1.0)
    flat = z.clone()
    flat[..., 2] = 0.5 * z[..., 2] + 0.01                  # shrunk depth still correlates fully
    assert depth_correlation(flat, z) == pytest.approx(1.0)
    no_depth = z * torch.tensor([1.0, 1.0, 0.0]) + torch.randn(50, 14, 3) * torch.tensor([0.0, 0.0, 1e-3])
    assert abs(depth_correlation(no_depth, z)) < 0.2
