"""torchvision ResNet encoders; ImageNet weights only from a local file the user names."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torchvision

CHANNELS = {"resnet18": (64, 64, 128, 256, 512), "resnet34": (64, 64, 128, 256, 512),
            "resnet50": (64, 256, 512, 1024, 2048)}


def load_pretrained(net: torch.nn.Module, path: Optional[str], name: str) -> None:
    """Load ImageNet weights saved by torchvision (a state dict) from `path`; refuse anything else.

    The file is read with weights_only=True (never unpickle arbitrary objects)."""
    if path is None:
        return
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"pretrained weights {p}: no such file (set `pretrained: null` to train from scratch)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem is the file's fault
        raise ValueError(f"pretrained weights {p}: not a weights-only torch state dict ({e})") from None
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as e:   # shape mismatches: another architecture
        raise ValueError(f"pretrained weights {p}: do not match torchvision's {name} "
                         f"({str(e).splitlines()[1].strip()})") from None
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(f"pretrained weights {p}: do not match torchvision's {name} "
                         f"({len(missing)} missing keys, e.g. {missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})")


class ResNetEncoder(torch.nn.Module):
    """(B, 3, H, W) ImageNet-normalised image -> features at strides 2, 4, 8, 16, 32."""

    def __init__(self, name: str = "resnet18", pretrained: Optional[str] = None):
        super().__init__()
        if name not in CHANNELS:
            raise ValueError(f"backbone {name!r}: expected one of {', '.join(CHANNELS)}")
        net = getattr(torchvision.models, name)(weights=None)
        load_pretrained(net, pretrained, name)
        self.stem = torch.nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        self.layers = torch.nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.channels = CHANNELS[name]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = [self.stem(x)]
        h = self.pool(f[0])
        for layer in self.layers:
            h = layer(h)
            f.append(h)
        return f
