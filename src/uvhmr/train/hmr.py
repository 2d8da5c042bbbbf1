"""train_hmr: the HMR-style baseline (models/hmr.py) on the same data as DMP: L1 on the posed
joints, the pose (rotation matrices, the root in the camera frame), the shape and the camera.
"""
from __future__ import annotations

import time
from pathlib import Path

import roma
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from uvhmr.body.model import load_body_model
from uvhmr.config import to_dict
from uvhmr.data.dataset import Augment, SampleDataset
from uvhmr.device import forward_in, pick_device, training_precision
from uvhmr.io import save_with
from uvhmr.models.encoders import check_required
from uvhmr.models.hmr import HMRNet, posed_joints
from uvhmr.train.checkpoint import checkpoint_dir, code_files, hash_inputs
from uvhmr.train.trainer import check_finite, seed_everything, train_epochs


def camera_frame_pose(batch: dict) -> torch.Tensor:
    """The sample's pose with the root rotation expressed in the camera frame: (B, J, 3, 3)."""
    rot = roma.rotvec_to_rotmat(batch["pose"])
    rot = rot.clone()
    rot[:, 0] = batch["R"] @ rot[:, 0]
    return rot


def run_train_hmr(rp, data_dir: Path, body_dir: Path, out: Path, ckpt_root: Path, log=print) -> None:
    sec = rp.section
    check_required("train_hmr", sec.backbone, sec.pretrained, sec.require_pretrained)
    device = pick_device(rp.run.device)
    precision = training_precision(device, rp.run.precision)
    seed_everything(rp.run.seed)
    body = load_body_model(body_dir).to(device)
    ds = SampleDataset(data_dir, joints=14, augment=Augment(), occlusion=True, seed=rp.run.seed)
    net = HMRNet(sec.backbone, body.num_joints, body.mean_shape(), sec.pretrained).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=sec.lr)
    ckpt = checkpoint_dir(ckpt_root, "train_hmr", None, hash_inputs({"section": to_dict(sec), "run": to_dict(rp.run)}, [data_dir, *code_files("train-hmr")]))
    log(f"train_hmr: {len(ds)} images, {sec.backbone}, {sec.epochs} epochs on {device} ({precision}); checkpoints in {ckpt}")

    def run_epoch(epoch: int) -> dict:
        ds.set_epoch(epoch)
        g = torch.Generator().manual_seed(rp.run.seed * 1000 + epoch)
        loader = DataLoader(ds, batch_size=sec.batch_size, shuffle=True, generator=g)
        sums, count, t0 = {}, 0, time.time()
        bar = tqdm(loader, desc=f"train_hmr epoch {epoch + 1}/{sec.epochs}", leave=False, mininterval=2)
        for step, b in enumerate(bar):
            b = {k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}
            p = forward_in(precision, device, net, b["image"])
            terms = {"joints": (posed_joints(body, p["rotmats"], p["shape"]) - b["joints3d"]).abs().mean(),
                     "pose": (p["rotmats"] - camera_frame_pose(b)).abs().mean(),
                     "shape": 0.1 * (p["shape"] - b["shape"]).abs().mean(),
                     "camera": (p["camera"] - b["cam_wp"]).abs().mean()}
            total = sum(terms.values())
            check_finite(total, epoch, step, ckpt)
            opt.zero_grad()
            total.backward()
            opt.step()
            n = b["image"].shape[0]
            count += n
            for k, v in {**terms, "total": total}.items():
                sums[k] = sums.get(k, 0.0) + v.item() * n
            bar.set_postfix(loss=f"{sums['total'] / count:.4f}")
        secs = time.time() - t0
        return {**{f"loss_{k}": v / count for k, v in sums.items()}, "images_per_s": count / secs, "seconds": secs}

    history = train_epochs(net, opt, sec.epochs, run_epoch, ckpt, out.with_suffix(".csv"), log=log)
    blob = {"state_dict": net.cpu().state_dict(), "history": history,
            "config": {"backbone": sec.backbone, "num_bones": body.num_joints, "shape_dim": len(body.shape_labels),
                       "weights": net.encoder.provenance}}
    save_with(out, lambda p: torch.save(blob, p))
    log(f"wrote {out}")
