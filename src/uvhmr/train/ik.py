"""train_ik: JointRefineNet + GIK-Net (paper §3.2, eq. 3), trained on mocap poses put in the
camera frame by the dataset's orientation sampler (with the augmentation: Gaussian noise and
random zeroing), mixed with DMP's real J_initial on stage2_train.

All joints are LSP-14, camera frame (OpenCV: x right, y down, z forward), metres, mid-hip-relative.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import roma
import torch
import torch.nn as nn
from tqdm import tqdm

from uvhmr.cache.dmp import DmpCache
from uvhmr.data.augment import JointAugment
from uvhmr.data.dataset import SampleDataset
from uvhmr.data.mocap import open_mocap
from uvhmr.data.orientation import OrientationSampler, rotate_points
from uvhmr.data.scene import canonical_rotation
from uvhmr.io import atomic_dir
from uvhmr.models.ik import GIKNet, JointRefineNet
from uvhmr.train.checkpoint import checkpoint_dir, hash_inputs
from uvhmr.train.trainer import check_finite, load_model_file, pick_device, seed_everything, train_epochs
from uvhmr.uv.gt import root_of


class IKNet(nn.Module):
    """J_initial (B, 14, 3) + observed (B, 14) -> J_refine, and GIK-Net's pose and shape."""

    def __init__(self, num_bones: int, mean_shape: torch.Tensor):
        super().__init__()
        self.refine = JointRefineNet(14)
        self.gik = GIKNet(num_bones, len(mean_shape), mean_shape)

    def forward(self, j_initial, observed):
        j_refine = self.refine(j_initial, observed)
        # GIK-Net's losses stop at its input: trained end to end they pulled J_refine towards
        # whatever eased GIK-Net (default profile, mocap-only batches, ground-truth joints with 30 %
        # zeroed: J_refine 185 mm after 1,500 steps end to end, 88 mm after 750 steps detached),
        # so JointRefineNet learns from l_refine only (eq. 3's L_ii).
        return {"j_refine": j_refine, **self.gik(j_refine.detach())}


def pose_mesh(body, rotmats: torch.Tensor, shape: torch.Tensor):
    """(B, J, 3, 3) with the root in the camera frame, (B, S) -> (vertices, LSP joints), both
    camera frame, mid-hip-relative."""
    out = body(roma.rotmat_to_rotvec(rotmats), shape)
    root = root_of(out.lsp14)
    return out.vertices - root, out.lsp14 - root


def to_camera_frame(rows: dict, orient_seed: int, up_axis: str) -> dict:
    """Body-frame mocap rows (pose (B, J, 3) root zero, shape (B, S), lsp14 (B, 14, 3)
    mid-hip-relative) -> the camera frame the dataset photographs them in: a global orientation
    from the dataset's sampler (seeded by `orient_seed`), then the model-to-camera turn.
    -> {"joints" (B, 14, 3), "rotmats" (B, J, 3, 3) with the root's in the camera frame, "shape" (B, S)}."""
    n = len(rows["pose"])
    rv = OrientationSampler(up_axis=up_axis).sample(n, orient_seed)
    C = torch.as_tensor(canonical_rotation(up_axis), dtype=torch.float32)
    joints = rotate_points(rows["lsp14"].float(), rv) @ C.T
    rot = roma.rotvec_to_rotmat(rows["pose"].float())
    rot[:, 0] = C @ roma.rotvec_to_rotmat(rv.float())
    return {"joints": joints, "rotmats": rot, "shape": rows["shape"].float()}


class MocapSource:
    """Mocap training poses in the camera frame, as the dataset would photograph them."""

    def __init__(self, mocap_dir, body, seed: int):
        self.data = open_mocap(mocap_dir, "train")
        self.up_axis = body.up_axis
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int, seed: int) -> dict:
        idx = np.sort(self.rng.choice(len(self.data), n, replace=False))
        return to_camera_frame(self.data.batch(idx), seed, self.up_axis)


def prior_poses(body, n: int, seed: int, reject_penetration: bool = True, batch: int = 64) -> dict:
    """n poses drawn fresh from the built-in pose prior (Anny) like the mocap rule draws them
    (shapes from the model's prior, gross self-penetration rejected unless `reject_penetration`
    is off), put in the camera frame like MocapSource.batch: for tests and benchmarks that need
    IK samples without a mocap folder. -> the same dict as `to_camera_frame`."""
    from uvhmr.data.pose_prior import PenetrationCheck, PosePrior
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


class DmpSource:
    """DMP's J_initial on stage2_train with the matching ground truth."""

    def __init__(self, cache_dir, data_dir, seed: int):
        self.cache = DmpCache(cache_dir, "stage2_train")
        ds = SampleDataset(data_dir, joints=14, augment=None, occlusion=True, seed=seed)
        idx = np.asarray(self.cache.arrays["index"])
        items = [ds[int(i)] for i in idx]
        self.gt = {"joints": torch.stack([it["joints3d"] for it in items]),
                   "rotmats": torch.stack([_camera_rotmats(it) for it in items]),
                   "shape": torch.stack([it["shape"] for it in items]).float()}
        self.j_initial = torch.as_tensor(np.array(self.cache.arrays["j_initial"]))
        self.observed = torch.as_tensor(np.array(self.cache.arrays["observed"]))
        self.rng = np.random.default_rng(seed + 1)

    def __len__(self):
        return len(self.j_initial)

    def batch(self, n: int) -> dict:
        idx = torch.as_tensor(self.rng.choice(len(self), n, replace=len(self) < n))
        return {"input": self.j_initial[idx], "observed": self.observed[idx], **{k: v[idx] for k, v in self.gt.items()}}


