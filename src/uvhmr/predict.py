"""predict: images -> LSP-14 joints, mesh and weak-perspective camera, DMP -> IK -> UVI end to end
(paper Fig. 2), from the three trained model files.

Each stage's input is built by the function its cache rule or trainer uses, so a prediction is
what the dmp_cache + ik_cache + UVI evaluation path gives for the same image (float16 rounding of
the cached UV maps included, since UVI was trained on those):

  DMP  `cache.dmp.dmp_rows`: J_initial through the part head, maps and local features warped to UV;
  IK   `cache.ik.ik_rows`: J_refine, GIK-Net's posed mesh as UV_l and J_refine as UV_j (64x64);
  UVI  `models.uvi.stack_inputs` (its input, the variant's use_dmp / use_ik switches honoured) and
       `models.uvi.infer` (joints: UV_j's A_uv part means; mesh: UV_l at the vertex UVs, 128x128).

The camera that places the mesh in the image is then fitted, not regressed: every body pixel DMP
sees says where one surface point lies (its part's UVI joint plus DMP's offset M_d there), and the
weak perspective that maps those points onto their pixels best (robust least squares,
`fit_weak_perspective`) replaces UVI's regressed camera. On 100 stage2_train images the projected
UVI joints' PCK@0.1 went from 0.35 (UVI's camera) to 0.48 (docs/predict.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from uvhmr.body.model import load_body_model
from uvhmr.cache.dmp import dmp_rows
from uvhmr.cache.ik import first_seed_model, ik_rows
from uvhmr.models.dmp import load_dmp, pixel_grid, predicted_iuv
from uvhmr.models.ik import load_ik
from uvhmr.models.uvi import infer, input_channels, load_uvi, stack_inputs
from uvhmr.uv.assets import load_uv_assets

JOINTS = 14     # IK and UVI work on LSP-14: only a 14-part DMP can feed them
MIN_BODY_PIXELS = 20    # fewer body pixels than this: too few to fit a camera to, UVI's is kept


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
    maps them to normalised image coordinates 2 x / S - 1 = s (X_xy + t), fitted to DMP's body
    pixels (`dense_camera`; UVI's where too few). One forward pass for the whole batch (split
    large batches yourself); results on `models.device`."""
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
        dense = m.dmp.infer(x)
        d = dmp_rows(m.dmp, x, JOINTS, out=dense)
        i = ik_rows(m.ik, m.body, m.sampler_in, m.labels_in, d["j_initial"], d["observed"])
        inputs, camera = stack_inputs(d, i, bool(cfg["use_dmp"]), bool(cfg["use_ik"]))
        out = m.uvi(inputs, camera)
        joints, vertices = infer(out, m.sampler_out, m.labels_out)
        camera = dense_camera(dense, joints, out["camera"])
    return joints, vertices, camera


def dense_camera(dense: dict, joints: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """The weak perspective (B, 3) that puts `joints` (B, 14, 3) metres, root-relative, where DMP's
    dense output `dense` (DMPNet.infer at h x w) saw the body: each pixel DMP calls body
    (mask > 0.5) is matched with the surface point its most likely part's joint plus DMP's M_d
    (surface minus joint, metres) there gives. Images with fewer than MIN_BODY_PIXELS body pixels
    keep `fallback` (UVI's camera)."""
    b, _, h, w = dense["mask"].shape
    body = predicted_iuv(dense)[:, 0].flatten(1).float()                                  # (B, h*w)
    part = dense["parts"].argmax(1).flatten(1)                                            # (B, h*w)
    points = torch.gather(joints.float(), 1, part[..., None].expand(-1, -1, 3))
    points = (points + dense["md"].float().flatten(2).transpose(1, 2))[..., :2]           # (B, h*w, 2)
    pixels = pixel_grid(h, w, body.device).flatten(1).T[None].expand(b, -1, -1)          # (B, h*w, 2)
    return fit_weak_perspective(points, pixels, body, fallback, min_weight=MIN_BODY_PIXELS)


def fit_weak_perspective(points: torch.Tensor, pixels: torch.Tensor, weights: torch.Tensor,
                         fallback: torch.Tensor, min_weight: float = 1.0, iters: int = 5) -> torch.Tensor:
    """The weak perspective (s, tx, ty) with pixels ~ s (points + t), by least squares.
    points (B, N, 2) metres (x, y of root-relative points); pixels (B, N, 2) normalised image
    coordinates (2 q / S - 1); weights (B, N) >= 0 -> (B, 3). The squares are re-weighted `iters`
    times with Huber weights at 1.5x the median residual, so pixels DMP put in the wrong part pull
    less. Rows whose weights sum below `min_weight`, or whose scale comes out non-positive, get
    their `fallback` (B, 3) row."""
    eps = 1e-9
    weights = weights.float()
    w, on = weights, weights > 0
    for _ in range(iters):
        total = w.sum(1, keepdim=True).clamp(min=eps)                                      # (B, 1)
        mp = (w[..., None] * points).sum(1) / total                                       # (B, 2)
        mq = (w[..., None] * pixels).sum(1) / total
        pc, qc = points - mp[:, None], pixels - mq[:, None]
        s = (w[..., None] * pc * qc).sum((1, 2)) / (w[..., None] * pc * pc).sum((1, 2)).clamp(min=eps)
        shift = mq - s[:, None] * mp                                                      # s t
        r = (s[:, None, None] * points + shift[:, None] - pixels).norm(dim=-1)            # (B, N)
        delta = 1.5 * r.masked_fill(~on, float("nan")).nanmedian(1).values.nan_to_num(1.0).clamp(min=1e-3)
        w = weights * torch.where(r <= delta[:, None], torch.ones_like(r), delta[:, None] / r.clamp(min=eps))
    cam = torch.cat([s[:, None], shift / s[:, None].clamp(min=eps)], 1)
    ok = (weights.sum(1) >= min_weight) & (s > 0)
    return torch.where(ok[:, None], cam, fallback.to(cam.dtype))
