"""Joint augmentation for GIK-Net training (paper §3.2: "gaussian noise and random synthetic
occlusion (30 %)"), a training-time transform shared by train_ik and its tests.

Each part has its own switch, so the ablations are the same code with one flag off:
`ik14_nonoise` sets `train_ik.gaussian_noise: false`, `ik14_nozero` sets `train_ik.random_zero: 0`.
A zeroed joint is set to (0, 0, 0), the root (mid-hip) position of root-relative joints, and marked
missing in the mask, exactly like a J_initial joint with no observed texel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass(frozen=True)
class JointAugment:
    noise: bool = True          # Gaussian noise on the (visible) joints
    noise_sigma: float = 0.03   # metres, per coordinate
    zero: bool = True           # random zeroing of joints
    zero_prob: float = 0.3      # probability that a joint is zeroed

    def __post_init__(self):
        if self.noise_sigma < 0 or not 0.0 <= self.zero_prob <= 1.0:
            raise ValueError(f"JointAugment: noise_sigma must be >= 0 and zero_prob in [0, 1], got "
                             f"{self.noise_sigma}, {self.zero_prob}")

    @classmethod
    def from_params(cls, p) -> "JointAugment":
        """From the train_ik section (IkTrainParams): gaussian_noise, noise_sigma, random_zero."""
        return cls(noise=bool(p.gaussian_noise), noise_sigma=float(p.noise_sigma),
                   zero=float(p.random_zero) > 0, zero_prob=float(p.random_zero))

    def __call__(self, joints: torch.Tensor, generator: Optional[torch.Generator] = None,
                 visible: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """joints (B, K, 3) root-relative -> (augmented joints (B, K, 3), visible mask (B, K) bool).

        `visible` (B, K) bool, optional: joints already missing stay zero and missing.
        The input is not modified. Draws come from `generator` (device must match `joints`).
        """
        if joints.ndim != 3 or joints.shape[-1] != 3:
            raise ValueError(f"JointAugment: joints must be (B, K, 3), got {tuple(joints.shape)}")
        b, k, _ = joints.shape
        vis = torch.ones(b, k, dtype=torch.bool, device=joints.device) if visible is None else visible.to(torch.bool).clone()
        out = joints.clone()
        if self.noise and self.noise_sigma > 0:
            eps = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
            out = out + self.noise_sigma * eps
        if self.zero and self.zero_prob > 0:
            u = torch.rand(b, k, generator=generator, device=out.device)
            vis &= u >= self.zero_prob
        return out * vis[..., None].to(out.dtype), vis
