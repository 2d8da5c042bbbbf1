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


# ----------------------------------------------------------------------------- the lying family

def _frame(up_axis):
    """(up, lateral, facing) unit vectors and the model-to-camera turn the renders and train_ik use."""
    from uvhmr.data.orientation import AXES, FACING
    from uvhmr.data.scene import canonical_rotation
    up, lat, _ = (torch.eye(3, dtype=torch.float64)[i] for i in AXES[up_axis])
    return up, lat, torch.tensor(FACING[up_axis], dtype=torch.float64), \
        torch.as_tensor(canonical_rotation(up_axis), dtype=torch.float64)


def _stand_in_joints(n, up_axis, folded, seed=0):
    """(n, 14, 3) LSP-14-like body-frame joints, mid-hip-relative: a trunk bent up to 45 deg off
    the up axis (as curled and leaning prior poses bend it), knees below the hips or, where
    `folded`, drawn up 70 deg towards the facing side."""
    up, lat, face, _ = _frame(up_axis)
    J = torch.zeros(n, 14, 3, dtype=torch.float64)
    J[:, 2], J[:, 3] = -0.1 * lat, 0.1 * lat                           # R_hip, L_hip
    J[:, 12], J[:, 13] = 0.5 * up, 0.75 * up                           # neck, head top
    knee = torch.where(folded[:, None], 0.45 * (np.sin(np.deg2rad(70)) * face - np.cos(np.deg2rad(70)) * up),
                       -0.45 * up)
    J[:, 1], J[:, 4] = J[:, 2] + knee, J[:, 3] + knee
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1)
    bend = roma.rotvec_to_rotmat(axis * torch.deg2rad(45 * torch.rand(n, 1, generator=g, dtype=torch.float64)))
    return J @ bend.transpose(1, 2)


def _elevation_deg(joints_cam, C, up):
    """(n,) angle (deg) between the trunk (mid-hips -> neck) and the ground plane, camera frame."""
    trunk = torch.nn.functional.normalize(joints_cam[:, 12] - joints_cam[:, 2:4].mean(1), dim=-1)
    return torch.rad2deg(torch.asin((trunk @ (C @ up)).abs().clamp(max=1)))


@pytest.mark.parametrize("up_axis", ["z", "y"])
def test_lying_rows_lie_down_and_upright_rows_are_unchanged(up_axis):
    n = 4000
    g = torch.Generator().manual_seed(5)
    lying = torch.rand(n, generator=g) < 0.5
    folded = torch.rand(n, generator=g) < 0.4
    J = _stand_in_joints(n, up_axis, folded)
    s = OrientationSampler(up_axis=up_axis)
    rv = s.sample(n, 7, lying, J.float())
    up, lat, face, C = _frame(up_axis)
    cam = rotate_points(J, rv.double()) @ C.T                      # as the renders and train_ik see them
    el = _elevation_deg(cam, C, up)
    assert el[lying].max() <= s.lying_max_tilt + 0.01 < 30
    assert el[~lying].min() > 20                                   # stand-ins bent <= 45, tilt <= 28
    # Upright rows: exactly the draws of the plain sampler, so within its tilt.
    assert torch.equal(rv[~lying], s.sample(n, 7)[~lying])
    R = roma.rotvec_to_rotmat(rv.double())
    tilt = torch.rad2deg(torch.acos((R[~lying] @ up) @ up))
    assert tilt.max() < s.max_tilt * np.sqrt(2) + 1e-6
    # Lying rows: back, front and both sides, any yaw; never face down with the knees drawn up.
    facing_up = (R @ face) @ up
    stretched, curled = lying & ~folded, lying & folded
    assert 0.17 < (facing_up[stretched] > 0.7).float().mean() < 0.33           # on the back: 1/4
    assert 0.17 < (facing_up[stretched] < -0.7).float().mean() < 0.33          # on the front: 1/4
    assert (facing_up[curled] < -0.7).float().mean() < 0.01
    assert 0.25 < (facing_up[curled] > 0.7).float().mean() < 0.42              # on the back: 1/3
    heading = (cam[lying, 12] - cam[lying, 2:4].mean(1)) @ C            # the trunk's way, model frame
    yaw = torch.rad2deg(torch.atan2(heading @ face, heading @ lat))
    assert np.histogram(yaw.numpy(), bins=12, range=(-180, 180))[0].min() > 0.7 * int(lying.sum()) / 12


def test_lying_needs_joints_and_rows_follow_their_category():
    s = OrientationSampler()
    with pytest.raises(ValueError, match="joints"):
        s.sample(4, 0, torch.tensor([False, True, False, False]))
    with pytest.raises(ValueError, match="3 rows for 4"):
        s.sample(4, 0, torch.zeros(3, dtype=torch.bool), torch.zeros(4, 14, 3))
    from uvhmr.data.pose_prior import CATEGORIES
    cat = torch.tensor([CATEGORIES.index("lying"), CATEGORIES.index("standing")] * 3, dtype=torch.int8)
    joints = _stand_in_joints(6, "z", torch.zeros(6, dtype=torch.bool)).float()
    rows = {"pose": torch.zeros(6, 36, 3), "lsp14": joints, "category": cat}
    rv = s.sample_rows(rows, 3)
    torch.testing.assert_close(rv, s.sample(6, 3, cat == CATEGORIES.index("lying"), rows["lsp14"]), atol=0, rtol=0)
    assert torch.equal(rv[1::2], s.sample(6, 3)[1::2])
    # Licensed mocap has no categories: every row upright, as before.
    assert torch.equal(s.sample_rows({"pose": rows["pose"]}, 3), s.sample(6, 3))


def test_prior_lying_family_lies_and_the_others_stand(anny):
    """The real prior through the body model, posed as the dataset rule poses it: the lying
    family's trunk within 30 deg of the ground plane, the upright families' root within the old tilt."""
    from uvhmr.data.pose_prior import CATEGORIES, PosePrior
    n = 256
    prior = PosePrior.from_model(anny, {"lying": 0.5, "standing": 0.1, "crouching": 0.2, "sitting": 0.2})
    smp = prior.sample(n, np.random.default_rng(3))
    pose, shape = torch.from_numpy(smp.pose), anny.sample_shape(n, 3).float()
    with torch.no_grad():
        body = anny(pose, shape).lsp14
    rows = {"pose": pose, "lsp14": body - body[:, 2:4].mean(1, keepdim=True), "category": torch.from_numpy(smp.category)}
    s = OrientationSampler(up_axis=anny.up_axis)
    rv = s.sample_rows(rows, 11)
    with torch.no_grad():
        posed = anny(with_orientation(pose, rv), shape).lsp14.double()
    up, _, _, C = _frame(anny.up_axis)
    lying = rows["category"] == CATEGORIES.index("lying")
    assert 0.3 < lying.float().mean() < 0.7
    el = _elevation_deg(posed @ C.T, C, up)
    assert el[lying].max() < 30
    R = roma.rotvec_to_rotmat(rv[~lying].double())
    assert torch.rad2deg(torch.acos((R @ up) @ up)).max() < s.max_tilt * np.sqrt(2) + 1e-6
    assert torch.equal(rv[~lying], s.sample(n, 11)[~lying])
