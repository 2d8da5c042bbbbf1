"""train_uvi: the UV inpainting module on the frozen DMP's and IK's cached outputs (paper §3.3-3.4);
the network, its input and the inference that turns its UV maps into the final joints and mesh
are models/uvi.py.

Inputs at the DMP cache's UV resolution, 64x64 (zeroed when a source is switched off, for uvi14_noik / uvi14_nodmp; DMP's camera
is kept in both):
  DMP: warped local features (C), warped M_j, M_l, M_d (9), observed texels (1);
  IK:  UV_l of GIK-Net's posed mesh (3), UV_j of J_refine (3), UV_d = UV_l - UV_j (3).
Targets at OUT_RES, 128x128: UV_l, UV_j, UV_d of the ground-truth body; LSP-14 joints 3D and 2D.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import roma
import torch
from tqdm import tqdm

from uvhmr.body.model import load_body_model
from uvhmr.cache.dmp import DmpCache
from uvhmr.cache.ik import IkCache
from uvhmr.config import to_dict
from uvhmr.data.dataset import SampleDataset
from uvhmr.device import forward_in, pick_device, training_precision
from uvhmr.io import atomic_dir
from uvhmr.losses import consistency_loss, dismag_loss, weak_project, weighted_map_l1
from uvhmr.models.dmp import UV_RES
from uvhmr.models.uvi import OUT_RES, UVINet, infer, input_channels, uvi_inputs
from uvhmr.train.checkpoint import checkpoint_dir, code_files, hash_inputs
from uvhmr.train.trainer import check_finite, seed_everything, train_epochs
from uvhmr.uv.assets import load_uv_assets
from uvhmr.uv.gt import gt_uv_maps, root_of
from uvhmr.uv.parts import part_weight_map


def gt_for(items: list[dict], body, sampler, labels):
    """Ground truth of dataset samples: (UV_l, UV_j, UV_d) at 128, joints3d, 2D (normalised), iuv."""
    pose = torch.stack([it["pose"] for it in items]).float()
    rot = roma.rotvec_to_rotmat(pose)
    rot[:, 0] = torch.stack([it["R"] for it in items]).float() @ rot[:, 0]
    out = body(roma.rotmat_to_rotvec(rot), torch.stack([it["shape"] for it in items]).float())
    root = root_of(out.lsp14)
    maps = gt_uv_maps(sampler, labels, out.vertices, out.lsp14, root)
    size = items[0]["image"].shape[-1]
    j2d = torch.stack([it["joints2d"] for it in items]) * 2 / size - 1
    return {"maps": maps, "joints3d": torch.stack([it["joints3d"] for it in items]), "joints2d": j2d,
            "iuv": torch.stack([it["iuv"] for it in items]), "vertices": out.vertices - root}


def run_train_uvi(rp, dmp_dir: Path, ik_dir: Path, data_dir: Path, uv_dir: Path, body_dir: Path, out_dir: Path,
                  ckpt_root: Path, log=print) -> None:
    sec = rp.section
    device = pick_device(rp.run.device)
    precision = training_precision(device, rp.run.precision)
    body = load_body_model(body_dir).to(device)
    uv = load_uv_assets(uv_dir, body.faces.cpu().numpy())
    sampler, labels = uv.sampler(OUT_RES).to(device), uv.auv(14, OUT_RES).to(device)
    weights = part_weight_map(sampler, body.joint_names, body.vertex_part).to(device)
    on = labels >= 0
    dmp, ik = DmpCache(dmp_dir, "stage2_train"), IkCache(ik_dir, "stage2_train")
    ds = SampleDataset(data_dir, joints=14, augment=None, occlusion=True, seed=rp.run.seed)
    index = np.asarray(dmp.arrays["index"])
    n = len(dmp)
    in_ch = input_channels(int(dmp.meta["feature_channels"]))
    in_res = int(dmp.meta.get("uv_res", UV_RES))       # the DMP warp's resolution, as cached
    with atomic_dir(out_dir) as tmp:
        for seed in sec.seeds:
            seed_everything(seed)
            net = UVINet(in_ch, sec.width, in_res=in_res, out_res=OUT_RES).to(device)
            opt = torch.optim.Adam(net.parameters(), lr=sec.lr)
            key = hash_inputs({"section": to_dict(sec), "run": to_dict(rp.run), "seed": seed}, [dmp_dir, ik_dir, *code_files("train-uvi")])
            ckpt = checkpoint_dir(ckpt_root, "train_uvi", f"{rp.variant}-seed{seed}", key)
            log(f"train_uvi {rp.variant} seed {seed}: {n} samples, {sec.epochs} epochs on {device} ({precision}) "
                f"(DMP inputs {'on' if sec.use_dmp else 'off'}, IK inputs {'on' if sec.use_ik else 'off'}, "
                f"dismag weight {sec.dismag_weight}); checkpoints in {ckpt}")

            def run_epoch(epoch: int) -> dict:
                g = np.random.default_rng(seed * 1000 + epoch)
                order = g.permutation(n)
                sums, steps, t0 = {}, 0, time.time()
                for a in tqdm(range(0, n, sec.batch_size), desc=f"train_uvi {rp.variant} s{seed} epoch {epoch + 1}",
                              leave=False, mininterval=2):
                    rows = np.sort(order[a:a + sec.batch_size])
                    x, cam = uvi_inputs(dmp, ik, rows, sec.use_dmp, sec.use_ik)
                    with torch.no_grad():
                        gt = gt_for([ds[int(i)] for i in index[rows]], body, sampler, labels)
                    out = forward_in(precision, device, net, x.to(device), cam.to(device))
                    joints, _ = infer(out, sampler, labels)
                    terms = {"maps": sec.w_maps * sum(weighted_map_l1(out[k], t, weights)
                                                      for k, t in zip(("uv_l", "uv_j", "uv_d"), gt["maps"])),
                             "joints3d": sec.w_joints3d * (joints - gt["joints3d"]).abs().mean(),
                             "joints2d": sec.w_joints2d * (weak_project(joints, out["camera"]) - gt["joints2d"]).abs().mean(),
                             "dismag": sec.dismag_weight * dismag_loss(out["uv_d"], on),
                             "consistency": sec.w_consistency * consistency_loss(out["uv_l"], out["camera"], gt["iuv"])}
                    total = sum(terms.values())
                    check_finite(total, epoch, steps, ckpt)
                    opt.zero_grad()
                    total.backward()
                    opt.step()
                    steps += 1
                    for k, v in {**terms, "total": total}.items():
                        sums[k] = sums.get(k, 0.0) + v.item()
                return {**{f"loss_{k}": v / steps for k, v in sums.items()}, "seconds": time.time() - t0}

            history = train_epochs(net, opt, sec.epochs, run_epoch, ckpt, tmp / f"seed{seed}.csv", log=log)
            torch.save({"state_dict": net.cpu().state_dict(), "history": history,
                        "config": {"in_channels": in_ch, "width": sec.width, "in_res": in_res, "out_res": OUT_RES,
                                   "residual": net.residual, "seed": seed, "variant": rp.variant,
                                   "use_dmp": sec.use_dmp, "use_ik": sec.use_ik}}, tmp / f"seed{seed}.pt")
            net.to(device)
    log(f"wrote {out_dir}")
