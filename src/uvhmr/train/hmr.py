"""train_hmr: the HMR-style baseline (Kanazawa et al. 2018): the same backbone and data as DMP,
regressing the body model's pose (6D per bone, the root in the camera frame), shape and the
weak-perspective camera directly from the global image feature, posed through the body model.
"""
from __future__ import annotations

import time
from pathlib import Path

import roma
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from uvhmr.data.dataset import Augment, SampleDataset
from uvhmr.io import save_with
from uvhmr.models.encoders import Encoder, check_required
from uvhmr.models.ik import rot6d_to_matrix
from uvhmr.train.checkpoint import checkpoint_dir, hash_inputs
from uvhmr.train.trainer import (ModelFileError, check_finite, forward_in, load_model_file, pick_device, seed_everything,
                                 train_epochs, training_precision)
from uvhmr.uv.gt import root_of


class HMRNet(nn.Module):
    """(B, 3, H, W) RGB in [0, 1] -> rotmats (B, J, 3, 3) (joint 0: root in the camera frame),
    shape (B, S) (offset from mean_shape), camera (B, 3)."""

    def __init__(self, backbone: str, num_bones: int, mean_shape: torch.Tensor, pretrained=None):
        super().__init__()
        self.encoder = Encoder(backbone, pretrained)
        self.num_bones = num_bones
        self.register_buffer("mean_shape", mean_shape.clone().float())
        n_out = num_bones * 6 + len(mean_shape) + 3
        self.head = nn.Sequential(nn.Linear(self.encoder.channels[4], 1024), nn.ReLU(inplace=True), nn.Dropout(0.2),
                                  nn.Linear(1024, n_out))
        nn.init.zeros_(self.head[-1].weight)
        with torch.no_grad():
            bias = torch.zeros(n_out)
            bias[: 6 * num_bones] = torch.tensor([1.0, 0, 0, 0, 1, 0]).repeat(num_bones)
            bias[-3] = 0.9
            self.head[-1].bias.copy_(bias)

    def forward(self, image):
        f = self.encoder(image)[4].mean((2, 3))
        y = self.head(f)
        b, nb = y.shape[0], self.num_bones
        return {"rotmats": rot6d_to_matrix(y[:, : 6 * nb].reshape(b, nb, 6)),
                "shape": self.mean_shape[None] + y[:, 6 * nb:-3], "camera": y[:, -3:]}


def camera_frame_pose(batch: dict) -> torch.Tensor:
    """The sample's pose with the root rotation expressed in the camera frame: (B, J, 3, 3)."""
    rot = roma.rotvec_to_rotmat(batch["pose"])
    rot = rot.clone()
    rot[:, 0] = batch["R"] @ rot[:, 0]
    return rot


def posed_joints(body, rotmats: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """(B, J, 3, 3), (B, S) -> (B, 14, 3) LSP joints, camera frame, root-relative."""
    out = body(roma.rotmat_to_rotvec(rotmats), shape)
    return out.lsp14 - root_of(out.lsp14)


def load_hmr(path, body, device="cpu"):
    """An HMR model file (weights_only) -> (eval-mode HMRNet, its config); ValueError naming a file
    of another kind or architecture, or one trained for another body model."""
    net, cfg = load_model_file(path, "HMR", lambda cfg: HMRNet(cfg["backbone"], cfg["num_bones"], torch.zeros(cfg["shape_dim"])),
                               device)
    if (cfg["num_bones"], cfg["shape_dim"]) != (body.num_joints, len(body.shape_labels)):
        raise ModelFileError(f"{path}: an HMR model for a body model with {cfg['num_bones']} joints and {cfg['shape_dim']} "
                         f"shape parameters, not this one ({body.num_joints}, {len(body.shape_labels)})")
    return net, cfg


def run_train_hmr(rp, data_dir: Path, body_dir: Path, out: Path, ckpt_root: Path, log=print) -> None:
    from uvhmr.body.model import load_body_model
    sec = rp.section
    check_required("train_hmr", sec.backbone, sec.pretrained, sec.require_pretrained)
    device = pick_device(rp.run.device)
    precision = training_precision(device, rp.run.precision)
    seed_everything(rp.run.seed)
    body = load_body_model(body_dir).to(device)
    ds = SampleDataset(data_dir, joints=14, augment=Augment(), occlusion=True, seed=rp.run.seed)
    net = HMRNet(sec.backbone, body.num_joints, body.mean_shape(), sec.pretrained).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=sec.lr)
    from uvhmr.config import to_dict
    ckpt = checkpoint_dir(ckpt_root, "train_hmr", None, hash_inputs({"section": to_dict(sec), "run": to_dict(rp.run)}, [data_dir]))
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
