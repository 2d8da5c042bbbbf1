"""DMP network, its losses and the shared trainer (issue #6)."""

import pytest
import torch

from uvhmr.config import DmpTrainParams
from uvhmr.losses import dmp_losses
from uvhmr.models.dmp import UV_RES, DMPNet, j_initial, j_initial_uv, load_dmp
from uvhmr.uv.assets import load_uv_assets
from uvhmr.uv.gt import gt_uv_maps, root_of


@pytest.mark.parametrize("size, stride", [(64, 2), (96, 2), (128, 4)])
def test_head_shapes(size, stride):
    net = DMPNet("resnet18", out_stride=stride).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, size, size))
    h = size // stride
    assert out["mask"].shape == (2, 1, h, h) and out["uv"].shape == (2, 2, h, h)
    assert out["parts"].shape == (2, 14, h, h)
    for k in ("mj", "ml", "md"):
        assert out[k].shape == (2, 3, h, h)
    assert out["camera"].shape == (2, 3) and out["features"].shape[:2] == (2, 32)
    assert 0 <= out["uv"].min() and out["uv"].max() <= 1


def _batch(size=64):
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(4, 1, size, size)
    mask[:, :, size // 4: 3 * size // 4, size // 3: 2 * size // 3] = 1
    return {"image": torch.randn(4, 3, size, size, generator=g), "mask": mask,
            "uv": torch.rand(4, 2, size, size, generator=g), "mj": torch.randn(4, 3, size, size, generator=g) * 0.3,
            "ml": torch.randn(4, 3, size, size, generator=g) * 0.3, "md": torch.randn(4, 3, size, size, generator=g) * 0.1,
            # parts in horizontal bands of the body box: learnable, unlike per-pixel noise
            "parts": torch.where(mask[:, 0] > 0, (torch.arange(size) * 14 // size)[None, :, None].expand(4, size, size), -1),
            "camera": torch.tensor([[0.9, 0.0, 0.1]]).repeat(4, 1)}


def test_training_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    net = DMPNet("resnet18", out_stride=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    b = _batch()
    w = DmpTrainParams()
    losses = []
    for _ in range(8):
        terms = dmp_losses(net(b["image"]), b, w)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        losses.append(terms["total"].item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_loss_terms_are_masked_and_weighted():
    b = _batch(16)
    pred = {k: b[k].clone() for k in ("uv", "mj", "ml", "md", "camera")}
    pred["mask"] = (b["mask"] * 2 - 1) * 20                  # confident and right
    pred["parts"] = torch.nn.functional.one_hot(b["parts"].clamp(min=0), 14).permute(0, 3, 1, 2).float() * 30
    terms = dmp_losses(pred, b, DmpTrainParams())
    assert terms["uv"] == 0 and terms["maps"] == 0 and terms["camera"] == 0 and terms["mask"] < 1e-6
    assert terms["parts"] < 1e-6
    wrong = dict(pred, parts=pred["parts"].roll(1, dims=1))    # every body pixel in the wrong part
    assert dmp_losses(wrong, b, DmpTrainParams())["parts"] > 10
    pred["ml"] = pred["ml"] + (1 - b["mask"]) * 5.0           # errors outside the body do not count
    assert dmp_losses(pred, b, DmpTrainParams())["maps"] == 0
    pred["ml"] = pred["ml"] + b["mask"] * 0.3                 # inside they do: 0.3 / 3 channels... averaged
    assert torch.isclose(dmp_losses(pred, b, DmpTrainParams())["maps"], torch.tensor(0.3))



def test_joint_term_scores_the_part_means_not_each_pixel():
    """w_joints: zero when every part's mean M_j is its joint, even if the pixels scatter around it;
    a shift shared by a part's pixels costs its full size; the term reaches the part head."""
    b = _batch(16)
    k = 14
    on = b["parts"] >= 0
    joints = torch.randn(4, k, 3) * 0.3
    # the true M_j: each pixel holds its part's joint
    b["mj"] = torch.einsum("bkhw,bkc->bchw", torch.nn.functional.one_hot(b["parts"].clamp(min=0), k).permute(0, 3, 1, 2).float(),
                           joints) * on[:, None]
    logits = (torch.nn.functional.one_hot(b["parts"].clamp(min=0), k).permute(0, 3, 1, 2).float() * 30).requires_grad_()
    pred = {kk: b[kk].clone() for kk in ("uv", "ml", "md", "camera")}
    pred.update(mask=(b["mask"] * 2 - 1) * 20, parts=logits)
    w = DmpTrainParams(w_joints=1.0)
    # pixels scattered around their joint by column (the body spans columns 5-9): -0.1, -0.05, 0,
    # 0.05, 0.1 m, so per-pixel L1 0.06 m and every part's mean exact
    scatter = ((torch.arange(16) - 7) * 0.05)[None, None, None, :]
    pred["mj"] = b["mj"] + scatter * on[:, None]
    terms = dmp_losses(pred, b, w)
    assert terms["joints"] < 1e-6 and terms["maps"] > 0.05
    pred["mj"] = b["mj"] + 0.2 * on[:, None]                       # every pixel 0.2 m off the same way
    assert torch.isclose(dmp_losses(pred, b, w)["joints"], torch.tensor(0.2), atol=1e-5)
    soft = dict(pred, parts=torch.zeros(4, k, 16, 16, requires_grad=True))    # no part preferred
    dmp_losses(soft, b, w)["joints"].backward()
    assert soft["parts"].grad.abs().sum() > 0
    assert "joints" not in dmp_losses(pred, b, DmpTrainParams())   # off by default


def test_attention_weights_stay_on_the_body_and_pick_the_best_pixels():
    from uvhmr.models.dmp import joint_weights
    body = torch.zeros(1, 1, 4, 4)
    body[..., 1:3, 1:3] = 1
    attn = torch.zeros(1, 2, 4, 4)
    attn[0, 0, 1, 1] = 50.0                     # joint 0 looks at one body pixel
    attn[0, 1, 0, 0] = 50.0                     # joint 1 at a background pixel: it must not count
    w = joint_weights({"parts": torch.zeros(1, 2, 4, 4), "attn": attn}, body)
    assert torch.allclose(w.sum((2, 3)), torch.ones(1, 2))
    assert w[0, 0, 1, 1] > 0.99 and float((w * (1 - body)).sum()) < 1e-6
    assert torch.allclose(w[0, 1][body[0, 0] > 0], torch.full((4,), 0.25))
    net = DMPNet("resnet18", aggregate="attention").eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64))["attn"].shape == (1, 14, 32, 32)


def _lsp_facing_camera():
    """A T-ish LSP-14 skeleton facing the camera (camera frame: x right, y down, z away):
    its left side appears on the image's right."""
    j = torch.zeros(14, 3)
    j[2], j[3] = torch.tensor([-0.1, 0.0, 0.0]), torch.tensor([0.1, 0.0, 0.0])        # R/L hip
    j[8], j[9] = torch.tensor([-0.2, -0.5, 0.0]), torch.tensor([0.2, -0.5, 0.0])      # R/L shoulder
    j[12] = torch.tensor([0.0, -0.55, 0.0])                                          # neck
    return j


def test_facing_yaw_reads_the_bodys_direction():
    from uvhmr.models.dmp import facing_yaw
    import roma
    j = _lsp_facing_camera()
    yaws = torch.tensor([0.0, 0.5, 1.5, -2.0, 3.0])
    # Turning the body by +a about the camera's vertical axis (y, pointing down) turns it to face image right.
    R = roma.rotvec_to_rotmat(torch.stack([torch.zeros(5), -yaws, torch.zeros(5)], 1))
    got = facing_yaw(j[None] @ R.transpose(1, 2))
    assert torch.allclose(torch.remainder(got - yaws + torch.pi, 2 * torch.pi) - torch.pi, torch.zeros(5), atol=1e-5)


def test_yaw_bins_round_trip_and_pick_a_mode_not_the_midpoint():
    from uvhmr.models.dmp import yaw_bin_centres, yaw_from_logits, yaw_to_bin
    c = yaw_bin_centres(16)
    assert torch.equal(yaw_to_bin(c + 0.05, 16), torch.arange(16))
    logits = torch.full((1, 16), -10.0)
    logits[0, 4], logits[0, 12] = 5.0, 4.5                  # a front/back confusion, slightly front
    assert torch.isclose(yaw_from_logits(logits), c[4:5], atol=1e-3).all()


def test_yaw_conditioning_reaches_the_maps():
    torch.manual_seed(0)
    net = DMPNet("resnet18", 2, yaw_bins=8).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        own = net(x)
        a, b = net(x, yaw=torch.tensor([0.0])), net(x, yaw=torch.tensor([3.0]))
    assert own["yaw_logits"].shape == (1, 8) and own["yaw"].shape == (1,)
    assert not torch.allclose(a["mj"], b["mj"])
    assert torch.allclose(net(x, yaw=own["yaw"])["mj"], own["mj"])


def test_body_frame_depth_inverts_the_turn():
    """to_body_frame and depth_from_body_frame are each other's inverse for the depth: maps
    written in the body frame with the true yaw give back the camera-frame truth."""
    from uvhmr.models.dmp import depth_from_body_frame, to_body_frame
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(3, 3, 4, 4, generator=g)
    yaw = torch.tensor([0.0, 1.0, -2.5])
    lf = to_body_frame(truth[:, 0::2], yaw)
    cam, lf_out = depth_from_body_frame(torch.cat([truth[:, :2], lf], 1), yaw)
    assert torch.allclose(cam, truth, atol=1e-5) and torch.equal(lf_out, lf)
    # Facing the camera (yaw 0) the body's forward is the camera's -z: depth is minus forward.
    assert torch.allclose(lf[0, 1], -truth[0, 2])
    net = DMPNet("resnet18", 2, yaw_bins=8, yaw_depth=True).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 64, 64))
    assert out["mj"].shape == (1, 3, 32, 32) and out["mj_lf"].shape == (1, 2, 32, 32)


def test_j_initial_from_ground_truth_maps_through_the_part_head(anny, tiny_uv_dir):
    """An 'image' whose pixel (r, c) shows texel (r, c): the ground-truth part of each pixel is
    A_uv's label and its M_j the joint of that part, so J_initial must be the joints exactly,
    with a part hidden from the image flagged missing."""
    uv = load_uv_assets(tiny_uv_dir, anny.faces.numpy())
    res = 64
    s, lab = uv.sampler(res), uv.auv(14, res)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        o = anny(torch.randn(2, anny.num_joints, 3, generator=g) * 0.3, anny.sample_shape(2, seed=3))
        root = root_of(o.lsp14)
        uv_l, uv_j, uv_d = gt_uv_maps(s, lab, o.vertices, o.lsp14, root)
    body = (lab >= 0).float()[None, None].repeat(2, 1, 1, 1)
    hidden = 11                                              # L_wrist: not seen in sample 0
    body[0, 0][lab == hidden] = 0
    r, c = torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")
    out = {"mask": (body * 2 - 1) * 20,
           "parts": torch.nn.functional.one_hot(lab.clamp(min=0), 14).permute(2, 0, 1)[None].repeat(2, 1, 1, 1).float() * 20,
           "uv": torch.stack([c / (res - 1), 1 - r / (res - 1)])[None].repeat(2, 1, 1, 1).float(),
           "mj": uv_j, "ml": uv_l, "md": uv_d, "features": uv_l}
    joints, seen, warp = j_initial(out, 14)
    rel = o.lsp14 - root
    assert seen[1].all() and not seen[0, hidden] and seen[0].sum() == 13
    assert (joints[1] - rel[1]).norm(dim=-1).max() < 1e-3
    keep = torch.arange(14) != hidden
    assert (joints[0, keep] - rel[0, keep]).norm(dim=-1).max() < 1e-3
    # The paper's UV route agrees on the same maps (same A_uv lookup).
    joints_uv, seen_uv = j_initial_uv(warp, lab, 14)
    assert torch.equal(seen_uv, seen) and (joints_uv[1] - rel[1]).norm(dim=-1).max() < 1e-3
    # The warp reproduces the ground-truth UV maps on the observed texels.
    on = warp["hits"][1] > 0
    assert on.sum() > 0.3 * res * res
    assert torch.allclose(warp["uv_maps"][1, 3:6][:, on], uv_l[1][:, on], atol=1e-6)


def test_j_initial_splits_an_uncertain_pixel_between_its_parts():
    """Soft part weights: a pixel the part head gives 50/50 to parts 0 and 1 counts half for each;
    a part that wins no pixel is not observed even though it has some weight."""
    mj = torch.zeros(1, 3, 1, 3)
    mj[0, 0] = torch.tensor([1.0, 4.0, 9.0])              # x of the pixels' M_j
    logits = torch.full((1, 3, 1, 3), -30.0)
    logits[0, 0, 0, 0] = 30.0                              # pixel 0: surely part 0
    logits[0, :2, 0, 1] = 30.0                             # pixel 1: part 0 or part 1
    logits[0, 1, 0, 2] = 30.0                              # pixel 2: surely part 1
    out = {"mask": torch.full((1, 1, 1, 3), 30.0), "mj": mj, "parts": logits, "uv": torch.full((1, 2, 1, 3), 0.5),
           "ml": mj, "md": mj, "features": mj}
    joints, seen, _ = j_initial(out, 3)
    assert torch.allclose(joints[0, 0, 0], torch.tensor((1 + 0.5 * 4) / 1.5))
    assert torch.allclose(joints[0, 1, 0], torch.tensor((0.5 * 4 + 9) / 1.5))
    assert seen[0].tolist() == [True, True, False]


def test_the_uv_resolution_is_the_model_files_config(tmp_path):
    """uv_res: a constructor argument the DMP file records; a file without it loads with UV_RES."""
    cfg = {"backbone": "resnet18", "out_stride": 2, "joints": 14}
    torch.save({"state_dict": DMPNet("resnet18", 2).state_dict(), "config": cfg}, tmp_path / "old.pt")
    assert load_dmp(tmp_path / "old.pt")[0].uv_res == UV_RES == 64
    torch.save({"state_dict": DMPNet("resnet18", 2).state_dict(), "config": {**cfg, "uv_res": 32}}, tmp_path / "new.pt")
    net, _ = load_dmp(tmp_path / "new.pt")
    with torch.no_grad():
        _, _, warp = j_initial(net(torch.rand(1, 3, 64, 64)), 14, net.uv_res)
    assert net.uv_res == 32 and warp["uv_maps"].shape[-2:] == (32, 32)


def test_heatmap_xy_is_the_image_offset_from_the_hips_over_the_scale():
    """joints_xy: heatmap: a peaked heatmap's soft-argmax lands on its pixel, and J_initial's x, y
    are (image offset from the mid-hips) / s, whatever t is; depth stays M_j's."""
    from uvhmr.models.dmp import heatmap_points, image_plane_joints, pixel_grid, with_heatmap_xy
    h = w = 8
    heat = torch.full((1, 14, h, w), -30.0)
    spots = [(j % 8, (j * 3) % 8) for j in range(14)]          # (row, col) per joint
    for j, (r, c) in enumerate(spots):
        heat[0, j, r, c] = 30.0
    pts = heatmap_points(heat)
    grid = pixel_grid(h, w)
    for j, (r, c) in enumerate(spots):
        assert torch.allclose(pts[0, j], grid[:, r, c], atol=1e-5)
    cam = torch.tensor([[0.5, 0.3, -0.2]])
    xy = image_plane_joints(pts, cam)
    root = 0.5 * (pts[0, 2] + pts[0, 3])
    assert torch.allclose(xy[0], (pts[0] - root) / 0.5, atol=1e-5)
    assert torch.allclose(xy, image_plane_joints(pts, torch.tensor([[0.5, -5.0, 7.0]])))    # t cancels
    mj_joints = torch.randn(1, 14, 3)
    out = with_heatmap_xy(mj_joints, {"heat": heat, "camera": cam})
    assert torch.allclose(out[..., :2], xy) and torch.equal(out[..., 2], mj_joints[..., 2])
    assert with_heatmap_xy(mj_joints, {}) is mj_joints
    net = DMPNet("resnet18", joints_xy="heatmap").eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64))["heat"].shape == (1, 14, 32, 32)


