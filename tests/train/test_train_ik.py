"""GIK-Net through the body model and train_ik's losses (issue #7, paper §3.2, eq. 3)."""
import copy

import pytest
import torch

from uvhmr.config import IkTrainParams
from uvhmr.evaluate import metrics as M
from uvhmr.models.ik import GIKNet
from uvhmr.train.ik import ik_losses, pose_mesh, prior_poses

N_POSES = 16


@pytest.fixture(scope="module")
def targets(anny):
    """N_POSES fixed prior poses in the camera frame: joints (N, 14, 3), rotmats (N, J, 3, 3), shape (N, S)."""
    return prior_poses(anny, N_POSES, seed=0, reject_penetration=False)


def _vertex_subset(body, n=200):
    return torch.arange(0, body.num_vertices, body.num_vertices // n)


@pytest.fixture(scope="module")
def trained(anny, targets):
    """GIK-Net fed the ground-truth joints, trained briefly on the fixed poses with eq. 3's terms
    (l_refine is zero: J_refine is the ground truth here). -> the net (train mode)."""
    torch.manual_seed(0)
    net = GIKNet(anny.num_joints, len(anny.shape_labels), anny.mean_shape())
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sec = IkTrainParams(mesh_batch=N_POSES)                  # every pose through the body model each step
    vidx = _vertex_subset(anny)
    g = torch.Generator().manual_seed(0)
    for _ in range(80):                                      # ~10 s on one core (body forward + backward)
        perm = torch.randperm(N_POSES, generator=g)           # batch norm sees a different order each step
        tgt = {k: v[perm] for k, v in targets.items()}
        out = {**net(tgt["joints"]), "j_refine": tgt["joints"]}
        terms = ik_losses(out, tgt, anny, sec, vidx)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
    return net


def test_targets_pose_to_their_own_joints(anny, targets):
    # The ground truth is consistent: the target rotations (root in the camera frame) posed by
    # pose_mesh give back the target joints, so GIK-Net can reach zero error.
    with torch.no_grad():
        _, joints = pose_mesh(anny, targets["rotmats"], targets["shape"])
    assert M.mpjpe(joints, targets["joints"]).max() < 0.1      # mm


def test_gik_net_beats_the_mean_pose_on_its_training_poses(anny, targets, trained):
    net = copy.deepcopy(trained).eval()
    with torch.no_grad():
        out = net(targets["joints"])
        _, joints = pose_mesh(anny, out["rotmats"], out["shape"])
    gik = M.mpjpe(joints, targets["joints"]).mean()
    # The mean pose: every sample's answer is the training set's mean joints (evaluate's mean_pose
    # row); about 270 mm here, as the orientations are random.
    mean = targets["joints"].mean(0, keepdim=True).expand_as(targets["joints"])
    baseline = M.mpjpe(mean, targets["joints"]).mean()
    assert gik < 0.6 * baseline, (gik, baseline)
    # ... and better than the untrained net (identity rotations, mean shape) by far.
    with torch.no_grad():
        o0 = GIKNet(anny.num_joints, len(anny.shape_labels), anny.mean_shape()).eval()(targets["joints"])
        _, j0 = pose_mesh(anny, o0["rotmats"], o0["shape"])
    assert gik < 0.5 * M.mpjpe(j0, targets["joints"]).mean()


def test_vertex_loss_gradients_reach_gik_nets_first_layer(anny, targets, trained):
    # A trained net: at initialisation the output layer is zero (identity rotations), so no
    # gradient from any loss reaches the earlier layers until that layer has moved.
    net = copy.deepcopy(trained).eval()                      # eval: no dropout, the same function twice
    sec, vidx = IkTrainParams(mesh_batch=N_POSES), _vertex_subset(anny)
    first = net.mlp.inp[0].weight

    def l_vi():
        out = {**net(targets["joints"]), "j_refine": targets["joints"]}
        return ik_losses(out, targets, anny, sec, vidx)["vertices"]

    loss = l_vi()
    net.zero_grad()
    loss.backward()                                          # l_vi alone
    grad = first.grad.clone()
    assert torch.isfinite(grad).all()
    assert grad.abs().max() > 0 and (grad != 0).float().mean() > 0.5
    # The gradient is l_vi's own: a small step on the first layer alone along it lowers l_vi.
    with torch.no_grad():
        first -= 1e-3 * grad / grad.norm()
        assert l_vi() < loss.detach()


def test_joint_refine_net_learns_from_l_refine_only(anny, targets):
    # GIK-Net's losses (l_theta, l_beta, l_ji, l_vi) stop at its input: trained end to end they
    # pulled J_refine away from the joints (README, Status); l_refine still reaches JointRefineNet.
    from uvhmr.train.ik import IKNet
    torch.manual_seed(0)
    net = IKNet(anny.num_joints, anny.mean_shape())
    sec, vidx = IkTrainParams(mesh_batch=4), _vertex_subset(anny)
    observed = torch.rand(N_POSES, 14, generator=torch.Generator().manual_seed(0)) > 0.3
    terms = ik_losses(net(targets["joints"] * observed[..., None], observed), targets, anny, sec, vidx)
    for name in ("theta", "beta", "joints", "vertices"):
        net.zero_grad()
        terms[name].backward(retain_graph=True)
        assert all(p.grad is None or not p.grad.any() for p in net.refine.parameters()), name
        assert any(p.grad is not None and p.grad.any() for p in net.gik.parameters()), name
    net.zero_grad()
    terms["refine"].backward()
    assert any(p.grad is not None and p.grad.any() for p in net.refine.parameters())
