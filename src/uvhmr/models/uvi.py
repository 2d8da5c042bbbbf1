"""UVI, the UV inpainting module (paper §3.3; docs/design.md, "Module homes"): a light UNet in UV space,
its input (`stack_inputs`, `uvi_inputs`), its model file (`load_uvi`) and the final joints and
mesh read from its output (`infer`).

(B, C_in, R_in, R_in) stacked UV-space inputs (R_in = DMP's warp resolution, 64) -> UV_l, UV_j,
UV_d (B, 3, R_out, R_out) each (R_out = 128), metres root-relative, and a camera refinement:
(B, 3) weak perspective (s, tx, ty) = DMP's camera + a predicted correction.

The maps are a correction to IK's (`residual`, the default): the UNet's zero-initialised head adds
to IK's UV_l, UV_j, UV_d (its input's last channels, upsampled by repetition), so UVI starts where
IK ends and learns what DMP's maps and features add. The paper does not say whether its UVI
predicts the maps outright; ours did, and after its CPU budget (about 125 steps) it was worse
than its own IK input, even fed ground truth (issue #23). Without IK's inputs (`uvi14_noik`) the
base is zero and the network predicts the maps outright.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from uvhmr.modelfile import load_model_file
from uvhmr.models.dmp import UV_RES
from uvhmr.uv.gt import joints_from_uv

OUT_RES = 128       # the default side of UVI's output maps (its targets' resolution)
IK_CHANNELS = 9     # the last channels of UVI's input: IK's UV_l, UV_j, UV_d (stack_inputs)
DMP_MAP_CHANNELS = 10   # after DMP's warped features: its warped M_j, M_l, M_d and the hit mask


def input_channels(feature_channels: int) -> int:
    """UVI's input width for a DMP with `feature_channels` local features, in `stack_inputs`' order:
    the warped features, DMP's maps and hit mask, IK's maps."""
    return feature_channels + DMP_MAP_CHANNELS + IK_CHANNELS


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(8, cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(8, cout), nn.ReLU(inplace=True))


class UVINet(nn.Module):
    """(B, in_channels, in_res, in_res) inputs, (B, 3) DMP camera -> dict of uv_l, uv_j, uv_d
    (B, 3, out_res, out_res) and camera (B, 3). out_res / in_res is a power of two (the layers
    past the input resolution); the model file's config records both. `residual`: the maps are
    IK's input maps plus the head's output (the module docstring)."""

    def __init__(self, in_channels: int, width: int = 32, depth: int = 3, in_res: int = UV_RES, out_res: int = OUT_RES,
                 residual: bool = True):
        super().__init__()
        out_scale = out_res // in_res
        if out_scale < 1 or out_scale * in_res != out_res or out_scale & (out_scale - 1):
            raise ValueError(f"UVI: out_res / in_res must be a power of two, got {out_res} / {in_res}")
        self.in_res, self.out_res = in_res, out_res
        ch = [width * 2 ** k for k in range(depth + 1)]           # 32, 64, 128, 256
        self.inc = block(in_channels, ch[0])
        self.down = nn.ModuleList([block(ch[k], ch[k + 1]) for k in range(depth)])
        self.up = nn.ModuleList([block(ch[k + 1] + ch[k], ch[k]) for k in reversed(range(depth))])
        # Past the input resolution: upsample x out_scale without a skip (64 in -> 128 out by default).
        self.final = nn.Sequential(*[block(ch[0], ch[0]) for _ in range(out_scale.bit_length() - 1)])
        self.out_scale = out_scale
        self.head = nn.Conv2d(ch[0], 9, 1)
        self.residual = residual
        if residual:
            # Zero at the start: the output is IK's maps exactly, and the first steps only add.
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.camera = nn.Sequential(nn.Linear(ch[-1] + 3, 128), nn.ReLU(inplace=True), nn.Linear(128, 3))
        nn.init.zeros_(self.camera[-1].weight)
        nn.init.zeros_(self.camera[-1].bias)

    def forward(self, x: torch.Tensor, camera: torch.Tensor) -> dict:
        skips = [self.inc(x)]
        for d in self.down:
            skips.append(d(F.max_pool2d(skips[-1], 2)))
        h = skips[-1]
        cam = camera + self.camera(torch.cat([h.mean((2, 3)), camera], 1))
        for u, s in zip(self.up, reversed(skips[:-1])):
            h = u(torch.cat([F.interpolate(h, size=s.shape[-2:], mode="bilinear", align_corners=False), s], 1))
        for f in self.final:
            h = f(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False))
        y = self.head(h)
        if self.residual:
            # Repetition, not interpolation: neighbouring texels of different UV islands stay apart.
            y = y + F.interpolate(x[:, -IK_CHANNELS:], scale_factor=self.out_scale, mode="nearest")
        return {"uv_l": y[:, :3], "uv_j": y[:, 3:6], "uv_d": y[:, 6:9], "camera": cam}


DMP_INPUTS = ("uv_feat", "uv_maps", "hits", "camera")      # the DMP cache rows UVI reads
IK_INPUTS = ("uv_l", "uv_j")                                 # the IK cache rows UVI reads


def stack_inputs(dmp_rows: dict, ik_rows: dict, use_dmp: bool, use_ik: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """DMP and IK cache rows (the cache dtypes, as `dmp_rows` / `ik_rows` make them) ->
    (inputs (B, input_channels(C), R, R) float32, camera (B, 3)) at the caches' UV resolution R. The one
    place UVI's input is built: training, evaluation and `predict` all come through here."""
    feat = dmp_rows["uv_feat"].float()
    maps = dmp_rows["uv_maps"].float()
    hits = (dmp_rows["hits"] > 0).float()[:, None]
    cam = dmp_rows["camera"].float()
    il, ij = ik_rows["uv_l"].float(), ik_rows["uv_j"].float()
    d_part = torch.cat([feat, maps, hits], 1)
    # UV_d only where UV_j is defined (A_uv texels); elsewhere UV_j is 0 and UV_l - UV_j would be UV_l.
    i_part = torch.cat([il, ij, (il - ij) * (ij.abs().sum(1, keepdim=True) > 0)], 1)
    if not use_dmp:
        # The ablation withholds DMP's UV-space maps and features; DMP still runs upstream (IK needs
        # its J_initial), so its camera stays. A constant camera made the consistency loss squash
        # the predicted surface into slivers (default profile, 250 mm MPJPE).
        d_part = torch.zeros_like(d_part)
    if not use_ik:
        i_part = torch.zeros_like(i_part)
    return torch.cat([d_part, i_part], 1), cam