def test_global_joints_spread_over_m_j_by_the_parts_and_start_at_zero():
    """global_joints: M_j = the map head's correction + each pixel's expected global joint under the
    part probabilities, so a confident part's pixels carry its global joint; zero-initialised, the
    untrained network's M_j is the plain map head's."""
    from uvhmr.models.dmp import global_joint_map
    gj = torch.tensor([[[0.1, 0.2, 0.3], [-1.0, 0.5, 2.0]]])              # (1, 2, 3)
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 0, 0] = 30.0                                                  # top row: part 0
    logits[0, 1, 1] = 30.0                                                  # bottom row: part 1
    m = global_joint_map(gj, logits)
    assert torch.allclose(m[0, :, 0, 1], gj[0, 0]) and torch.allclose(m[0, :, 1, 0], gj[0, 1])
    torch.manual_seed(0)
    net = DMPNet("resnet18", 2, global_joints=True).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out = net(x)
    assert out["gj"].shape == (2, 14, 3) and torch.equal(out["gj"], torch.zeros(2, 14, 3))
    with torch.no_grad():
        assert torch.allclose(out["mj"], net.heads["mj"](out["features"]), atol=1e-6)


def test_body_frame_global_joints_are_turned_by_the_yaw_and_scored_in_the_body_frame():
    """With a yaw head the global joints are body-frame (lateral, y, forward): the camera-frame joints
    are them turned by the yaw, and the loss compares them with the truth turned by the true yaw,
    so a right body-frame estimate scores 0 whatever the view."""
    from uvhmr.models.dmp import from_body_frame, joints_to_body_frame
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(3, 14, 3, generator=g) * 0.3
    yaw = torch.tensor([0.0, 1.0, -2.5])
    body = joints_to_body_frame(truth, yaw)
    assert torch.allclose(from_body_frame(body, yaw), truth, atol=1e-5)
    # Facing the camera (yaw 0) the body's forward is the camera's -z and its lateral the camera's x.
    assert torch.allclose(body[0, :, 2], -truth[0, :, 2]) and torch.allclose(body[0, :, 0], truth[0, :, 0])
    b = _batch(16)
    pred = {k: b[k].clone() for k in ("uv", "mj", "ml", "md", "camera")}
    pred["mask"] = (b["mask"] * 2 - 1) * 20
    pred["parts"] = torch.nn.functional.one_hot(b["parts"].clamp(min=0), 14).permute(0, 3, 1, 2).float() * 30
    b = {**b, "joints": truth, "yaw": yaw}
    pred = {**{k: v[:3] for k, v in pred.items()}, "gj_body": body, "gj": truth}
    b = {k: (v[:3] if torch.is_tensor(v) and v.shape[0] == 4 else v) for k, v in b.items()}
    assert dmp_losses(pred, b, DmpTrainParams(global_joints=True))["global"] < 1e-5
    assert dmp_losses({**pred, "gj_body": body.flip(1)}, b, DmpTrainParams(global_joints=True))["global"] > 0.05
    net = DMPNet("resnet18", 2, yaw_bins=8, yaw_depth=True, global_joints=True).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 64, 64))
    assert out["gj_body"].shape == (1, 14, 3) and out["gj"].shape == (1, 14, 3)


