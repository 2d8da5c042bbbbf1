"""train_ik: JointRefineNet + GIK-Net (paper §3.2, eq. 3), trained on mocap poses put in the
camera frame by the dataset's orientation sampler (with the augmentation: Gaussian noise and
random zeroing), mixed with DMP's real J_initial on stage2_train.

All joints are LSP-14, camera frame (OpenCV: x right, y down, z forward), metres, mid-hip-relative.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import roma
import torch
from tqdm import tqdm

from uvhmr.body.model import load_body_model
from uvhmr.cache.dmp import DmpCache
from uvhmr.config import to_dict
from uvhmr.data.augment import JointAugment
from uvhmr.data.camera_frame import to_camera_frame
from uvhmr.data.dataset import SampleDataset
from uvhmr.data.mocap import open_mocap
from uvhmr.device import pick_device
from uvhmr.evaluate import metrics as M
from uvhmr.io import atomic_dir
from uvhmr.models.ik import IKNet, fast_pose_joints
from uvhmr.train.checkpoint import checkpoint_dir, code_files, hash_inputs
from uvhmr.train.trainer import check_finite, seed_everything, train_epochs


def mocap_vertices(mocap_dir, body, vertex_idx: torch.Tensor | None, max_bytes: int = 1 << 30,
                   batch: int = 1024) -> torch.Tensor | None:
    """l_vi's ground-truth vertices of every mocap train row, posed once in the body frame
    (root unturned, mid-hip-relative, metres): (N_rows, N, 3), or None when there are none to
    pose or they would not fit in `max_bytes` (the paper profile's million rows: then ik_losses
    poses each batch's itself). Default profile: 50,000 rows x 204 vertices, 122 MB, a few
    seconds; posing them per batch instead cost a sixth of every training step."""
    data = open_mocap(mocap_dir, "train")
    if vertex_idx is None or not 0 < len(data) * len(vertex_idx) * 12 <= max_bytes:
        return None
    dev, parts = body.faces.device, []
    with torch.no_grad():
        for start in range(0, len(data), batch):
            rows = data.batch(np.arange(start, min(start + batch, len(data))))
            rot = roma.rotvec_to_rotmat(rows["pose"].float()).to(dev)
            parts.append(fast_pose_joints(body, rot, rows["shape"].float().to(dev), vertex_idx)[1].cpu())
    return torch.cat(parts)


class MocapSource:
    """Mocap training poses in the camera frame, as the dataset would photograph them, with
    `vertices` (mocap_vertices, or None) turned into the camera frame with the joints."""

    def __init__(self, mocap_dir, body, seed: int, vertices: torch.Tensor | None = None):
        self.data = open_mocap(mocap_dir, "train")
        self.up_axis = body.up_axis
        self.rng = np.random.default_rng(seed)
        self.vertices = vertices

    def batch(self, n: int, seed: int) -> dict:
        """n random rows, camera frame: to_camera_frame's dict, plus "vertices" (n, N, 3) when
        there are some."""
        idx = np.sort(self.rng.choice(len(self.data), n, replace=False))
        pts = self.vertices[torch.from_numpy(idx)] if self.vertices is not None else None
        out = to_camera_frame(self.data.batch(idx), seed, self.up_axis, pts)
        if pts is not None:
            out["vertices"] = out.pop("points")
        return out


class DmpSource:
    """DMP's J_initial on stage2_train with the matching ground truth (and, given `body` and
    `vertex_idx`, l_vi's ground-truth vertices, posed once as MocapSource does)."""

    def __init__(self, cache_dir, data_dir, seed: int, body=None, vertex_idx: torch.Tensor | None = None):
        self.cache = DmpCache(cache_dir, "stage2_train")
        ds = SampleDataset(data_dir, joints=14, augment=None, occlusion=True, seed=seed)
        idx = np.asarray(self.cache.arrays["index"])
        items = [ds[int(i)] for i in idx]
        self.gt = {"joints": torch.stack([it["joints3d"] for it in items]),
                   "rotmats": torch.stack([_camera_rotmats(it) for it in items]),
                   "shape": torch.stack([it["shape"] for it in items]).float()}
        if body is not None and vertex_idx is not None and len(vertex_idx):
            dev = body.faces.device
            with torch.no_grad():
                self.gt["vertices"] = torch.cat([
                    fast_pose_joints(body, r.to(dev), s.to(dev), vertex_idx)[1].cpu()
                    for r, s in zip(self.gt["rotmats"].split(1024), self.gt["shape"].split(1024))])
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
    """eq. 3 on every row: l_refine (J_refine), l_theta, l_beta, l_ji (the posed LSP joints) and
    l_vi (the `vertex_idx` vertices), all L1 in metres (l_theta on rotation-matrix entries).

    net_out: j_refine (B, 14, 3), rotmats (B, J, 3, 3), shape (B, S); target: joints (B, 14, 3),
    rotmats, shape, and optionally vertices (B, N, 3) on `vertex_idx` (mid-hip-relative;
    computed here without gradient when absent). -> the weighted terms and their "total"."""
    terms = {"refine": sec.w_refine * (net_out["j_refine"] - target["joints"]).abs().mean(),
             "theta": sec.w_theta * (net_out["rotmats"] - target["rotmats"]).abs().mean(),
             "beta": sec.w_beta * (net_out["shape"] - target["shape"]).abs().mean()}
    use_v = sec.w_vertices > 0 and len(vertex_idx) > 0
    # rest_grad off: the shape learns through the bone heads; the rest orientations' own
    # gradient cost a quarter of the FK's backward for no measurable gain (docs/experiments.md).
    joints, verts = fast_pose_joints(body, net_out["rotmats"], net_out["shape"], vertex_idx if use_v else None,
                                     rest_grad=False)
    terms["joints"] = sec.w_joints * (joints - target["joints"]).abs().mean()
    if use_v:
        gt_verts = target.get("vertices")
        if gt_verts is None:
            with torch.no_grad():
                gt_verts = fast_pose_joints(body, target["rotmats"], target["shape"], vertex_idx)[1]
        terms["vertices"] = sec.w_vertices * (verts - gt_verts).abs().mean()
    else:
        terms["vertices"] = joints.new_zeros(())
    terms["total"] = sum(terms.values())
    return terms


def gik_inputs(j_refine: torch.Tensor, joints: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """GIK-Net's training input: J_refine (B, 14, 3), detached (see IKNet.forward), except on the
    rows `clean` (B,) bool, which get the ground-truth joints (B, 14, 3) themselves, so GIK-Net
    also learns the clean mapping it is scored on (complete ground-truth joints fed straight in)."""
    return torch.where(clean[:, None, None], joints, j_refine.detach())


def train_step(net: "IKNet", opt, batch: dict, body, sec, vertex_idx: torch.Tensor, clean: torch.Tensor,
               check=None) -> dict:
    """One optimiser step of train_ik on `batch` (input (B, 14, 3) augmented joints, observed
    (B, 14), and the targets of ik_losses); `clean` (B,) bool: rows fed to GIK-Net as the ground
    truth (gik_inputs); `check(loss)` runs before the backward. -> ik_losses' terms."""
    j_refine = net.refine(batch["input"], batch["observed"])
    out = {"j_refine": j_refine, **net.gik(gik_inputs(j_refine, batch["joints"], clean))}
    terms = ik_losses(out, batch, body, sec, vertex_idx)
    if check is not None:
        check(terms["total"])
    opt.zero_grad()
    terms["total"].backward()
    opt.step()
    return terms


def lr_at(sec, step: int, total: int) -> float:
    """The learning rate at global `step` of `total`: constant, or cosine-annealed to 1 % of
    `lr` (a function of the step, so a run resumed from a checkpoint follows the same schedule)."""
    if sec.lr_schedule == "constant":
        return sec.lr
    return sec.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))


