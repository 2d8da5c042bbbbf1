"""DMP network, its losses and the shared trainer (issue #6)."""
from pathlib import Path

import pytest
import torch
import torchvision

from uvhmr.config import DmpTrainParams
from uvhmr.losses import dmp_losses
from uvhmr.models.dmp import DMPNet


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


def test_pretrained_weights_only_from_a_matching_local_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        DMPNet("resnet18", pretrained=str(tmp_path / "missing.pth"))
    wrong = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), wrong)
    with pytest.raises(ValueError, match="do not match torchvision's resnet18"):
        DMPNet("resnet18", pretrained=str(wrong))
    right = tmp_path / "r18.pth"
    sd = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(sd, right)
    net = DMPNet("resnet18", pretrained=str(right))
    assert torch.equal(net.encoder.stem[0].weight, sd["conv1.weight"])
    evil = tmp_path / "evil.pth"
    torch.save({"x": Path("/")}, evil)                       # a pickled object, not tensors
    with pytest.raises(ValueError, match="weights-only"):
        DMPNet("resnet18", pretrained=str(evil))
