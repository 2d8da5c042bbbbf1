"""Body poses in the camera frame the dataset photographs them in: the IK module's samples.
Training (train/ik.py) and evaluation (evaluate/run.py) put mocap rows there the same way.

All joints are LSP-14, camera frame (OpenCV: x right, y down, z forward), metres, mid-hip-relative.
"""
from __future__ import annotations

import numpy as np
import roma
import torch

from uvhmr.data.orientation import OrientationSampler, rotate_points
from uvhmr.data.pose_prior import PenetrationCheck, PosePrior
from uvhmr.data.scene import canonical_rotation
from uvhmr.uv.gt import root_of


def to_camera_frame(rows: dict, orient_seed: int, up_axis: str, points: torch.Tensor | None = None) -> dict:
    """Body-frame mocap rows (pose (B, J, 3) root zero, shape (B, S), lsp14 (B, 14, 3)
    mid-hip-relative) -> the camera frame the dataset photographs them in: a global orientation
    from the dataset's sampler (seeded by `orient_seed`), then the model-to-camera turn.
    -> {"joints" (B, 14, 3), "rotmats" (B, J, 3, 3) with the root's in the camera frame, "shape" (B, S)},
    and "points" (B, N, 3): `points`, more body-frame mid-hip-relative points of the same rows
    (e.g. vertices), turned with the joints."""
    rv = OrientationSampler(up_axis=up_axis).sample_rows(rows, orient_seed)   # the lying family lies, as in the renders
    C = torch.as_tensor(canonical_rotation(up_axis), dtype=torch.float32)
    joints = rotate_points(rows["lsp14"].float(), rv) @ C.T
    rot = roma.rotvec_to_rotmat(rows["pose"].float())
    rot[:, 0] = C @ roma.rotvec_to_rotmat(rv.float())
    out = {"joints": joints, "rotmats": rot, "shape": rows["shape"].float()}
    if points is not None:
        out["points"] = rotate_points(points.float(), rv) @ C.T
    return out


def prior_poses(body, n: int, seed: int, reject_penetration: bool = True, batch: int = 64) -> dict:
    """n poses drawn fresh from the built-in pose prior (Anny) like the mocap rule draws them
    (shapes from the model's prior, gross self-penetration rejected unless `reject_penetration`
    is off), put in the camera frame like the IK trainer's mocap batches: for tests and benchmarks that need
    IK samples without a mocap folder. -> the same dict as `to_camera_frame`."""
    prior = PosePrior.from_model(body)
    check = PenetrationCheck(body, seed=seed) if reject_penetration else None
    rng = np.random.default_rng([seed, 7919])           # its own stream: not the mocap rule's blocks
    kept: dict[str, list] = {"pose": [], "shape": [], "lsp14": []}
    have = 0
    while have < n:
        pose = torch.from_numpy(prior.sample(batch, rng).pose)
        shape = body.sample_shape(batch, int(rng.integers(2 ** 31))).cpu()
        with torch.no_grad():
            out = body(pose.to(body.faces.device), shape.to(body.faces.device))
            ok = ~check(out.vertices, out.joints).cpu() if check is not None else torch.ones(batch, dtype=torch.bool)
        lsp = out.lsp14.cpu()
        for k, v in (("pose", pose), ("shape", shape), ("lsp14", lsp - root_of(lsp))):
            kept[k].append(v[ok])
        have += int(ok.sum())
    rows = {k: torch.cat(v)[:n] for k, v in kept.items()}
    return to_camera_frame(rows, seed, body.up_axis)
