"""The shared global-orientation sampler (dataset rule and train_ik)."""
import numpy as np
import pytest
import roma
import torch

from uvhmr.data.orientation import OrientationSampler, angles_to_matrix, rotate_points, sample_orientation, with_orientation


def test_deterministic_from_seed_or_generator():
    a = sample_orientation(100, 3)
    assert torch.equal(a, sample_orientation(100, 3))
    assert not torch.equal(a, sample_orientation(100, 4))
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(OrientationSampler().sample(50, g1), OrientationSampler().sample(50, g2))
    assert a.shape == (100, 3) and a.dtype == torch.float32


@pytest.mark.parametrize("up_axis, up", [("z", [0, 0, 1.0]), ("y", [0, 1.0, 0])])
def test_yaw_is_uniform_and_tilt_small(up_axis, up):
    s = OrientationSampler(up_axis=up_axis, pitch_sigma=8, roll_sigma=4, max_tilt=20)
    R = roma.rotvec_to_rotmat(s.sample(20000, 0).double())
    up = torch.tensor(up, dtype=torch.float64)
    tilt = torch.rad2deg(torch.acos((R @ up).matmul(up).clamp(-1, 1)))
    assert tilt.max() < 20 * np.sqrt(2) + 1e-6 and 3 < tilt.mean() < 12
    ang = s.sample_angles(20000, 0)
    yaw_hist = np.histogram(np.degrees(ang[:, 0].numpy()), bins=12, range=(0, 360))[0]
    assert yaw_hist.min() > 0.8 * 20000 / 12      # every 30 deg sector is covered evenly
    assert ang[:, 1:].abs().max() <= np.deg2rad(20) + 1e-9


def test_rotvec_matches_matrix_and_yaw_only_keeps_the_up_axis():
    s = OrientationSampler(pitch_sigma=0, roll_sigma=0)
    rv = s.sample(64, 1)
    R = roma.rotvec_to_rotmat(rv.double())
    torch.testing.assert_close(R, angles_to_matrix(s.sample_angles(64, 1)), atol=1e-6, rtol=0)
    torch.testing.assert_close(R[:, :, 2], torch.tensor([0, 0, 1.0], dtype=torch.float64).expand(64, 3), atol=1e-6, rtol=0)


def test_rotate_points_and_with_orientation_agree_with_the_body_model(anny):
    """Joints of a pose with root = r equal the body-frame joints rotated by r (about the root)."""
    rv = sample_orientation(4, 2)
    pose = torch.zeros(4, anny.num_joints, 3)
    pose[:, anny.joint_names.index("lowerleg01.L"), 0] = 0.7
    shape = anny.mean_shape()[None].expand(4, -1)
    with torch.no_grad():
        body = anny(pose, shape).lsp14
        posed = anny(with_orientation(pose, rv), shape).lsp14
    root = lambda j: j - j[:, 2:4].mean(1, keepdim=True)
    torch.testing.assert_close(root(posed), rotate_points(root(body), rv), atol=2e-5, rtol=0)
    assert torch.equal(pose[:, 0], torch.zeros(4, 3))          # the input is not modified
