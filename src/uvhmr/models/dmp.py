"""DMP, the dense map prediction module (paper §3.1, DESIGN §6).

A ResNet encoder, a decoder with skip connections up to 1/`out_stride` of the input, and heads for
the body mask (logits), the UV coordinates (sigmoid), the A_uv part of each body pixel (logits,
DensePose's "I"; J_initial aggregates M_j by it), and the camera-frame maps M_j, M_l, M_d
(metres, root-relative); a global feature regresses the weak-perspective camera (s, tx, ty).
The decoder's last features are the local features UVI later warps into UV space.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from uvhmr.models.backbone import ResNetEncoder

# Stride of each encoder feature: stem (2), layer1 (4), layer2 (8), layer3 (16), layer4 (32).
STRIDES = (2, 4, 8, 16, 32)


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def with_coords(x: torch.Tensor) -> torch.Tensor:
    """Append the pixel's normalised image coordinates (x, y in [-1, 1]) as two channels.
    (B, C, h, w) -> (B, C + 2, h, w). The maps are root-relative 3-D positions: a surface point's
    x, y are nearly an affine function of where it is in the image (the weak-perspective camera),
    which translation-equivariant convolutions alone cannot express (CoordConv)."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))[None].expand(b, -1, -1, -1)
    return torch.cat([x, grid], 1)


class UpBlock(nn.Module):
    """Upsample x2, concatenate the encoder's skip feature and the pixel coordinates, two 3x3 convs."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(conv_bn(cin + cskip + 2, cout), conv_bn(cout, cout))

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(with_coords(torch.cat([x, skip], 1)))


class DMPNet(nn.Module):
    """(B, 3, H, W) RGB image in [0, 1] -> dict:
      mask (B, 1, h, w) logits; uv (B, 2, h, w) in [0, 1]; parts (B, K, h, w) logits; mj, ml, md (B, 3, h, w) metres;
      camera (B, 3) weak perspective (s, tx, ty); features (B, C, h, w) local features;
    with h = H / out_stride."""

    def __init__(self, backbone: str = "resnet18", out_stride: int = 2, decoder_channels: int = 64,
                 feature_channels: int = 32, pretrained: Optional[str] = None, parts: int = 14):
        super().__init__()
        if out_stride not in STRIDES[:2]:
            raise ValueError(f"out_stride must be 2 or 4, got {out_stride}")
        self.encoder = ResNetEncoder(backbone, pretrained)
        ch = self.encoder.channels
        self.out_stride = out_stride
        n_up = 4 - int(math.log2(out_stride)) + 1          # from stride 32 down to out_stride
        # Decoder widths halve from 256 down to decoder_channels (wide enough, cheap on a CPU).
        widths = [max(decoder_channels, 256 // 2 ** k) for k in range(n_up)]
        blocks, cin = [], ch[4]
        for k in range(n_up):
            skip = ch[3 - k]
            blocks.append(UpBlock(cin, skip, widths[k]))
            cin = widths[k]
        self.up = nn.ModuleList(blocks)
        self.local = conv_bn(cin + 2, feature_channels)
        self.heads = nn.ModuleDict({"mask": nn.Conv2d(feature_channels, 1, 1), "uv": nn.Conv2d(feature_channels, 2, 1),
                                    "parts": nn.Conv2d(feature_channels, parts, 1),
                                    "mj": nn.Conv2d(feature_channels, 3, 1), "ml": nn.Conv2d(feature_channels, 3, 1),
                                    "md": nn.Conv2d(feature_channels, 3, 1)})
        self.camera = nn.Sequential(nn.Linear(ch[4], 256), nn.ReLU(inplace=True), nn.Linear(256, 3))
        self.register_buffer("rgb_mean", torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1))
        self.register_buffer("rgb_std", torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1))
        # Start at a plausible camera (scale 0.9 of the crop, centred) rather than at zero.
        nn.init.zeros_(self.camera[-1].weight)
        with torch.no_grad():
            self.camera[-1].bias.copy_(torch.tensor([0.9, 0.0, 0.0]))

    def forward(self, image: torch.Tensor) -> dict:
        """image: (B, 3, H, W) RGB in [0, 1] (ImageNet normalisation happens here)."""
        f = self.encoder((image - self.rgb_mean) / self.rgb_std)
        x = f[4]
        for k, block in enumerate(self.up):
            x = block(x, f[3 - k])
        feat = self.local(with_coords(x))
        out = {name: head(feat) for name, head in self.heads.items()}
        out["uv"] = torch.sigmoid(out["uv"])
        out["camera"] = self.camera(f[4].mean((2, 3)))
        out["features"] = feat
        return out
