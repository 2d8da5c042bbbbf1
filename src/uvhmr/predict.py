"""predict: images -> LSP-14 joints, mesh and weak-perspective camera, DMP -> IK -> UVI end to end
(paper Fig. 2), from the three trained model files.

Each stage's input is built by the function its cache rule or trainer uses, so a prediction is
what the dmp_cache + ik_cache + UVI evaluation path gives for the same image (float16 rounding of
the cached UV maps included, since UVI was trained on those):

  DMP  `cache.dmp.dmp_rows`: J_initial through the part head, maps and local features warped to UV;
  IK   `cache.ik.ik_rows`: J_refine, GIK-Net's posed mesh as UV_l and J_refine as UV_j (64x64);
  UVI  `models.uvi.stack_inputs` (its input, the variant's use_dmp / use_ik switches honoured) and
       `models.uvi.infer` (joints: UV_j's A_uv part means; mesh: UV_l at the vertex UVs, 128x128).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from uvhmr.body.model import load_body_model
from uvhmr.cache.dmp import dmp_rows
from uvhmr.cache.ik import first_seed_model, ik_rows
from uvhmr.models.dmp import load_dmp
from uvhmr.models.ik import load_ik
from uvhmr.models.uvi import infer, input_channels, load_uvi, stack_inputs
from uvhmr.uv.assets import load_uv_assets

JOINTS = 14     # IK and UVI work on LSP-14: only a 14-part DMP can feed them


@dataclass
class Models:
    """The three trained stages and the assets between them, on one device.
    samplers / labels: UVSampler and A_uv-14 labels (R, R) at DMP's uv_res (64 by default: DMP's
    warp, IK's maps, UVI's input) and at UVI's out_res (128 by default: UVI's output)."""
    dmp: torch.nn.Module
    ik: torch.nn.Module
    uvi: torch.nn.Module
    configs: dict            # "dmp", "ik", "uvi": each model file's config
    body: torch.nn.Module
    sampler_in: torch.nn.Module
    labels_in: torch.Tensor
    sampler_out: torch.nn.Module
    labels_out: torch.Tensor
    image_size: int
    device: torch.device


def _model_file(path: str | Path) -> Path:
    """A seed*.pt file, or a variant folder (its first seed, as ik_cache and evaluate use)."""
    p = Path(path)
    return first_seed_model(p) if p.is_dir() else p


def load_models(dmp_path: str | Path, ik_path: str | Path, uvi_path: str | Path, uv_dir: str | Path,
                body_dir: str | Path, device: str | torch.device = "cpu") -> Models:
    """results/<profile>/models/dmp/<variant>.pt, models/ik/<variant>[/seedN.pt],
    models/uvi/<variant>[/seedN.pt] (a folder: its first seed), the uv_assets folder and the
    body-model export -> Models in eval mode on `device`."""
    device = torch.device(device)
    dmp, dcfg = load_dmp(dmp_path, device)
    if int(dcfg["joints"]) != JOINTS:
        raise ValueError(f"{dmp_path}: a DMP with {dcfg['joints']} parts; IK and UVI need a {JOINTS}-part DMP (dmp14)")
    ik, icfg = load_ik(_model_file(ik_path), device)
    uvi, ucfg = load_uvi(_model_file(uvi_path), device)
    channels = input_channels(dmp.local[0].out_channels)
    if int(ucfg["in_channels"]) != channels:
        raise ValueError(f"{uvi_path}: UVI takes {ucfg['in_channels']} input channels, this DMP gives {channels}; "
                         "use the UVI trained on this DMP's cache")
    if uvi.in_res != dmp.uv_res:
        raise ValueError(f"{uvi_path}: UVI takes {uvi.in_res} px UV maps, this DMP warps to {dmp.uv_res} px; "
                         "use the UVI trained on this DMP's cache")
    body = load_body_model(body_dir).to(device)
    uv = load_uv_assets(uv_dir, body.faces.cpu().numpy())
    return Models(dmp, ik, uvi, {"dmp": dcfg, "ik": icfg, "uvi": ucfg}, body,
                  uv.sampler(dmp.uv_res).to(device), uv.auv(JOINTS, dmp.uv_res).to(device),
                  uv.sampler(uvi.out_res).to(device), uv.auv(JOINTS, uvi.out_res).to(device),
                  int(dcfg.get("image_size") or 0), device)


def predict(images: torch.Tensor, models: Models) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """images (B, 3, S, S) RGB in [0, 1], a person centred in a square crop (as the dataset's)
    -> (joints (B, 14, 3) LSP-14, vertices (B, V, 3), camera (B, 3) weak perspective (s, tx, ty));
    joints and vertices in metres, camera frame (x right, y down), mid-hip-relative; the camera
    maps them to normalised image coordinates 2 x / S - 1 = s (X_xy + t). One forward pass for
    the whole batch (split large batches yourself); results on `models.device`."""
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise ValueError(f"predict: images must be (B, 3, S, S), got {tuple(images.shape)}")
    m = models
    x = images.to(m.device, torch.float32)
    if m.image_size and x.shape[-1] != m.image_size:
        # DMP learned one crop size; the camera is in normalised coordinates, so resizing keeps it valid.
        x = F.interpolate(x, size=(m.image_size, m.image_size), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > m.image_size).clamp(0, 1)
    cfg = m.configs["uvi"]
    with torch.no_grad():
        d = dmp_rows(m.dmp, x, JOINTS)
        i = ik_rows(m.ik, m.body, m.sampler_in, m.labels_in, d["j_initial"], d["observed"])
        inputs, camera = stack_inputs(d, i, bool(cfg["use_dmp"]), bool(cfg["use_ik"]))
        out = m.uvi(inputs, camera)
        joints, vertices = infer(out, m.sampler_out, m.labels_out)
    return joints, vertices, out["camera"]