@pytest.mark.parametrize("yaw", [dict(), dict(yaw_bins=8, yaw_depth=True)])
def test_with_a_zero_correction_m_j_carries_the_global_joints(yaw):
    """global_joints: with the map head's correction zeroed and confident parts, every pixel's M_j
    is its part's global joint in the camera frame, with the yaw-turned depth too (the spread
    happens before the turn, so the body-frame channels get the body-frame joints)."""
    torch.manual_seed(0)
    net = DMPNet("resnet18", 2, global_joints=True, **yaw).eval()
    with torch.no_grad():
        net.heads["mj"].weight.zero_()
        net.heads["mj"].bias.zero_()
        net.gjoints[-1].bias.normal_()
        net.heads["parts"].weight.zero_()
        bias = torch.full((14,), -30.0)
        bias[5] = 30.0                                    # every pixel: part 5
        net.heads["parts"].bias.copy_(bias)
        out = net(torch.rand(2, 3, 64, 64))
    mj = out["mj"].float()
    assert torch.allclose(mj, out["gj"][:, 5, :, None, None].expand_as(mj), atol=1e-4)


def test_flip_test_is_mirror_equivariant_and_agrees_with_an_exact_mirror():
    """flip_test: `infer` merges a pass on the mirrored image. Merging outputs that are exact mirrors
    of each other changes nothing, and the merged yaw and global joints of a mirrored image are the
    mirror of the image's (yaw -> -yaw, lateral negated, left and right swapped)."""
    from uvhmr.models.dmp import MIRROR, merge_flipped, mirror_yaw_bins, yaw_from_logits
    sign = torch.tensor([-1.0, 1.0, 1.0])
    g = torch.Generator().manual_seed(0)
    body, logits = torch.randn(2, 14, 3, generator=g), torch.randn(2, 16, generator=g) * 3
    out = {"gj_body": body, "yaw_logits": logits}
    mirrored = {"gj_body": (body * sign)[:, MIRROR[14]], "yaw_logits": mirror_yaw_bins(logits)}
    merged = merge_flipped(out, mirrored)
    assert torch.allclose(merged["gj_body"], body) and torch.allclose(merged["yaw"], yaw_from_logits(logits))
    assert torch.equal(mirror_yaw_bins(mirror_yaw_bins(logits)), logits)
    torch.manual_seed(0)
    net = DMPNet("resnet18", 2, yaw_bins=16, yaw_depth=True, global_joints=True, aggregate="global", flip_test=True).eval()
    with torch.no_grad():
        net.gjoints[-1].bias.normal_()
        net.gjoints[-1].weight.normal_(std=0.05)
        x = torch.rand(2, 3, 64, 64)
        a, b = net.infer(x), net.infer(torch.flip(x, dims=[-1]))
    assert torch.allclose(b["gj_body"], (a["gj_body"] * sign)[:, MIRROR[14]], atol=1e-4)
    turn = torch.remainder(a["yaw"] + b["yaw"] + torch.pi, 2 * torch.pi) - torch.pi
    assert turn.abs().max() < 1e-4
    j, obs, _ = j_initial(a, 14, net.uv_res)            # aggregate global: J_initial is the merged global joints
    assert torch.equal(j, a["gj"].float()) and obs.all()


def test_global_aggregate_and_flip_test_need_their_heads():
    with pytest.raises(ValueError, match="global_joints"):
        DMPNet("resnet18", 2, aggregate="global")
    with pytest.raises(ValueError, match="yaw_bins and global_joints"):
        DMPNet("resnet18", 2, global_joints=True, flip_test=True)
