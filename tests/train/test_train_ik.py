"""GIK-Net through the body model and train_ik's losses (issue #7, paper §3.2, eq. 3)."""
import copy

import pytest
import torch

from uvhmr.config import IkTrainParams
from uvhmr.evaluate import metrics as M
from uvhmr.models.ik import GIKNet
from uvhmr.data.camera_frame import prior_poses
from uvhmr.models.ik import IKNet, fast_pose_joints, pose_mesh
from uvhmr.train.ik import heldout_errors, ik_losses, train_step

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
    sec = IkTrainParams()                                    # l_ji and l_vi on every row
    vidx = _vertex_subset(anny)
    g = torch.Generator().manual_seed(0)
    for _ in range(80):                                      # ~2 s on one core (fast joints + backward)
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
    sec, vidx = IkTrainParams(), _vertex_subset(anny)
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
    torch.manual_seed(0)
    net = IKNet(anny.num_joints, anny.mean_shape())
    sec, vidx = IkTrainParams(), _vertex_subset(anny)
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


def test_losses_reach_every_row(anny, targets):
    # l_ji and l_vi are on every row of the batch (issue #20), not on a first few: a row's
    # own error moves them, wherever it sits in the batch.
    sec, vidx = IkTrainParams(), _vertex_subset(anny)
    perfect = {"j_refine": targets["joints"], "rotmats": targets["rotmats"], "shape": targets["shape"]}
    base = ik_losses(perfect, targets, anny, sec, vidx)
    assert base["joints"] < 1e-5 and base["vertices"] < 1e-5
    last = {**perfect, "rotmats": perfect["rotmats"].clone()}
    last["rotmats"][-1, 0] = torch.eye(3)                    # only the last row's root is wrong
    worse = ik_losses(last, targets, anny, sec, vidx)
    assert worse["joints"] > 1e-3 and worse["vertices"] > 1e-3


def test_fast_pose_joints_are_pose_meshs(anny, targets):
    # train_ik's fast joints are the mesh joints evaluate scores (pose_mesh), to 0.1 mm.
    vidx = _vertex_subset(anny)
    with torch.no_grad():
        verts, joints = pose_mesh(anny, targets["rotmats"], targets["shape"])
        fj, fv = fast_pose_joints(anny, targets["rotmats"], targets["shape"], vidx)
    assert M.mpjpe(fj, joints).max() < 0.1
    assert (fv - verts[:, vidx]).norm(dim=-1).max() < 1e-4


def test_a_short_training_run_lowers_the_held_out_joint_error(anny):
    # train_ik's own step (train_step: augmentation, clean GIK-Net rows, eq. 3 on every row) on
    # prior poses; scored on other poses, never trained on, before and after.
    from uvhmr.data.augment import JointAugment
    train = prior_poses(anny, 256, seed=0, reject_penetration=False)
    held = {"joints": prior_poses(anny, 128, seed=1, reject_penetration=False)["joints"]}
    held["observed"] = torch.rand(128, 14, generator=torch.Generator().manual_seed(1)) >= 0.3
    torch.manual_seed(0)
    net = IKNet(anny.num_joints, anny.mean_shape())
    sec = IkTrainParams(lr=3e-3)
    opt = torch.optim.Adam([{"params": net.refine.parameters(), "lr": sec.refine_lr * sec.lr},   # as run_train_ik
                            {"params": net.gik.parameters()}], lr=sec.lr)
    aug, g = JointAugment.from_params(sec), torch.Generator().manual_seed(0)
    vidx = _vertex_subset(anny, 100)
    clean = torch.arange(64) < 16
    before = heldout_errors(net, anny, held, "cpu")
    for _ in range(120):                                     # ~15 s on one core
        idx = torch.randint(0, len(train["joints"]), (64,), generator=g)
        batch = {k: v[idx] for k, v in train.items()}
        batch["input"], batch["observed"] = aug(batch["joints"], g)
        train_step(net, opt, batch, anny, sec, vidx, clean)
    after = heldout_errors(net, anny, held, "cpu")
    for k in ("val_gik_gt_mpjpe", "val_refine_zeroed_mpjpe"):
        assert after[k] < 0.8 * before[k], (k, before[k], after[k])


def test_body_frame_vertices_turned_into_the_camera_frame_are_the_posed_ones(anny):
    # train_ik poses l_vi's ground-truth vertices once in the body frame (mocap_vertices) and
    # turns them with the joints (to_camera_frame's points): that must be the same as posing them
    # in the camera frame, as ik_losses would.
    from uvhmr.data.camera_frame import to_camera_frame
    import roma
    g = torch.Generator().manual_seed(4)
    pose = 0.3 * torch.randn(8, anny.num_joints, 3, generator=g)
    pose[:, 0] = 0.0
    shape = anny.sample_shape(8, 4)
    vidx = _vertex_subset(anny, 50)
    lsp, verts = fast_pose_joints(anny, roma.rotvec_to_rotmat(pose), shape, vidx)
    rows = {"pose": pose, "shape": shape, "lsp14": lsp, "category": torch.zeros(8, dtype=torch.long)}
    out = to_camera_frame(rows, 11, anny.up_axis, points=verts)
    want_j, want_v = fast_pose_joints(anny, out["rotmats"], out["shape"], vidx)
    assert (out["joints"] - want_j).abs().max() < 1e-5
    assert (out["points"] - want_v).abs().max() < 1e-5
    assert (out["points"] - verts).abs().max() > 0.05          # they were turned
