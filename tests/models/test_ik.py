"""IK networks (issue #7): JointRefineNet's size and its inpainting of zeroed joints.

GIK-Net through the body model and its losses: tests/train/test_train_ik.py."""
import pytest
import torch

from uvhmr.data.augment import JointAugment
from uvhmr.models.ik import JointRefineNet
from uvhmr.data.camera_frame import prior_poses


def test_joint_refine_net_has_about_400k_parameters():
    # The paper's JointRefineNet: 6 linear layers, ~400k parameters (paper §3.2).
    n = sum(p.numel() for p in JointRefineNet(14).parameters())
    assert abs(n - 400_000) <= 40_000, n


@pytest.fixture(scope="module")
def poses(anny):
    """Camera-frame LSP-14 joints (N, 14, 3) of prior poses, as train_ik sees them: a training
    set and a held-out set drawn with another seed."""
    return (prior_poses(anny, 512, seed=0, reject_penetration=False)["joints"],
            prior_poses(anny, 256, seed=1, reject_penetration=False)["joints"])


def test_zeroed_joints_are_inpainted_better_than_left_at_zero(poses):
    train, held_out = poses
    torch.manual_seed(0)
    net = JointRefineNet(14)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    aug = JointAugment()                                     # train_ik's: 3 cm noise, 30 % zeroed
    g = torch.Generator().manual_seed(0)
    for _ in range(400):                                     # ~4 s on one core
        idx = torch.randint(0, len(train), (128,), generator=g)
        x, obs = aug(train[idx], g)
        loss = (net(x, obs) - train[idx]).abs().mean()      # l_refine
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    # A fixed joint's mean position over the training set: what a net that ignored the visible
    # joints could at best put there (about 0.28 m off, against 0.48 m for zero).
    mean_joints = train.mean(0)
    for joints in (train, held_out):
        x, obs = JointAugment(noise=False)(joints, torch.Generator().manual_seed(123))   # a new zeroing draw
        with torch.no_grad():
            refined = net(x, obs)
        zeroed = ~obs
        assert zeroed.sum() > 0.2 * zeroed.numel()
        err = (refined - joints).norm(dim=-1)[zeroed].mean()
        err_zero = joints.norm(dim=-1)[zeroed].mean()        # leaving them at (0, 0, 0), the root
        err_mean = (mean_joints - joints).norm(dim=-1)[zeroed].mean()
        assert err < 0.6 * err_zero, (err, err_zero)
        assert err < 0.9 * err_mean, (err, err_mean)         # it uses the visible joints
        # Observed joints are passed through plus a learnt correction: it must stay small.
        assert (refined - joints).norm(dim=-1)[obs].mean() < 0.25 * err_zero
