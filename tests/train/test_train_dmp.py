"""train_dmp: resuming an interrupted DMP run, J_initial's decomposition, the required weights."""
from pathlib import Path

import pytest
import torch

from uvhmr.config import BodyModelParams, DmpTrainParams, RuleParams, RunParams
from uvhmr.models.dmp import load_dmp
from uvhmr.train import dmp as train_dmp

REPO = Path(__file__).resolve().parents[2]


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
    net, cfg = load_dmp(tmp_path / "b/dmp14.pt")
    assert cfg["joints"] == 14 and net.heads["parts"].out_channels == 14


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
    out["j_global"] = joints + 0.05          # aggregate: global: J_initial as used is the global joints
    d = train_dmp.decomposed_j_initial(out, b, 14)
    assert torch.equal(d["as_used"], out["j_global"]) and not torch.allclose(d["gt_seg"], d["as_used"], atol=1e-2)


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


def test_a_global_joint_run_logs_them_and_its_model_file_loads_as_trained(tiny_split, tiny_uv_dir, anny_dir, tmp_path):
    """global_joints with a yaw head and a 2x2 global grid: the CSV logs the global joints' own MPJPE
    beside J_initial, and load_dmp rebuilds the network the file's weights fit (its grid included)."""
    import csv
    import dataclasses
    torch.set_num_threads(1)
    rp = _rule(1)
    rp = dataclasses.replace(rp, section=dataclasses.replace(rp.section, global_joints=True, yaw_bins=8, yaw_depth=True,
                                                             global_grid=2))
    out = tmp_path / "g/dmp14.pt"
    train_dmp.run_train_dmp(rp, tiny_split, tiny_uv_dir, anny_dir, out, tmp_path / "g", log=lambda *a: None)
    row = next(csv.DictReader(out.with_suffix(".csv").open()))
    assert float(row["val_global_joints_mm"]) > 0 and float(row["val_j_initial_mpjpe_mm"]) > 0
    net, cfg = load_dmp(out)
    assert cfg["global_joints"] and cfg["global_grid"] == 2 and net.global_grid == 2
    saved = torch.load(out, weights_only=True)["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in net.state_dict().items()) and net.state_dict().keys() == saved.keys()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a = net(x)
    assert a["gj"].shape == (1, 14, 3) and a["gj_body"].shape == (1, 14, 3)
