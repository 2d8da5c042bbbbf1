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

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from uvhmr.body.joints import SMPL24_TO_LSP14
from uvhmr.config import to_dict
from uvhmr.data.dataset import Augment, SampleDataset
from uvhmr.evaluate.metrics import depth_correlation, mpjpe
from uvhmr.io import save_with
from uvhmr.losses import dmp_losses
from uvhmr.models.dmp import DMPNet, aggregate_joints, facing_yaw, yaw_to_bin
from uvhmr.models.encoders import check_required
from uvhmr.train.checkpoint import checkpoint_dir, hash_inputs
from uvhmr.train.trainer import check_finite, forward_in, pick_device, seed_everything, train_epochs, training_precision
from uvhmr.uv.assets import load_uv_assets
from uvhmr.uv.gt import joints_from_uv
from uvhmr.uv.texels import iuv_to_uv

UV_RES = 64     # the UV resolution of warped maps and features (UVI's input)


def targets(batch: dict, yaw_bins: int = 0) -> dict:
    """The dataset's sample dict -> dmp_losses' target names."""
    t = {"mask": batch["mask"], "uv": batch["iuv"][:, 1:], "parts": batch["parts"], "mj": batch["M_j"], "ml": batch["M_l"],
         "md": batch["M_d"], "camera": batch["cam_wp"]}
    if yaw_bins:
        t["yaw"] = facing_yaw(batch["joints3d"])
        t["yaw_bin"] = yaw_to_bin(t["yaw"], yaw_bins)
    return t


def predicted_iuv(out: dict) -> torch.Tensor:
    """DMPNet output -> (B, 3, h, w) IUV (mask > 0.5, u, v) at the network's output resolution."""
    m = (torch.sigmoid(out["mask"]) > 0.5).to(out["uv"].dtype)
    return torch.cat([m, out["uv"] * m], 1)


def warp_to_uv(out: dict, res: int = UV_RES) -> dict:
    """Warp DMP's maps and local features into UV through its own predicted IUV.
    -> uv_maps (B, 9, R, R): M_j, M_l, M_d warped; uv_feat (B, C, R, R); hits (B, R, R) int."""
    iuv = predicted_iuv(out)
    maps = torch.cat([out["mj"], out["ml"], out["md"]], 1)
    warped, count = iuv_to_uv(torch.cat([maps, out["features"]], 1), iuv, res)
    return {"uv_maps": warped[:, :9], "uv_feat": warped[:, 9:], "hits": count[:, 0]}


def j_initial(out: dict, k: int, res: int = UV_RES):
    """J_initial: M_j averaged over each part's predicted body pixels, each pixel weighted by the
    part head's probability of the part. A joint is observed when its part is the most likely one
    of at least one body pixel. Soft weights rather than the argmax part: a pixel the head cannot
    place (left or right forearm?) then counts half for each instead of all for a wrong one (DMP-14
    on the default profile: 290 mm instead of 312 mm on stage2_train, the same network).
    -> (J_initial (B, k, 3) root-relative metres, observed (B, k) bool, the UV warp dict)."""
    body = (torch.sigmoid(out["mask"]) > 0.5).to(out["mj"].dtype)                 # (B, 1, h, w)
    top = torch.nn.functional.one_hot(out["parts"].argmax(1), k).permute(0, 3, 1, 2).to(body.dtype)
    joints, observed = aggregate_joints(out["mj"], body, torch.softmax(out["parts"], 1), top)
    return joints, observed, warp_to_uv(out, res)


def j_initial_uv(warp: dict, labels: torch.Tensor, k: int):
    """The paper's route: M_j warped into UV by the predicted IUV, averaged over A_uv's observed
    texels. warp: `warp_to_uv`'s dict (as `j_initial` returns it); labels (R, R) A_uv ->
    (J_initial (B, k, 3), observed (B, k) bool)."""
    return joints_from_uv(warp["uv_maps"][:, :3], warp["hits"] > 0, labels, k)