def _camera_rotmats(item: dict) -> torch.Tensor:
    rot = roma.rotvec_to_rotmat(item["pose"].float())
    rot[0] = item["R"].float() @ rot[0]
    return rot


def ik_losses(net_out: dict, target: dict, body, sec, vertex_idx: torch.Tensor) -> dict:
    """eq. 3: l_refine (J_refine), l_theta, l_beta (L1), and on the first `mesh_batch` samples
    l_ji (posed joints) and l_vi (a fixed vertex subset) through the body model."""
    m = min(sec.mesh_batch, len(target["joints"]))
    terms = {"refine": sec.w_refine * (net_out["j_refine"] - target["joints"]).abs().mean(),
             "theta": sec.w_theta * (net_out["rotmats"] - target["rotmats"]).abs().mean(),
             "beta": sec.w_beta * (net_out["shape"] - target["shape"]).abs().mean()}
    verts, joints = pose_mesh(body, net_out["rotmats"][:m], net_out["shape"][:m])
    with torch.no_grad():
        gt_verts, _ = pose_mesh(body, target["rotmats"][:m], target["shape"][:m])
    terms["joints"] = sec.w_joints * (joints - target["joints"][:m]).abs().mean()
    terms["vertices"] = sec.w_vertices * (verts[:, vertex_idx] - gt_verts[:, vertex_idx]).abs().mean()
    terms["total"] = sum(terms.values())
    return terms


def load_ik(path, device="cpu"):
    """An IK model file (weights_only) -> (eval-mode IKNet, its config); ValueError naming a file
    of another kind or architecture."""
    return load_model_file(path, "IK", lambda cfg: IKNet(cfg["num_bones"], torch.zeros(cfg["shape_dim"])), device)


def run_train_ik(rp, mocap_dir: Path, dmp_cache_dir: Path, data_dir: Path, body_dir: Path, out_dir: Path,
                 ckpt_root: Path, log=print) -> None:
    from uvhmr.body.model import load_body_model
    from uvhmr.config import to_dict
    sec = rp.section
    device = pick_device(rp.run.device)
    body = load_body_model(body_dir).to(device)
    vertex_idx = torch.arange(0, body.num_vertices, max(1, body.num_vertices // sec.vertex_subset), device=device)
    aug = JointAugment.from_params(sec)
    n_dmp = int(round(sec.batch_size * sec.dmp_fraction))
    dmp = DmpSource(dmp_cache_dir, data_dir, rp.run.seed) if n_dmp else None
    with atomic_dir(out_dir) as tmp:
        for seed in sec.seeds:
            seed_everything(seed)
            mocap = MocapSource(mocap_dir, body, seed)
            net = IKNet(body.num_joints, body.mean_shape()).to(device)
            opt = torch.optim.Adam(net.parameters(), lr=sec.lr)
            key = hash_inputs({"section": to_dict(sec), "run": to_dict(rp.run), "seed": seed}, [mocap_dir, dmp_cache_dir])
            ckpt = checkpoint_dir(ckpt_root, "train_ik", f"{rp.variant}-seed{seed}", key)
            log(f"train_ik {rp.variant} seed {seed}: {sec.epochs} epochs x {sec.steps_per_epoch} steps of "
                f"{sec.batch_size - n_dmp} mocap + {n_dmp} DMP samples on {device}; checkpoints in {ckpt}")

            def run_epoch(epoch: int) -> dict:
                sums, t0 = {}, time.time()
                g = torch.Generator().manual_seed(seed * 100003 + epoch)
                for step in tqdm(range(sec.steps_per_epoch), desc=f"train_ik {rp.variant} s{seed} epoch {epoch + 1}",
                                 leave=False, mininterval=2):
                    mb = mocap.batch(sec.batch_size - n_dmp, seed * 100003 + epoch * 1000 + step)
                    x, obs = aug(mb["joints"], g)
                    batch = {"input": x, "observed": obs, **mb}
                    if dmp is not None:
                        db = dmp.batch(n_dmp)
                        batch = {k: torch.cat([batch[k], db[k]]) for k in ("input", "observed", "joints", "rotmats", "shape")}
                    batch = {k: v.to(device) for k, v in batch.items()}
                    out = net(batch["input"], batch["observed"])
                    terms = ik_losses(out, batch, body, sec, vertex_idx)
                    check_finite(terms["total"], epoch, step, ckpt)
                    opt.zero_grad()
                    terms["total"].backward()
                    opt.step()
                    for k, v in terms.items():
                        sums[k] = sums.get(k, 0.0) + v.item() / sec.steps_per_epoch
                return {**{f"loss_{k}": v for k, v in sums.items()}, "seconds": time.time() - t0}

            history = train_epochs(net, opt, sec.epochs, run_epoch, ckpt, tmp / f"seed{seed}.csv", log=log)
            blob = {"state_dict": net.cpu().state_dict(), "history": history,
                    "config": {"num_bones": body.num_joints, "shape_dim": len(body.shape_labels), "seed": seed,
                               "variant": rp.variant}}
            torch.save(blob, tmp / f"seed{seed}.pt")
            net.to(device)
    log(f"wrote {out_dir}")