def heldout_poses(mocap_dir, body, n: int, seed: int, zero: float = 0.3) -> dict:
    """The training curve's held-out poses: the LAST `n` rows of the mocap val split (evaluate's
    heldout_mocap scores the first 1,000), camera frame, with `zero` of the joints zeroed
    (seeded). -> {"joints" (n, 14, 3), "observed" (n, 14) bool}."""
    val = open_mocap(mocap_dir, "val")
    n = min(n, len(val))
    gt = to_camera_frame(val.batch(np.arange(len(val) - n, len(val))), seed + 7, body.up_axis)["joints"]
    observed = torch.rand(gt.shape[:2], generator=torch.Generator().manual_seed(seed + 7)) >= zero
    return {"joints": gt, "observed": observed}


def heldout_errors(net: "IKNet", body, held: dict, device) -> dict:
    """mm, mid-hip-aligned MPJPE on held-out poses: GIK-Net's mesh joints fed the complete
    ground-truth joints (gik_gt), and J_refine of the zeroed ones (refine_zeroed)."""
    was = net.training
    net.eval()
    with torch.no_grad():
        gt, obs = held["joints"].to(device), held["observed"].to(device)
        o = net.gik(gt)
        joints, _ = fast_pose_joints(body, o["rotmats"], o["shape"])
        refine = net.refine(gt * obs[..., None], obs)
        out = {"val_gik_gt_mpjpe": float(M.mpjpe(joints.cpu(), gt.cpu()).mean()),
               "val_refine_zeroed_mpjpe": float(M.mpjpe(refine.cpu(), gt.cpu()).mean())}
    net.train(was)
    return out


