"""train_dmp: train one DMP variant on the dmp_train split; and the J_initial it implies.

J_initial (paper §3.2) is the mean of the predicted M_j over each A_uv part's observed pixels
(weighted by the part head's probabilities, see `j_initial`).
The paper finds a pixel's part through its predicted UV (warp into UV, then A_uv); here the part
comes from DMP's part head (DensePose's "I"), trained on the same A_uv labels, because at the
small CPU profiles the UV regression puts most pixels into the wrong part (DMP-14 on the default
profile, 8 epochs: 21 % of body pixels in the right part through UV). Both routes are logged:
`val_j_initial_mpjpe_mm` (part head, what the later stages use) and `val_j_initial_uv_mpjpe_mm`
(the paper's route), each on a held-out slice of dmp_train next to the mean pose's, the quality
gate's measure. The UV warp of the maps and local features (UVI's input) is the paper's.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from uvhmr.body.model import load_body_model
from uvhmr.config import to_dict
from uvhmr.data.dataset import Augment, SampleDataset
from uvhmr.device import forward_in, pick_device, training_precision
from uvhmr.evaluate.metrics import depth_correlation, mpjpe
from uvhmr.io import save_with
from uvhmr.losses import dmp_losses
from uvhmr.models.dmp import (DMPNet, aggregate_joints, as_lsp, facing_yaw, fill_missing_with_root, j_initial,
                              j_initial_uv, joint_weights, with_heatmap_xy,
                              warp_to_uv, yaw_to_bin)
from uvhmr.models.encoders import check_required
from uvhmr.train.checkpoint import checkpoint_dir, code_files, hash_inputs
from uvhmr.train.trainer import check_finite, seed_everything, train_epochs
from uvhmr.uv.assets import load_uv_assets


def targets(batch: dict, yaw_bins: int = 0, k: int = 14) -> dict:
    """The dataset's sample dict -> dmp_losses' target names."""
    t = {"mask": batch["mask"], "uv": batch["iuv"][:, 1:], "parts": batch["parts"], "mj": batch["M_j"], "ml": batch["M_l"],
         "md": batch["M_d"], "camera": batch["cam_wp"], "joints": batch["joints3d" if k == 14 else "joints3d_24"]}
    # 2-D joints in normalised image coordinates (2 x / S - 1), for a heatmap head
    t["joints2d"] = 2 * batch["joints2d" if k == 14 else "joints2d_24"] / batch["image"].shape[-1] - 1
    if yaw_bins:
        t["yaw"] = facing_yaw(batch["joints3d"])
        t["yaw_bin"] = yaw_to_bin(t["yaw"], yaw_bins)
    return t


def _at(x: torch.Tensor, size) -> torch.Tensor:
    """A ground-truth map (B, C, H, W) sampled nearest at the network's output size (labels and
    surface points stay exact values)."""
    return x if x.shape[-2:] == tuple(size) else torch.nn.functional.interpolate(x, size=size, mode="nearest")


def decomposed_j_initial(out: dict, b: dict, k: int) -> dict:
    """J_initial (B, k, 3) with ground truth substituted for each piece in turn, to tell where its
    error comes from: as used; gt_mask (true mask; predicted parts and M_j); gt_seg (true mask and
    parts; predicted M_j); gt_mj (predicted mask and parts; true M_j); floor (all true: joints whose
    parts are all hidden sit at the root). Missing joints are at the root, as scored. With
    `aggregate: global` "as used" is the global joints (`j_initial`); the others stay M_j's."""
    size = out["mj"].shape[-2:]
    body_p = (torch.sigmoid(out["mask"]) > 0.5).to(out["mj"].dtype)
    body_t = _at(b["mask"], size)
    top_p = torch.nn.functional.one_hot(out["parts"].argmax(1), k).permute(0, 3, 1, 2).to(body_p.dtype)
    labels = _at(b["parts"][:, None].float(), size)[:, 0].long()
    top_t = torch.nn.functional.one_hot(labels.clamp(min=0), k).permute(0, 3, 1, 2).to(body_p.dtype) * (labels >= 0)[:, None]
    mj_p, mj_t = out["mj"], _at(b["M_j"], size)
    cases = {"as_used": (mj_p, body_p, joint_weights(out, body_p), top_p), "gt_mask": (mj_p, body_t, joint_weights(out, body_t), top_p),
             "gt_seg": (mj_p, body_t, top_t, top_t), "gt_mj": (mj_t, body_p, joint_weights(out, body_p), top_p),
             "floor": (mj_t, body_t, top_t, top_t)}
    joints = {name: aggregate_joints(*c) for name, c in cases.items()}
    # With a heatmap head, x, y come from it wherever M_j is the predicted one (as in `j_initial`).
    cols = {name: fill_missing_with_root(with_heatmap_xy(j, out) if name in ("as_used", "gt_mask", "gt_seg") else j, obs)
            for name, (j, obs) in joints.items()}
    if "j_global" in out:
        cols["as_used"] = out["j_global"].float()
    return cols


