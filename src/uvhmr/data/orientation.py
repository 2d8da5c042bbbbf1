"""The one global-orientation sampler, shared by the dataset rule (renders) and train_ik (mocap
joints put into the same frame as J_initial).

A body-frame pose keeps bone 0 (root) at identity; a sample of this sampler is the root's
axis-angle: yaw uniform about the model's up axis, and a small pitch (forward/backward lean) and
roll (sideways lean) about the body's horizontal axes, applied before the yaw:

    R = R_up(yaw) @ R_lateral(pitch) @ R_forward(roll)

Frames: Anny is Z up, facing -Y, +X the body's left (lateral axis X, forward axis Y); SMPL is Y up,
facing +Z, +X the body's left (lateral axis X, forward axis Z).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch

AXES = {"z": (2, 0, 1), "y": (1, 0, 2)}   # up axis -> (up, lateral, forward) coordinate indices


@dataclass(frozen=True)
class OrientationSampler:
    """yaw ~ U(yaw_min, yaw_max) degrees; pitch, roll ~ N(0, sigma) degrees, clipped to +-max_tilt."""
    up_axis: str = "z"
    yaw_min: float = 0.0
    yaw_max: float = 360.0
    pitch_sigma: float = 8.0
    roll_sigma: float = 4.0
    max_tilt: float = 20.0

    def __post_init__(self):
        if self.up_axis not in AXES:
            raise ValueError(f"up_axis must be 'z' (Anny) or 'y' (SMPL), got {self.up_axis!r}")

    def sample_angles(self, n: int, generator: Union[torch.Generator, int, None] = None) -> torch.Tensor:
        """(n, 3) (yaw, pitch, roll) in radians, deterministic from the generator (or int seed)."""
        g = _generator(generator)
        u = torch.rand(n, generator=g, dtype=torch.float64)
        pr = torch.randn(n, 2, generator=g, dtype=torch.float64)
        yaw = torch.deg2rad(self.yaw_min + (self.yaw_max - self.yaw_min) * u)
        tilt = pr * pr.new_tensor([self.pitch_sigma, self.roll_sigma])
        tilt = torch.deg2rad(tilt.clamp(-self.max_tilt, self.max_tilt))
        return torch.cat([yaw[:, None], tilt], dim=1)

    def sample(self, n: int, generator: Union[torch.Generator, int, None] = None) -> torch.Tensor:
        """(n, 3) float32 axis-angle of the root (global orientation) in the body model's frame."""
        return angles_to_rotvec(self.sample_angles(n, generator), self.up_axis)

    def matrices(self, n: int, generator: Union[torch.Generator, int, None] = None) -> torch.Tensor:
        """(n, 3, 3) float32 rotation matrices of the same samples as `sample` would give."""
        return angles_to_matrix(self.sample_angles(n, generator), self.up_axis).float()


def sample_orientation(n: int, generator: Union[torch.Generator, int, None] = None, up_axis: str = "z",
                       **kw) -> torch.Tensor:
    """(n, 3) axis-angle global orientations: `OrientationSampler(up_axis, **kw).sample(n, generator)`."""
    return OrientationSampler(up_axis=up_axis, **kw).sample(n, generator)


def angles_to_matrix(angles: torch.Tensor, up_axis: str = "z") -> torch.Tensor:
    """(n, 3) (yaw, pitch, roll) radians -> (n, 3, 3) R = R_up(yaw) R_lateral(pitch) R_forward(roll)."""
    up, lat, fwd = AXES[up_axis]
    return _axis_rot(angles[:, 0], up) @ _axis_rot(angles[:, 1], lat) @ _axis_rot(angles[:, 2], fwd)


def angles_to_rotvec(angles: torch.Tensor, up_axis: str = "z") -> torch.Tensor:
    import roma
    return roma.rotmat_to_rotvec(angles_to_matrix(angles.double(), up_axis)).float()


def rotate_points(points: torch.Tensor, rotvec: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) root-relative points in the body frame, (B, 3) axis-angle -> R @ points."""
    import roma
    R = roma.rotvec_to_rotmat(rotvec.to(points.dtype))
    return points @ R.transpose(1, 2)


def with_orientation(pose: torch.Tensor, rotvec: torch.Tensor) -> torch.Tensor:
    """(B, J, 3) body-frame pose (root identity) -> the same pose with root = rotvec."""
    out = pose.clone()
    out[:, 0] = rotvec.to(pose.dtype)
    return out


def _axis_rot(angle: torch.Tensor, axis: int) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    R = torch.zeros(angle.shape[0], 3, 3, dtype=angle.dtype)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]     # right-handed: rotation in the (i, j) plane
    R[:, axis, axis] = 1
    R[:, i, i] = c
    R[:, j, j] = c
    R[:, i, j] = -s
    R[:, j, i] = s
    return R


def _generator(generator: Union[torch.Generator, int, None]) -> Optional[torch.Generator]:
    if isinstance(generator, torch.Generator):
        return generator
    return torch.Generator().manual_seed(int(0 if generator is None else generator))