def run_train_ik(rp, mocap_dir: Path, dmp_cache_dir: Path, data_dir: Path, body_dir: Path, out_dir: Path,
                 ckpt_root: Path, log=print) -> None:
    sec = rp.section
    device = pick_device(rp.run.device)
    body = load_body_model(body_dir).to(device)
    vertex_idx = torch.arange(0, body.num_vertices, max(1, body.num_vertices // sec.vertex_subset), device=device)
    aug = JointAugment.from_params(sec)
    n_dmp = int(round(sec.batch_size * sec.dmp_fraction))
    n_mocap = sec.batch_size - n_dmp
    # Mocap rows whose GIK-Net input is the clean ground truth rather than J_refine.
    n_clean = int(round(n_mocap * sec.gik_clean_fraction))
    l_vi_idx = vertex_idx if sec.w_vertices > 0 else None
    dmp = DmpSource(dmp_cache_dir, data_dir, rp.run.seed, body, l_vi_idx) if n_dmp else None
    gt_vertices = mocap_vertices(mocap_dir, body, l_vi_idx)
    held = heldout_poses(mocap_dir, body, sec.val_poses, rp.run.seed) if sec.val_poses else None
    total = sec.epochs * sec.steps_per_epoch
    with atomic_dir(out_dir) as tmp:
        for seed in sec.seeds:
            seed_everything(seed)
            mocap = MocapSource(mocap_dir, body, seed, gt_vertices)
            net = IKNet(body.num_joints, body.mean_shape()).to(device)
            # JointRefineNet converges slower than GIK-Net at one rate (default profile, 600 steps:
            # J_refine 95 mm at lr 1e-3, 77 mm at 3e-3; GIK-Net 59 mm at 1e-3, 67 mm at 3e-3), so
            # each network has its own: the refiner's is `refine_lr` x lr.
            opt = torch.optim.Adam([{"params": net.refine.parameters(), "scale": sec.refine_lr},
                                    {"params": net.gik.parameters(), "scale": 1.0}], lr=sec.lr,
                                   fused=True)      # one fused kernel over all tensors: about 10 % of a CPU step saved
            key = hash_inputs({"section": to_dict(sec), "run": to_dict(rp.run), "seed": seed}, [mocap_dir, dmp_cache_dir, *code_files("train-ik")])
            ckpt = checkpoint_dir(ckpt_root, "train_ik", f"{rp.variant}-seed{seed}", key)
            log(f"train_ik {rp.variant} seed {seed}: {sec.epochs} epochs x {sec.steps_per_epoch} steps of "
                f"{n_mocap} mocap ({n_clean} fed to GIK-Net clean) + {n_dmp} DMP samples on {device}, "
                f"l_ji on every row, l_vi on {len(vertex_idx) if sec.w_vertices > 0 else 0} vertices; checkpoints in {ckpt}")
            clean = torch.zeros(sec.batch_size, dtype=torch.bool, device=device)
            clean[:n_clean] = True

            def run_epoch(epoch: int) -> dict:
                sums, t0 = {}, time.time()
                g = torch.Generator().manual_seed(seed * 100003 + epoch)
                for step in tqdm(range(sec.steps_per_epoch), desc=f"train_ik {rp.variant} s{seed} epoch {epoch + 1}",
                                 leave=False, mininterval=2):
                    for group in opt.param_groups:
                        group["lr"] = group["scale"] * lr_at(sec, epoch * sec.steps_per_epoch + step, total)
                    mb = mocap.batch(n_mocap, seed * 100003 + epoch * 1000 + step)
                    x, obs = aug(mb["joints"], g)
                    batch = {"input": x, "observed": obs, **mb}
                    if dmp is not None:
                        db = dmp.batch(n_dmp)
                        batch = {k: torch.cat([batch[k], db[k]]) for k in batch if k in db}
                    batch = {k: v.to(device) for k, v in batch.items()}
                    terms = train_step(net, opt, batch, body, sec, vertex_idx, clean[: len(batch["input"])],
                                       check=lambda loss: check_finite(loss, epoch, step, ckpt))
                    for k, v in terms.items():
                        sums[k] = sums.get(k, 0.0) + v.item() / sec.steps_per_epoch
                seconds = time.time() - t0
                val = heldout_errors(net, body, held, device) if held is not None else {}
                return {**{f"loss_{k}": v for k, v in sums.items()}, **val, "lr": opt.param_groups[1]["lr"], "seconds": seconds}

            history = train_epochs(net, opt, sec.epochs, run_epoch, ckpt, tmp / f"seed{seed}.csv", log=log)
            blob = {"state_dict": net.cpu().state_dict(), "history": history,
                    "config": {"num_bones": body.num_joints, "shape_dim": len(body.shape_labels), "seed": seed,
                               "variant": rp.variant}}
            torch.save(blob, tmp / f"seed{seed}.pt")
            net.to(device)
    log(f"wrote {out_dir}")