def evaluate_j_initial(net, loader, labels, k, device) -> dict:
    """-> the validation columns of the training CSV over the loader (mm, LSP joints, missing
    joints at the root): J_initial through the part head (`val_j_initial_mpjpe_mm`, what later
    stages use) and through the paper's UV route; its decomposition (`decomposed_j_initial`);
    `val_depth_corr`; with a yaw head, the yaw's accuracy within 45 degrees and J_initial with the
    decoder given the true yaw (`val_j_initial_gt_yaw_mm`: what a perfect yaw head would give); with
    global joints, their MPJPE on their own (`val_global_joints_mm`)."""
    cols = {"val_j_initial_mpjpe_mm": [], "val_j_initial_uv_mpjpe_mm": [], "val_j_initial_gt_mask_mm": [],
            "val_j_initial_gt_seg_mm": [], "val_j_initial_gt_mj_mm": [], "val_j_initial_floor_mm": []}
    if net.yaw_bins:
        cols.update(val_yaw_within_45deg=[], val_j_initial_gt_yaw_mm=[])
    if net.global_joints:
        cols.update(val_global_joints_mm=[])
    preds, truths = [], []
    net.eval()
    with torch.no_grad():
        for b in loader:
            b = {kk: v.to(device) if torch.is_tensor(v) else v for kk, v in b.items()}
            gt = b["joints3d"]
            out = net.infer(b["image"])
            parts = decomposed_j_initial(out, b, k)
            for name, j in parts.items():
                key = "val_j_initial_mpjpe_mm" if name == "as_used" else f"val_j_initial_{name}_mm"
                cols[key].append(mpjpe(*as_lsp(j, gt)).cpu())
            if net.global_joints:     # the global estimate alone, every joint (none is unobserved)
                cols["val_global_joints_mm"].append(mpjpe(*as_lsp(out["gj"].float(), gt)).cpu())
            preds.append(as_lsp(parts["as_used"], gt)[0].cpu())
            truths.append(as_lsp(parts["as_used"], gt)[1].cpu())
            j, obs = j_initial_uv(warp_to_uv(out, net.uv_res), labels.to(device), k)
            cols["val_j_initial_uv_mpjpe_mm"].append(mpjpe(*as_lsp(fill_missing_with_root(j, obs), gt)).cpu())
            if net.yaw_bins:
                true_yaw = facing_yaw(gt)
                diff = torch.remainder(out["yaw"] - true_yaw + math.pi, 2 * math.pi) - math.pi
                cols["val_yaw_within_45deg"].append((diff.abs() < math.pi / 4).float().cpu())
                j, obs, _ = j_initial(net(b["image"], yaw=true_yaw), k, net.uv_res)
                cols["val_j_initial_gt_yaw_mm"].append(mpjpe(*as_lsp(fill_missing_with_root(j, obs), gt)).cpu())
    net.train()
    row = {name: float(torch.cat(v).mean()) if v else float("nan") for name, v in cols.items()}
    row["val_depth_corr"] = depth_correlation(torch.cat(preds), torch.cat(truths)) if preds else float("nan")
    return row


def param_groups(net: torch.nn.Module, encoder_lr: float) -> list[dict]:
    """Adam groups: the encoder at `encoder_lr` times the base rate (`scale`), the rest at 1x.
    Pretrained features want smaller steps than the new decoder and heads."""
    enc = [p for p in net.encoder.parameters() if p.requires_grad]      # not its frozen levels
    ids = {id(p) for p in net.encoder.parameters()}
    return [{"params": enc, "scale": encoder_lr},
            {"params": [p for p in net.parameters() if id(p) not in ids], "scale": 1.0}]


def lr_at(sec, epoch: int) -> float:
    """The learning rate of an epoch: constant, or cosine from `lr` to 0 over the epochs
    (a function of the epoch, so a resumed run follows the same schedule)."""
    if sec.lr_schedule == "constant":
        return sec.lr
    return sec.lr * 0.5 * (1 + math.cos(math.pi * epoch / sec.epochs))


