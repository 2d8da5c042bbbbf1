"""train_dmp: J_initial through the part head, and resuming an interrupted DMP run (issue #6)."""
from pathlib import Path

import pytest
import torch

from uvhmr.config import BodyModelParams, DmpTrainParams, RuleParams, RunParams
from uvhmr.train import dmp as train_dmp
from uvhmr.uv.assets import load_uv_assets
from uvhmr.uv.gt import gt_uv_maps, root_of

REPO = Path(__file__).resolve().parents[2]


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
    joints, seen, warp = train_dmp.j_initial(out, 14)
    rel = o.lsp14 - root
    assert seen[1].all() and not seen[0, hidden] and seen[0].sum() == 13
    assert (joints[1] - rel[1]).norm(dim=-1).max() < 1e-3
    keep = torch.arange(14) != hidden
    assert (joints[0, keep] - rel[0, keep]).norm(dim=-1).max() < 1e-3
    # The paper's UV route agrees on the same maps (same A_uv lookup).
    joints_uv, seen_uv = train_dmp.j_initial_uv(warp, lab, 14)
    assert torch.equal(seen_uv, seen) and (joints_uv[1] - rel[1]).norm(dim=-1).max() < 1e-3
    # The warp reproduces the ground-truth UV maps on the observed texels.
    on = warp["hits"][1] > 0
    assert on.sum() > 0.3 * res * res
    assert torch.allclose(warp["uv_maps"][1, 3:6][:, on], uv_l[1][:, on], atol=1e-6)


def _rule(epochs):
    sec = DmpTrainParams(epochs=epochs, batch_size=4, lr=1e-3, val_fraction=0.2, lr_schedule="cosine")
    return RuleParams("smoke", "train_dmp", "dmp14", RunParams(seed=0), BodyModelParams(), sec)


def test_resuming_an_interrupted_run_gives_the_uninterrupted_weights(tiny_split, tiny_uv_dir, anny_dir, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    quiet = lambda *a: None                                   # noqa: E731
    train_dmp.run_train_dmp(_rule(2), tiny_split, tiny_uv_dir, anny_dir, tmp_path / "a/dmp14.pt", tmp_path / "a", log=quiet)

    calls = {"n": 0}
    real = train_dmp.dmp_losses

    def dies_in_epoch_two(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:                                   # 10 training images, batch 4: epoch 2's first step
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(train_dmp, "dmp_losses", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_dmp.run_train_dmp(_rule(2), tiny_split, tiny_uv_dir, anny_dir, tmp_path / "b/dmp14.pt", tmp_path / "b", log=quiet)
    assert not (tmp_path / "b/dmp14.pt").exists()
    monkeypatch.setattr(train_dmp, "dmp_losses", real)
    lines = []
    train_dmp.run_train_dmp(_rule(2), tiny_split, tiny_uv_dir, anny_dir, tmp_path / "b/dmp14.pt", tmp_path / "b", log=lines.append)
    assert any("resuming from the epoch-1 checkpoint" in line for line in lines), lines

    a = torch.load(tmp_path / "a/dmp14.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b/dmp14.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    net, cfg = train_dmp.load_dmp(tmp_path / "b/dmp14.pt")
    assert cfg["joints"] == 14 and net.heads["parts"].out_channels == 14


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
    joints, seen, _ = train_dmp.j_initial(out, 3)
    assert torch.allclose(joints[0, 0, 0], torch.tensor((1 + 0.5 * 4) / 1.5))
    assert torch.allclose(joints[0, 1, 0], torch.tensor((0.5 * 4 + 9) / 1.5))
    assert seen[0].tolist() == [True, True, False]


def test_decomposition_is_the_floor_when_every_prediction_is_true():
    """decomposed_j_initial with the network's outputs equal to the ground truth: every case is
    the all-true floor; with M_j wrong, only the cases that keep the predicted M_j move."""
    g = torch.Generator().manual_seed(0)
    parts = torch.randint(0, 14, (2, 8, 8), generator=g)
    parts[:, :2] = -1                                       # off the body
    joints = torch.randn(2, 14, 3, generator=g) * 0.3
    mj = torch.stack([joints[i][parts[i].clamp(min=0)].permute(2, 0, 1) for i in range(2)]) * (parts >= 0)[:, None]
    b = {"mask": (parts >= 0)[:, None].float(), "parts": parts, "M_j": mj}
    onehot = torch.nn.functional.one_hot(parts.clamp(min=0), 14).permute(0, 3, 1, 2).float()
    out = {"mask": (b["mask"] * 2 - 1) * 30, "parts": onehot * 30, "mj": mj.clone()}
    d = train_dmp.decomposed_j_initial(out, b, 14)
    for name in ("as_used", "gt_mask", "gt_seg", "gt_mj"):
        assert torch.allclose(d[name], d["floor"], atol=1e-5), name
    out["mj"] = mj + 0.1
    d = train_dmp.decomposed_j_initial(out, b, 14)
    assert torch.allclose(d["gt_mj"], d["floor"], atol=1e-5)
    assert not torch.allclose(d["gt_seg"], d["floor"], atol=1e-2)


def test_the_paper_profile_asks_for_resnet50_weights_when_training_starts(tmp_path):
    """Dry runs of the paper profile validate (no file named yet); train_dmp then stops at once
    with one line saying how to name the weights."""
    from uvhmr.config import load_params, rule_params
    from uvhmr.models.encoders import PretrainedError
    from uvhmr.train.hmr import run_train_hmr
    rp = rule_params(load_params(REPO / "params.yaml", "paper"), "train_dmp", "dmp14")
    with pytest.raises(PretrainedError) as e:
        train_dmp.run_train_dmp(rp, tmp_path, tmp_path, tmp_path, tmp_path / "dmp14.pt", tmp_path)
    msg = str(e.value)
    assert msg.startswith("train_dmp.pretrained: ") and "resnet50" in msg and "efficientnet_lite2" in msg and "\n" not in msg
    with pytest.raises(PretrainedError, match="^train_hmr.pretrained: "):
        run_train_hmr(rule_params(load_params(REPO / "params.yaml", "paper"), "train_hmr"), tmp_path, tmp_path, tmp_path / "h.pt", tmp_path)
