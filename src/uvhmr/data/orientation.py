"""The one global-orientation sampler, shared by the dataset rule (renders) and train_ik (mocap
joints put into the same frame as J_initial).

A body-frame pose keeps bone 0 (root) at identity; a sample of this sampler is the root's
axis-angle: yaw uniform about the model's up axis, and a small pitch (forward/backward lean) and
roll (sideways lean) about the body's horizontal axes, applied before the yaw:

    R = R_up(yaw) @ R_lateral(pitch) @ R_forward(roll)

Rows of the pose prior's "lying" family (`lying`, with their body-frame LSP-14 joints) are laid
down instead, with the same yaw:

    R = R_up(yaw) @ R_lateral(-90 deg + tilt) @ R_up(rock) @ R_trunk

R_trunk turns the body's own trunk (mid-hips to neck) onto the up axis, so that it ends within
`lying_max_tilt` of horizontal however the pose bends its spine; R_up(rock) turns the body about
that trunk, which `R_lateral(-90 deg)` then lays along the ground: rock 0 lies on the back, 180 on
the front, +-90 on a side (each plus N(0, lying_rock_sigma)).

Frames: Anny is Z up, facing -Y, +X the body's left (lateral axis X, forward axis Y); SMPL is Y up,
facing +Z, +X the body's left (lateral axis X, forward axis Z).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import roma
import torch

from uvhmr.body.joints import LSP14_HIPS, LSP14_NAMES
from uvhmr.data.pose_prior import CATEGORIES

AXES = {"z": (2, 0, 1), "y": (1, 0, 2)}   # up axis -> (up, lateral, forward) coordinate indices
FACING = {"z": (0.0, -1.0, 0.0), "y": (0.0, 0.0, 1.0)}   # up axis -> the way the body faces
NECK = LSP14_NAMES.index("neck")
KNEES = (LSP14_NAMES.index("R_knee"), LSP14_NAMES.index("L_knee"))
# Rock about the trunk (degrees) of each way to lie: on the back, the left side, the front, the
# right side. A body whose knees come forward of its trunk by more than 30 deg (hips flexed,
# curled up) does not lie on its front: its knees would go through the ground.
LYING_ROCK = (0.0, 90.0, 180.0, -90.0)
NOT_PRONE = (0.0, 90.0, -90.0)
FOLDED_KNEES_SIN = 0.5


@dataclass(frozen=True)
class OrientationSampler:
    """yaw ~ U(yaw_min, yaw_max) degrees; pitch, roll ~ N(0, sigma) degrees, clipped to +-max_tilt.
    Lying rows: the same yaw; trunk tilt from horizontal ~ N(0, lying_tilt_sigma) degrees clipped
    to +-lying_max_tilt; back, left side, front or right side equally likely (not the front when
    the knees are drawn up), rocked about the trunk by N(0, lying_rock_sigma) degrees."""
    up_axis: str = "z"
    yaw_min: float = 0.0
    yaw_max: float = 360.0
    pitch_sigma: float = 8.0
    roll_sigma: float = 4.0
    max_tilt: float = 20.0
    lying_tilt_sigma: float = 5.0
    lying_max_tilt: float = 15.0
    lying_rock_sigma: float = 15.0

    def __post_init__(self):
        if self.up_axis not in AXES:
            raise ValueError(f"up_axis must be 'z' (Anny) or 'y' (SMPL), got {self.up_axis!r}")

    def sample_angles(self, n: int, generator: Union[torch.Generator, int, None] = None) -> torch.Tensor:
        """(n, 3) (yaw, pitch, roll) in radians of upright bodies, deterministic from the
        generator (or int seed)."""
        g = _generator(generator)
        u = torch.rand(n, generator=g, dtype=torch.float64)
        pr = torch.randn(n, 2, generator=g, dtype=torch.float64)
        yaw = torch.deg2rad(self.yaw_min + (self.yaw_max - self.yaw_min) * u)
        tilt = pr * pr.new_tensor([self.pitch_sigma, self.roll_sigma])
        tilt = torch.deg2rad(tilt.clamp(-self.max_tilt, self.max_tilt))
        return torch.cat([yaw[:, None], tilt], dim=1)

    def sample(self, n: int, generator: Union[torch.Generator, int, None] = None,
               lying: Optional[torch.Tensor] = None, joints: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(n, 3) float32 axis-angle of the root (global orientation) in the body model's frame.
        lying: optional (n,) bool, the rows to lay down; joints: their (n, 14, 3) LSP-14 joints
        in the body frame (metres; only the rows that lie are read). Upright rows get the same
        values with or without `lying`."""
        return roma.rotmat_to_rotvec(self._matrices(n, generator, lying, joints)).float()

    def matrices(self, n: int, generator: Union[torch.Generator, int, None] = None,
                 lying: Optional[torch.Tensor] = None, joints: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(n, 3, 3) float32 rotation matrices of the same samples as `sample` would give."""
        return self._matrices(n, generator, lying, joints).float()

    def sample_rows(self, rows: dict, generator: Union[torch.Generator, int, None] = None) -> torch.Tensor:
        """Mocap rows as `MocapData.batch` gives them ("pose" (n, J, 3), "lsp14" (n, 14, 3) body
        frame, and "category" (n,) when the source is the built-in prior) -> (n, 3) float32
        axis-angle: rows of the "lying" family laid down, the others as `sample(n, generator)`."""
        lying = lying_rows(rows)
        return self.sample(len(rows["pose"]), generator, lying, None if lying is None else rows["lsp14"])

    def _matrices(self, n, generator, lying, joints) -> torch.Tensor:
        g = _generator(generator)
        angles = self.sample_angles(n, g)
        R = angles_to_matrix(angles, self.up_axis)
        if lying is None:
            return R
        lying = torch.as_tensor(lying, dtype=torch.bool).reshape(-1)
        if len(lying) != n:
            raise ValueError(f"OrientationSampler: lying has {len(lying)} rows for {n} samples")
        # Drawn for every row after the upright draws: upright rows keep their values, and a
        # row's lying draw does not depend on which other rows lie.
        u = torch.rand(n, generator=g, dtype=torch.float64)
        z = torch.randn(n, 2, generator=g, dtype=torch.float64)
        if lying.any():
            if joints is None:
                raise ValueError("OrientationSampler: lying rows need their body-frame joints (LSP-14)")
            R[lying] = self._lie_down(angles[lying, 0], u[lying], z[lying],
                                      torch.as_tensor(joints)[lying].double())
        return R

    def _lie_down(self, yaw, u, z, joints) -> torch.Tensor:
        """yaw (m,) radians, u (m,) uniform, z (m, 2) normal, joints (m, 14, 3) -> (m, 3, 3)."""
        up, lat, _ = AXES[self.up_axis]
        e_up = torch.zeros(3, dtype=torch.float64)
        e_up[up] = 1.0
        hips = joints[:, list(LSP14_HIPS)].mean(1)
        trunk = torch.nn.functional.normalize(joints[:, NECK] - hips, dim=-1)
        # R_trunk: the smallest turn taking the trunk onto the up axis.
        axis = torch.linalg.cross(trunk, e_up.expand_as(trunk), dim=-1)
        sin = axis.norm(dim=-1, keepdim=True)
        align = roma.rotvec_to_rotmat(axis / sin.clamp_min(1e-12) * torch.atan2(sin, (trunk @ e_up)[:, None]))
        knees = (align @ (joints[:, list(KNEES)].mean(1) - hips)[..., None])[..., 0]
        facing = joints.new_tensor(FACING[self.up_axis])
        folded = torch.nn.functional.normalize(knees, dim=-1) @ facing > FOLDED_KNEES_SIN
        # One table row per case; the folded row's padding is never picked (pick < 3 there).
        table = joints.new_tensor([LYING_ROCK, NOT_PRONE + (math.nan,)])
        pick = (u * torch.where(folded, len(NOT_PRONE), len(LYING_ROCK))).long()
        rock = torch.deg2rad(table[folded.long(), pick] + self.lying_rock_sigma * z[:, 1])
        tilt = torch.deg2rad((self.lying_tilt_sigma * z[:, 0]).clamp(-self.lying_max_tilt, self.lying_max_tilt))
        return _axis_rot(yaw, up) @ _axis_rot(tilt - math.pi / 2, lat) @ _axis_rot(rock, up) @ align


def lying_rows(rows: dict) -> Optional[torch.Tensor]:
    """(n,) bool: the mocap rows of the built-in prior's "lying" family; None for mocap without
    categories (licensed sources)."""
    if "category" not in rows:
        return None
    return torch.as_tensor(rows["category"]).long() == CATEGORIES.index("lying")


def sample_orientation(n: int, generator: Union[torch.Generator, int, None] = None, up_axis: str = "z",
                       **kw) -> torch.Tensor:
    """(n, 3) axis-angle global orientations: `OrientationSampler(up_axis, **kw).sample(n, generator)`."""
    return OrientationSampler(up_axis=up_axis, **kw).sample(n, generator)


def angles_to_matrix(angles: torch.Tensor, up_axis: str = "z") -> torch.Tensor:
    """(n, 3) (yaw, pitch, roll) radians -> (n, 3, 3) R = R_up(yaw) R_lateral(pitch) R_forward(roll)."""
    up, lat, fwd = AXES[up_axis]
    return _axis_rot(angles[:, 0], up) @ _axis_rot(angles[:, 1], lat) @ _axis_rot(angles[:, 2], fwd)


def angles_to_rotvec(angles: torch.Tensor, up_axis: str = "z") -> torch.Tensor:
    """(n, 3) (yaw, pitch, roll) radians -> (n, 3) float32 axis-angle of the same rotations."""
    return roma.rotmat_to_rotvec(angles_to_matrix(angles.double(), up_axis)).float()


def rotate_points(points: torch.Tensor, rotvec: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) root-relative points in the body frame, (B, 3) axis-angle -> R @ points."""
    R = roma.rotvec_to_rotmat(rotvec.to(points.dtype))
    return points @ R.transpose(1, 2)


def with_orientation(pose: torch.Tensor, rotvec: torch.Tensor) -> torch.Tensor:
    """(B, J, 3) body-frame pose (root identity) -> the same pose with root = rotvec."""
    out = pose.clone()
    out[:, 0] = rotvec.to(pose.dtype)
    return out


def _axis_rot(angle: torch.Tensor, axis: int) -> torch.Tensor:
    """(n,) radians about coordinate axis `axis` (0, 1, 2; right-handed) -> (n, 3, 3)."""
    rotvec = torch.zeros(angle.shape[0], 3, dtype=angle.dtype)
    rotvec[:, axis] = angle
    return roma.rotvec_to_rotmat(rotvec)


def _generator(generator: Union[torch.Generator, int, None]) -> Optional[torch.Generator]:
    if isinstance(generator, torch.Generator):
        return generator
    return torch.Generator().manual_seed(int(0 if generator is None else generator))
