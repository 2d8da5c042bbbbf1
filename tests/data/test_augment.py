"""Joint augmentation for GIK-Net: noise and 30 % zeroing, each with its own switch."""
from pathlib import Path

import pytest
import torch

from uvhmr.config import load_params, rule_params
from uvhmr.data.augment import JointAugment

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
J = torch.randn(10000, 14, 3, generator=torch.Generator().manual_seed(0)) * 0.3


def test_zeroing_rate_is_0_3_and_marks_the_mask():
    out, vis = JointAugment(noise=False, zero_prob=0.3)(J, torch.Generator().manual_seed(1))
    rate = 1 - vis.float().mean().item()
    assert abs(rate - 0.3) < 0.02                      # 140k Bernoulli draws: sd 0.0012
    assert torch.all(out[~vis] == 0)
    assert torch.equal(out[vis], J[vis])               # noise off: visible joints untouched
    per_joint = 1 - vis.float().mean(0)
    assert per_joint.min() > 0.27 and per_joint.max() < 0.33


def test_switches_off_are_identity_and_noise_has_sigma():
    out, vis = JointAugment(noise=False, zero=False)(J, torch.Generator().manual_seed(2))
    assert vis.all() and torch.equal(out, J)
    out, vis = JointAugment(noise=True, noise_sigma=0.05, zero=False)(J, torch.Generator().manual_seed(3))
    assert vis.all()
    assert abs((out - J).std().item() - 0.05) < 0.001 and abs((out - J).mean().item()) < 0.001
    out, vis = JointAugment(zero_prob=0.0)(J, torch.Generator().manual_seed(4))
    assert vis.all()


def test_existing_missing_joints_stay_missing_and_input_is_untouched():
    visible = torch.ones(10000, 14, dtype=torch.bool)
    visible[:, 5] = False
    before = J.clone()
    out, vis = JointAugment()(J, torch.Generator().manual_seed(5), visible=visible)
    assert not vis[:, 5].any() and torch.all(out[:, 5] == 0)
    assert torch.equal(J, before)
    a = JointAugment()(J, torch.Generator().manual_seed(6))
    b = JointAugment()(J, torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("variant, noise, zero", [("ik14", True, True), ("ik14_nonoise", False, True),
                                                  ("ik14_nozero", True, False)])
def test_ablation_variants_flip_one_switch(variant, noise, zero):
    rp = rule_params(load_params(PARAMS, "default"), "train_ik", variant)
    aug = JointAugment.from_params(rp.section)
    assert (aug.noise, aug.zero) == (noise, zero)
    assert aug.noise_sigma == rp.section.noise_sigma > 0
    _, vis = aug(J[:2000], torch.Generator().manual_seed(7))
    assert (not vis.all()) == zero


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="B, K, 3"):
        JointAugment()(torch.zeros(4, 14))
    with pytest.raises(ValueError):
        JointAugment(zero_prob=1.5)