def run_train_dmp(rp, data_dir: Path, uv_dir: Path, body_dir: Path, out: Path, ckpt_root: Path, log=print) -> None:
    sec = rp.section
    check_required("train_dmp", sec.backbone, sec.pretrained, sec.require_pretrained)
    device = pick_device(rp.run.device)
    precision = training_precision(device, rp.run.precision)
    seed_everything(rp.run.seed)
    k = sec.joints
    faces = load_body_model(body_dir).faces.numpy()

    train_ds = SampleDataset(data_dir, joints=k, augment=Augment(), occlusion=sec.synthetic_occlusion, seed=rp.run.seed)
    val_ds = SampleDataset(data_dir, joints=k, augment=None, occlusion=sec.synthetic_occlusion, seed=rp.run.seed)
    n = len(train_ds)
    n_val = int(round(n * sec.val_fraction))
    train_idx, val_idx = list(range(n - n_val)), list(range(n - n_val, n))
    val_loader = DataLoader(Subset(val_ds, val_idx), batch_size=sec.batch_size) if n_val else None
    # The mean pose of the training targets: the floor J_initial must beat.
    mean_pose = torch.stack([val_ds[i]["joints3d"] for i in train_idx[: min(len(train_idx), 500)]]).mean(0)
    mean_mpjpe = float(mpjpe(mean_pose[None].expand(len(val_idx), -1, -1)[:, :14],
                             torch.stack([val_ds[i]["joints3d"] for i in val_idx])).mean()) if n_val else float("nan")

    net = DMPNet(sec.backbone, sec.out_stride, pretrained=sec.pretrained, parts=k, yaw_bins=sec.yaw_bins,
                 yaw_depth=sec.yaw_depth, aggregate=sec.aggregate, joints_xy=sec.joints_xy, global_joints=sec.global_joints, global_grid=sec.global_grid,
                 flip_test=sec.flip_test).to(device)
    net.encoder.freeze(sec.freeze_levels)
    labels = load_uv_assets(uv_dir, faces).auv(k, net.uv_res)
    opt = torch.optim.Adam(param_groups(net, sec.encoder_lr), lr=sec.lr)
    key = hash_inputs({"section": to_dict(sec), "run": to_dict(rp.run)}, [data_dir, uv_dir, *code_files("train-dmp")])
    ckpt = checkpoint_dir(ckpt_root, "train_dmp", rp.variant, key)
    log(f"train_dmp {rp.variant}: {len(train_idx)} train / {len(val_idx)} val images of {train_ds.size} px, "
        f"{sec.backbone}, {sec.epochs} epochs on {device} ({precision}); checkpoints in {ckpt}")

    def run_epoch(epoch: int) -> dict:
        train_ds.set_epoch(epoch)
        for group in opt.param_groups:
            group["lr"] = lr_at(sec, epoch) * group["scale"]
        g = torch.Generator().manual_seed(rp.run.seed * 1000 + epoch)
        loader = DataLoader(Subset(train_ds, train_idx), batch_size=sec.batch_size, shuffle=True, generator=g, drop_last=False)
        sums, count, t0 = {}, 0, time.time()
        bar = tqdm(loader, desc=f"train_dmp {rp.variant} epoch {epoch + 1}/{sec.epochs}", leave=False, mininterval=2)
        for step, b in enumerate(bar):
            b = {kk: v.to(device) if torch.is_tensor(v) else v for kk, v in b.items()}
            t = targets(b, sec.yaw_bins, k)
            yaw_in = None
            if sec.yaw_bins:     # teacher forcing: the decoder learns to use a (nearly) right yaw
                yaw_in = t["yaw"] + torch.randn_like(t["yaw"]) * math.radians(sec.yaw_jitter)
            terms = dmp_losses(forward_in(precision, device, net, b["image"], yaw_in), t, sec)
            check_finite(terms["total"], epoch, step, ckpt)
            opt.zero_grad()
            terms["total"].backward()
            opt.step()
            bs = b["image"].shape[0]
            count += bs
            for kk, v in terms.items():
                sums[kk] = sums.get(kk, 0.0) + v.item() * bs
            bar.set_postfix(loss=f"{sums['total'] / count:.4f}")
        secs = time.time() - t0
        row = {f"loss_{kk}": v / count for kk, v in sums.items()}
        row.update(images_per_s=count / secs, seconds=secs)
        if val_loader is not None:
            row.update(evaluate_j_initial(net, val_loader, labels, k, device))
            row["val_mean_pose_mpjpe_mm"] = mean_mpjpe
            row["val_ratio_to_mean_pose"] = row["val_j_initial_mpjpe_mm"] / mean_mpjpe
        return row

    history = train_epochs(net, opt, sec.epochs, run_epoch, ckpt, out.with_suffix(".csv"), log=log)
    blob = {"state_dict": net.cpu().state_dict(),
            "config": {"backbone": sec.backbone, "out_stride": sec.out_stride, "joints": k, "yaw_bins": sec.yaw_bins, "yaw_depth": sec.yaw_depth, "aggregate": sec.aggregate, "joints_xy": sec.joints_xy, "global_joints": sec.global_joints, "global_grid": sec.global_grid, "flip_test": sec.flip_test,
                       "uv_res": net.uv_res, "image_size": train_ds.size, "variant": rp.variant, "weights": net.encoder.provenance},
            "history": history}
    save_with(out, lambda p: torch.save(blob, p))
    log(f"wrote {out}")