def uvi_inputs(dmp, ik, rows, use_dmp: bool, use_ik: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Cache rows `rows` of a DMP and an IK cache split (`cache.dmp.DmpCache`, `cache.ik.IkCache`)
    -> (inputs (B, input_channels(C), R, R) float32, DMP camera (B, 3))."""
    rows = np.asarray(rows)
    d = {k: torch.as_tensor(np.array(dmp.arrays[k][rows])) for k in DMP_INPUTS}
    i = {k: torch.as_tensor(np.array(ik.arrays[k][rows])) for k in IK_INPUTS}
    return stack_inputs(d, i, use_dmp, use_ik)


def infer(out: dict, sampler, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """UVI output -> (joints (B, 14, 3): mean of UV_j per A_uv part over valid texels;
    vertices (B, V, 3): UV_l sampled at each vertex's UV, seam copies averaged)."""
    valid = (labels >= 0)[None].expand(out["uv_j"].shape[0], -1, -1)
    joints, _ = joints_from_uv(out["uv_j"], valid, labels, 14)
    return joints, sampler.to_vertices(out["uv_l"])


def load_uvi(path, device="cpu"):
    """A UVI model file (weights_only) -> (eval-mode UVINet, its config); ModelFileError naming a file
    of another kind or architecture."""
    return load_model_file(path, "UVI", lambda cfg: UVINet(
        cfg["in_channels"], cfg["width"], in_res=int(cfg.get("in_res", UV_RES)), out_res=int(cfg.get("out_res", OUT_RES)),
        residual=bool(cfg.get("residual", False))), device)      # files from before `residual` predicted the maps outright