def fill_missing_with_root(joints: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """docs/design.md, "Conventions": a J_initial joint with no observed texel is scored at the root (the origin)."""
    return joints * observed[..., None].to(joints.dtype)


def load_dmp(path: str | Path, device="cpu") -> tuple[DMPNet, dict]:
    """A trained DMP file (weights_only) -> (eval-mode network, its config)."""
    p = Path(path)
    try:
        blob = torch.load(p, map_location=device, weights_only=True)
        cfg = blob["config"]
        net = DMPNet(cfg["backbone"], cfg["out_stride"], parts=int(cfg["joints"]), yaw_bins=int(cfg.get("yaw_bins", 0)),
                     yaw_depth=bool(cfg.get("yaw_depth", False)))
        net.load_state_dict(blob["state_dict"])
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - a file of another kind or architecture
        raise ValueError(f"{p}: not a DMP model file of this uvhmr ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    return net.to(device).eval(), cfg


def as_lsp(joints: torch.Tensor, gt_lsp14: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Score 24-joint predictions on their LSP-14 subset (13 joints: the 24-set has no head top)."""
    if joints.shape[1] == 14:
        return joints, gt_lsp14
    idx = list(SMPL24_TO_LSP14[:13])
    return joints[:, idx], gt_lsp14[:, :13]


def _at(x: torch.Tensor, size) -> torch.Tensor:
    """A ground-truth map (B, C, H, W) sampled nearest at the network's output size (labels and
    surface points stay exact values)."""
    return x if x.shape[-2:] == tuple(size) else torch.nn.functional.interpolate(x, size=size, mode="nearest")


def decomposed_j_initial(out: dict, b: dict, k: int) -> dict:
    """J_initial (B, k, 3) with ground truth substituted for each piece in turn, to tell where its
    error comes from: as used; gt_mask (true mask; predicted parts and M_j); gt_seg (true mask and
    parts; predicted M_j); gt_mj (predicted mask and parts; true M_j); floor (all true: joints whose
    parts are all hidden sit at the root). Missing joints are at the root, as scored."""
    size = out["mj"].shape[-2:]
    body_p = (torch.sigmoid(out["mask"]) > 0.5).to(out["mj"].dtype)
    body_t = _at(b["mask"], size)
    soft_p = torch.softmax(out["parts"], 1)
    top_p = torch.nn.functional.one_hot(out["parts"].argmax(1), k).permute(0, 3, 1, 2).to(body_p.dtype)
    labels = _at(b["parts"][:, None].float(), size)[:, 0].long()
    top_t = torch.nn.functional.one_hot(labels.clamp(min=0), k).permute(0, 3, 1, 2).to(body_p.dtype) * (labels >= 0)[:, None]
    mj_p, mj_t = out["mj"], _at(b["M_j"], size)
    cases = {"as_used": (mj_p, body_p, soft_p, top_p), "gt_mask": (mj_p, body_t, soft_p, top_p),
             "gt_seg": (mj_p, body_t, top_t, top_t), "gt_mj": (mj_t, body_p, soft_p, top_p),
             "floor": (mj_t, body_t, top_t, top_t)}
    return {name: fill_missing_with_root(*aggregate_joints(*c)) for name, c in cases.items()}


def evaluate_j_initial(net, loader, labels, k, device) -> dict:
    """-> the validation columns of the training CSV over the loader (mm, LSP joints, missing
    joints at the root): J_initial through the part head (`val_j_initial_mpjpe_mm`, what later
    stages use) and through the paper's UV route; its decomposition (`decomposed_j_initial`);
    `val_depth_corr`; with a yaw head, the yaw's accuracy within 45 degrees and J_initial with the
    decoder given the true yaw (`val_j_initial_gt_yaw_mm`: what a perfect yaw head would give)."""
    cols = {"val_j_initial_mpjpe_mm": [], "val_j_initial_uv_mpjpe_mm": [], "val_j_initial_gt_mask_mm": [],
            "val_j_initial_gt_seg_mm": [], "val_j_initial_gt_mj_mm": [], "val_j_initial_floor_mm": []}
    if net.yaw_bins:
        cols.update(val_yaw_within_45deg=[], val_j_initial_gt_yaw_mm=[])
    preds, truths = [], []
    net.eval()
    with torch.no_grad():
        for b in loader:
            b = {kk: v.to(device) if torch.is_tensor(v) else v for kk, v in b.items()}
            gt = b["joints3d"]
            out = net(b["image"])
            parts = decomposed_j_initial(out, b, k)
            for name, j in parts.items():
                key = "val_j_initial_mpjpe_mm" if name == "as_used" else f"val_j_initial_{name}_mm"
                cols[key].append(mpjpe(*as_lsp(j, gt)).cpu())
            preds.append(as_lsp(parts["as_used"], gt)[0].cpu())
            truths.append(as_lsp(parts["as_used"], gt)[1].cpu())
            j, obs = j_initial_uv(warp_to_uv(out), labels.to(device), k)
            cols["val_j_initial_uv_mpjpe_mm"].append(mpjpe(*as_lsp(fill_missing_with_root(j, obs), gt)).cpu())
            if net.yaw_bins:
                true_yaw = facing_yaw(gt)
                diff = torch.remainder(out["yaw"] - true_yaw + math.pi, 2 * math.pi) - math.pi
                cols["val_yaw_within_45deg"].append((diff.abs() < math.pi / 4).float().cpu())
                j, obs, _ = j_initial(net(b["image"], yaw=true_yaw), k)
                cols["val_j_initial_gt_yaw_mm"].append(mpjpe(*as_lsp(fill_missing_with_root(j, obs), gt)).cpu())
    net.train()
    row = {name: float(torch.cat(v).mean()) if v else float("nan") for name, v in cols.items()}
    row["val_depth_corr"] = depth_correlation(torch.cat(preds), torch.cat(truths)) if preds else float("nan")
    return row


def param_groups(net: torch.nn.Module, encoder_lr: float) -> list[dict]:
    """Adam groups: the encoder at `encoder_lr` times the base rate (`scale`), the rest at 1x.
    Pretrained features want smaller steps than the new decoder and heads."""
    enc = [p for p in net.encoder.parameters()]
    ids = {id(p) for p in enc}
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
    from uvhmr.body.model import load_body_model
    faces = load_body_model(body_dir).faces.numpy()
    labels = load_uv_assets(uv_dir, faces).auv(k, UV_RES)

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
                 yaw_depth=sec.yaw_depth).to(device)
    opt = torch.optim.Adam(param_groups(net, sec.encoder_lr), lr=sec.lr)
    key = hash_inputs({"section": to_dict(sec), "run": to_dict(rp.run)}, [data_dir, uv_dir])
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
            t = targets(b, sec.yaw_bins)
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
            "config": {"backbone": sec.backbone, "out_stride": sec.out_stride, "joints": k, "yaw_bins": sec.yaw_bins, "yaw_depth": sec.yaw_depth,
                       "image_size": train_ds.size, "variant": rp.variant, "weights": net.encoder.provenance},
            "history": history}
    save_with(out, lambda p: torch.save(blob, p))
    log(f"wrote {out}")

