"""UVI, the UV inpainting module (paper §3.3; docs/design.md, "Module homes"): a light UNet in UV space.

(B, C_in, 64, 64) stacked UV-space inputs -> UV_l, UV_j, UV_d (B, 3, 128, 128) each, metres
root-relative, and a camera refinement: (B, 3) weak perspective (s, tx, ty) = DMP's camera +
a predicted correction.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(8, cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(8, cout), nn.ReLU(inplace=True))


class UVINet(nn.Module):
    def __init__(self, in_channels: int, width: int = 32, depth: int = 3, out_scale: int = 2):
        super().__init__()
        ch = [width * 2 ** k for k in range(depth + 1)]           # 32, 64, 128, 256
        self.inc = block(in_channels, ch[0])
        self.down = nn.ModuleList([block(ch[k], ch[k + 1]) for k in range(depth)])
        self.up = nn.ModuleList([block(ch[k + 1] + ch[k], ch[k]) for k in reversed(range(depth))])
        # Past the input resolution: upsample x out_scale without a skip (64 in -> 128 out).
        self.final = nn.Sequential(*[block(ch[0], ch[0]) for _ in range(out_scale.bit_length() - 1)])
        self.out_scale = out_scale
        self.head = nn.Conv2d(ch[0], 9, 1)
        self.camera = nn.Sequential(nn.Linear(ch[-1] + 3, 128), nn.ReLU(inplace=True), nn.Linear(128, 3))
        nn.init.zeros_(self.camera[-1].weight)
        nn.init.zeros_(self.camera[-1].bias)

    def forward(self, x: torch.Tensor, camera: torch.Tensor) -> dict:
        skips = [self.inc(x)]
        for d in self.down:
            skips.append(d(F.max_pool2d(skips[-1], 2)))
        h = skips[-1]
        cam = camera + self.camera(torch.cat([h.mean((2, 3)), camera], 1))
        for u, s in zip(self.up, reversed(skips[:-1])):
            h = u(torch.cat([F.interpolate(h, size=s.shape[-2:], mode="bilinear", align_corners=False), s], 1))
        for f in self.final:
            h = f(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False))
        y = self.head(h)
        return {"uv_l": y[:, :3], "uv_j": y[:, 3:6], "uv_d": y[:, 6:9], "camera": cam}
