"""DMP, the dense map prediction module (paper §3.1; docs/design.md, "Module homes"), and the inference-time
steps on its output: J_initial (`j_initial`) and the warp into UV space (`warp_to_uv`).

An image encoder (`models/encoders.py`: ResNet or EfficientNet-Lite), a decoder with skip connections up to 1/`out_stride` of the input, and heads for
the body mask (logits), the UV coordinates (sigmoid), the A_uv part of each body pixel (logits,
DensePose's "I"; J_initial aggregates M_j by it), and the camera-frame maps M_j, M_l, M_d
(metres, root-relative); a global feature regresses the weak-perspective camera (s, tx, ty).
The decoder's last features are the local features UVI later warps into UV space.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from uvhmr.body.joints import LSP14_NAMES, SMPL24_NAMES, SMPL24_TO_LSP14, mirror_permutation
from uvhmr.modelfile import load_model_file
from uvhmr.models.encoders import STRIDES, Encoder
from uvhmr.uv.gt import joints_from_uv
from uvhmr.uv.texels import iuv_to_uv

MAPS = ("mj", "ml", "md")     # the camera-frame maps: joint, surface point, their difference
AGGREGATES = ("parts", "attention", "global")   # how J_initial weighs M_j's pixels: `joint_weights`, `j_initial`
JOINTS_XY = ("maps", "heatmap")       # where J_initial's image-plane x, y come from: see `j_initial`
HIPS = {14: (2, 3), 24: (1, 2)}       # the right and left hip in each joint set: the root is their midpoint
UV_RES = 64                   # the default UV resolution of the warped maps and features (UVI's input)


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def with_coords(x: torch.Tensor, cond: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Append the pixel's normalised image coordinates (x, y in [-1, 1]) as two channels, and the
    per-image conditioning vector `cond` (B, c) broadcast over the pixels.
    (B, C, h, w) -> (B, C + 2 + c, h, w). The maps are root-relative 3-D positions: a surface point's
    x, y are nearly an affine function of where it is in the image (the weak-perspective camera),
    which translation-equivariant convolutions alone cannot express (CoordConv)."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"))[None].expand(b, -1, -1, -1)
    parts = [x, grid]
    if cond is not None:
        parts.append(cond.to(x.dtype)[:, :, None, None].expand(-1, -1, h, w))
    return torch.cat(parts, 1)


class UpBlock(nn.Module):
    """Upsample x2, concatenate the encoder's skip feature, the pixel coordinates and the
    conditioning channels (`ncond`), two 3x3 convs."""

    def __init__(self, cin: int, cskip: int, cout: int, ncond: int = 0):
        super().__init__()
        self.conv = nn.Sequential(conv_bn(cin + cskip + 2 + ncond, cout), conv_bn(cout, cout))

    def forward(self, x, skip, cond=None):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(with_coords(torch.cat([x, skip], 1), cond))


def facing_yaw(joints: torch.Tensor) -> torch.Tensor:
    """The body's facing direction about the camera's vertical axis, from its LSP-14 joints.
    joints (B, 14, 3) camera frame (x right, y down, z away from the camera), metres ->
    (B,) radians: 0 facing the camera, +pi/2 facing image right. The body's left (hips and
    shoulders, left minus right) crossed with its up (neck minus mid-hip) is its forward."""
    left = joints[:, 3] - joints[:, 2] + joints[:, 9] - joints[:, 8]
    up = joints[:, 12] - 0.5 * (joints[:, 2] + joints[:, 3])
    fwd = torch.linalg.cross(left, up)
    return torch.atan2(fwd[:, 0], -fwd[:, 2])


def to_body_frame(xz: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Camera-frame (x, z) maps (B, 2, h, w) -> (lateral, forward) of a body with yaw (B,) radians
    (`facing_yaw`'s convention): lateral along the body's left, forward along its facing."""
    c, s = torch.cos(yaw)[:, None, None], torch.sin(yaw)[:, None, None]
    x, z = xz[:, 0], xz[:, 1]
    return torch.stack([x * c + z * s, x * s - z * c], 1)


def from_body_frame(points: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Body-frame points (B, k, 3) (lateral, y, forward) and the yaw (B,) radians -> camera-frame
    (B, k, 3) (x, y, z): the inverse of `to_body_frame` on (x, z), y unchanged."""
    c, s = torch.cos(yaw)[:, None].to(points.dtype), torch.sin(yaw)[:, None].to(points.dtype)
    lat, y, fwd = points.unbind(-1)
    return torch.stack([lat * c + fwd * s, y, lat * s - fwd * c], -1)


def joints_to_body_frame(points: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """Camera-frame points (B, k, 3) and the yaw (B,) radians -> body-frame (B, k, 3) (lateral, y,
    forward): `to_body_frame` on (x, z), y unchanged; `from_body_frame` inverts it."""
    lat_fwd = to_body_frame(points[..., 0::2].permute(0, 2, 1)[..., None], yaw)[..., 0]      # (B, 2, k)
    return torch.stack([lat_fwd[:, 0], points[..., 1], lat_fwd[:, 1]], -1)


def depth_from_body_frame(raw: torch.Tensor, yaw: torch.Tensor):
    """A map head's (x, y, lateral, forward) (B, 4, h, w) and the yaw (B,) -> (camera-frame map
    (B, 3, h, w) metres: x, y as predicted, z from the body frame turned by the yaw; the body-frame
    (lateral, forward) (B, 2, h, w)). A point's place in the body frame does not depend on the
    view, so the head can learn it from the image; its depth is then the yaw's job. x stays the
    head's image-aligned estimate, so a wrong yaw costs depth only."""
    c, s = torch.cos(yaw)[:, None, None].to(raw.dtype), torch.sin(yaw)[:, None, None].to(raw.dtype)
    lat, fwd = raw[:, 2], raw[:, 3]
    return torch.cat([raw[:, :2], (lat * s - fwd * c)[:, None]], 1), raw[:, 2:]


def yaw_bin_centres(bins: int, device=None) -> torch.Tensor:
    return torch.arange(bins, device=device) * (2 * math.pi / bins) - math.pi


def yaw_to_bin(yaw: torch.Tensor, bins: int) -> torch.Tensor:
    """(B,) radians -> (B,) int64 index of the nearest bin centre (bins cover the circle)."""
    step = 2 * math.pi / bins
    return torch.remainder(torch.round((yaw + math.pi) / step), bins).long()


def yaw_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """(B, bins) -> (B,) radians: the circular mean over the most likely bin and its two
    neighbours. Not over all bins: front and back views are easy to confuse, and the mean of two
    opposite modes is an arbitrary angle in between, while either mode is a real body."""
    p = torch.softmax(logits.float(), 1)
    bins = p.shape[1]
    top = p.argmax(1)
    near = torch.stack([(top + d) % bins for d in (-1, 0, 1)], 1)               # (B, 3)
    w = p.gather(1, near)
    c = yaw_bin_centres(bins, logits.device)[near]
    return torch.atan2((w * torch.sin(c)).sum(1), (w * torch.cos(c)).sum(1))


def global_joint_map(gj: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
    """Global joints (B, k, C) metres and part logits (B, k, h, w) -> (B, C, h, w): each pixel's
    expected joint under the part head's (detached) probabilities. Its per-part mean is then the
    global estimate wherever the part head is sure, so J_initial stays M_j's per-part mean."""
    p = torch.softmax(parts.detach().float(), 1).to(gj.dtype)
    return torch.einsum("bkhw,bkc->bchw", p, gj)


def part_means(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean of (B, C, h, w) values per part. weights (B, k, h, w) >= 0 -> (B, k, C)."""
    total = torch.einsum("bchw,bkhw->bkc", values, weights)
    return total / weights.sum((2, 3)).clamp(min=1e-6)[..., None]


def joint_weights(out: dict, body: torch.Tensor) -> torch.Tensor:
    """Each body pixel's weight for each joint, (B, k, h, w) >= 0, for `aggregate_joints`.
    body (B, 1, h, w) {0, 1} at the resolution of out's maps.
    parts (the paper's, through DensePose's I): the part head's probability of the joint's part.
    attention (with an `attn` head): a softmax over the body's pixels of the joint's attention
    logit, so a joint can draw on the pixels whose M_j it predicts best, wherever they are, and
    left/right confusions of the part head do not average two limbs into the midline."""
    if "attn" not in out:
        return torch.softmax(out["parts"].float(), 1).to(body.dtype)
    logits = out["attn"].float().masked_fill(body < 0.5, -1e4)
    b, k, h, w = logits.shape
    return torch.softmax(logits.reshape(b, k, h * w), -1).reshape(b, k, h, w).to(body.dtype)


def pixel_grid(h: int, w: int, device=None) -> torch.Tensor:
    """(2, h, w): each pixel centre's normalised image coordinates (x, y), 2 x / S - 1 with x in
    pixels, the convention of the weak-perspective camera (s, tx, ty)."""
    xs = (2 * (torch.arange(w, device=device) + 0.5) / w - 1)[None, :].expand(h, w)
    ys = (2 * (torch.arange(h, device=device) + 0.5) / h - 1)[:, None].expand(h, w)
    return torch.stack([xs, ys])


def heatmap_points(heat: torch.Tensor) -> torch.Tensor:
    """Soft-argmax: (B, k, h, w) logits -> (B, k, 2) each joint's expected position under the
    softmax over all pixels, in normalised image coordinates (occluded joints have a place too)."""
    b, k, h, w = heat.shape
    p = torch.softmax(heat.float().reshape(b, k, h * w), -1)
    return torch.einsum("bkn,cn->bkc", p, pixel_grid(h, w, heat.device).reshape(2, h * w))


def image_plane_joints(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """(B, k, 2) joints in normalised image coordinates and DMP's weak-perspective camera (B, 3)
    (s, tx, ty) -> (B, k, 2) root-relative x, y in metres: 2 x / S - 1 = s (X + t), so a joint's
    offset from the mid-hips is its image offset over s (t cancels)."""
    r, l = HIPS[points.shape[1]]
    root = 0.5 * (points[:, r] + points[:, l])
    return (points - root[:, None]) / camera[:, 0, None, None].float().clamp(min=1e-3)


def with_heatmap_xy(joints: torch.Tensor, out: dict) -> torch.Tensor:
    """joints (B, k, 3) root-relative metres aggregated from M_j -> the same with x, y from the
    heatmaps and the camera's scale when DMP has a heatmap head (`joints_xy: heatmap`): 2-D joints
    are what a CNN localises best; M_j then gives the depth only. Unchanged otherwise."""
    if "heat" not in out:
        return joints
    xy = image_plane_joints(heatmap_points(out["heat"]), out["camera"]).to(joints.dtype)
    return torch.cat([xy, joints[..., 2:]], -1)


def aggregate_joints(mj: torch.Tensor, body: torch.Tensor, part_w: torch.Tensor, top: torch.Tensor):
    """M_j (B, 3, h, w) metres averaged per part: body (B, 1, h, w) {0, 1}; part_w (B, k, h, w) each
    pixel's weight for each part; top (B, k, h, w) {0, 1} each pixel's one part. A joint is observed
    when its part is the top part of at least one body pixel.
    -> (joints (B, k, 3) root-relative metres, observed (B, k) bool)."""
    return part_means(mj, part_w * body), (top * body).sum((2, 3)) > 0


class DMPNet(nn.Module):
    """(B, 3, H, W) RGB image in [0, 1] -> dict:
      mask (B, 1, h, w) logits; uv (B, 2, h, w) in [0, 1]; parts (B, K, h, w) logits; mj, ml, md (B, 3, h, w) metres;
      camera (B, 3) weak perspective (s, tx, ty); features (B, C, h, w) local features;
    with global_joints, gj (B, K, 3) metres, root-relative, camera frame (and gj_body, body frame, with a yaw head);
    with h = H / out_stride. `uv_res` (R) is the side of the UV maps its outputs are warped into
    (`warp_to_uv`, `j_initial`): no weights depend on it, the model file's config records it."""

    def __init__(self, backbone: str = "resnet18", out_stride: int = 2, decoder_channels: int = 64,
                 feature_channels: int = 32, pretrained: Optional[str] = None, parts: int = 14, yaw_bins: int = 0,
                 yaw_depth: bool = False, aggregate: str = "parts", uv_res: int = UV_RES, joints_xy: str = "maps",
                 global_joints: bool = False, global_grid: int = 1, flip_test: bool = False):
        super().__init__()
        self.global_joints, self.global_grid = global_joints, global_grid
        if aggregate == "global" and not global_joints:
            raise ValueError("aggregate 'global' takes J_initial from the global joints: set global_joints")
        if flip_test and not (yaw_bins and global_joints):
            raise ValueError("flip_test merges the yaw and the global joints of a mirrored pass: it needs yaw_bins and global_joints")
        self.flip_test = flip_test
        if joints_xy not in JOINTS_XY:
            raise ValueError(f"joints_xy must be one of {JOINTS_XY}, got {joints_xy!r}")
        self.joints_xy = joints_xy
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        self.aggregate = aggregate
        if yaw_depth and not yaw_bins:
            raise ValueError("yaw_depth needs a yaw head (yaw_bins > 0)")
        self.yaw_bins, self.yaw_depth, self.uv_res = yaw_bins, yaw_depth, uv_res
        ncond = 2 if yaw_bins else 0        # (cos, sin) of the body's yaw
        if out_stride not in STRIDES[:2]:
            raise ValueError(f"out_stride must be 2 or 4, got {out_stride}")
        self.encoder = Encoder(backbone, pretrained)
        ch = self.encoder.channels
        self.out_stride = out_stride
        n_up = 4 - int(math.log2(out_stride)) + 1          # from stride 32 down to out_stride
        # Decoder widths halve from 256 down to decoder_channels (wide enough, cheap on a CPU).
        widths = [max(decoder_channels, 256 // 2 ** k) for k in range(n_up)]
        blocks, cin = [], ch[4]
        for k in range(n_up):
            skip = ch[3 - k]
            blocks.append(UpBlock(cin, skip, widths[k], ncond))
            cin = widths[k]
        self.up = nn.ModuleList(blocks)
        self.local = conv_bn(cin + 2 + ncond, feature_channels)
        self.heads = nn.ModuleDict({"mask": nn.Conv2d(feature_channels, 1, 1), "uv": nn.Conv2d(feature_channels, 2, 1),
                                    "parts": nn.Conv2d(feature_channels, parts, 1),
                                    **{m: nn.Conv2d(feature_channels, 4 if yaw_depth else 3, 1) for m in MAPS}})
        if aggregate == "attention":
            self.heads["attn"] = nn.Conv2d(feature_channels, parts, 1)
        if joints_xy == "heatmap":
            self.heads["heat"] = nn.Conv2d(feature_channels, parts, 1)
        self.camera = nn.Sequential(nn.Linear(ch[4], 256), nn.ReLU(inplace=True), nn.Linear(256, 3))
        if yaw_bins:
            self.yaw = nn.Sequential(nn.Linear(ch[4] * global_grid ** 2, 256), nn.ReLU(inplace=True), nn.Linear(256, yaw_bins))
        if global_joints:
            # Every joint's root-relative place from the whole image (what an HMR-style regressor
            # learns well: the baseline's PA-MPJPE is far below DMP's), spread over M_j by the part
            # probabilities; the map head then predicts each pixel's correction to it.
            self.gjoints = nn.Sequential(nn.Linear(ch[4] * global_grid ** 2, 256), nn.ReLU(inplace=True), nn.Linear(256, 3 * parts))
            nn.init.zeros_(self.gjoints[-1].weight)
            nn.init.zeros_(self.gjoints[-1].bias)
        # Start at a plausible camera (scale 0.9 of the crop, centred) rather than at zero.
        nn.init.zeros_(self.camera[-1].weight)
        with torch.no_grad():
            self.camera[-1].bias.copy_(torch.tensor([0.9, 0.0, 0.0]))

    def forward(self, image: torch.Tensor, yaw: Optional[torch.Tensor] = None) -> dict:
        """image: (B, 3, H, W) RGB in [0, 1] (the encoder normalises it as its weights expect).
        With yaw_bins, the decoder is conditioned on the body's yaw (B,) radians: `yaw` when given
        (training feeds the true one, jittered), else the yaw head's own estimate; the output
        then also holds yaw_logits (B, bins) and the yaw used (B,)."""
        f = self.encoder(image)
        g = f[4].mean((2, 3))
        # The yaw and global-joint heads read the last features pooled onto a global_grid^2 grid:
        # where the head, hands and feet are in the image says which way the body faces and how
        # it is posed, which a mean over the image discards (1: that mean).
        gs = g if self.global_grid == 1 else F.adaptive_avg_pool2d(f[4], self.global_grid).flatten(1)
        out, cond = {}, None
        if self.yaw_bins:
            out["yaw_logits"] = self.yaw(gs)
            out["yaw"] = yaw_from_logits(out["yaw_logits"]).detach() if yaw is None else yaw
            cond = torch.stack([torch.cos(out["yaw"]), torch.sin(out["yaw"])], 1)
        x = f[4]
        for k, block in enumerate(self.up):
            x = block(x, f[3 - k], cond)
        feat = self.local(with_coords(x, cond))
        out.update({name: head(feat) for name, head in self.heads.items()})
        if self.global_joints:
            gj = self.gjoints(gs).reshape(g.shape[0], -1, 3)                            # (B, k, 3) metres
            if self.yaw_bins:
                # With a yaw head the global joints are body-frame (lateral, y, forward), a target
                # that does not depend on the view (as HMR's articulation), turned by the yaw.
                out["gj_body"] = gj
                gj = from_body_frame(gj, out["yaw"])
            out["gj"] = gj
            # M_j's head predicts a correction to the spread global joints; with yaw_depth its
            # body-frame channels correct the body-frame joints, so every map loss sees the sum.
            spread = torch.cat([gj[..., :2], out["gj_body"][..., 0::2]] if self.yaw_depth else [gj], -1)
            out["mj"] = out["mj"] + global_joint_map(spread, out["parts"])
            if self.aggregate == "global":
                out["j_global"] = gj
        if self.yaw_depth:
            for m in MAPS:
                out[m], out[f"{m}_lf"] = depth_from_body_frame(out[m], out["yaw"])
        out["uv"] = torch.sigmoid(out["uv"])
        out["camera"] = self.camera(g)
        out["features"] = feat
        return out

    def infer(self, image: torch.Tensor) -> dict:
        """`forward` at inference; with flip_test, merged with a pass on the mirrored image
        (`merge_flipped`): the yaw head's errors on an image and on its mirror are partly
        independent (docs/dmp_experiments.md, row 20)."""
        out = self(image)
        if self.flip_test:
            out = merge_flipped(out, self(torch.flip(image, dims=[-1])))
        return out



# ----------------------------------------------------------------------------- inference

MIRROR = {14: torch.as_tensor(mirror_permutation(LSP14_NAMES)), 24: torch.as_tensor(mirror_permutation(SMPL24_NAMES))}


def mirror_yaw_bins(logits: torch.Tensor) -> torch.Tensor:
    """(B, bins) yaw logits of a mirrored image -> those of the image: the mirror x -> -x turns a
    yaw into its negative, and bin i (centre -pi + i step) into bin (bins - i) % bins."""
    bins = logits.shape[1]
    return logits[:, (bins - torch.arange(bins, device=logits.device)) % bins]


def merge_flipped(out: dict, flipped: dict) -> dict:
    """Flip test-time augmentation: DMPNet outputs on an image and on its left-right mirror ->
    `out` with the yaw and the global joints of both. The yaw distribution is the sum of the two
    (the mirror's turned back); the body-frame joints are the mean of the two (the mirror's
    lateral negated and its left and right swapped), turned by the merged yaw. The dense maps
    stay the unflipped pass's (the decoder was conditioned on its own yaw)."""
    k = out["gj_body"].shape[1]
    perm = MIRROR[k].to(out["gj_body"].device)
    sign = torch.tensor([-1.0, 1.0, 1.0], device=out["gj_body"].device)
    p = torch.softmax(out["yaw_logits"].float(), 1) + torch.softmax(mirror_yaw_bins(flipped["yaw_logits"].float()), 1)
    merged = dict(out)
    merged["yaw_logits"] = torch.log(0.5 * p)
    merged["yaw"] = yaw_from_logits(merged["yaw_logits"])
    merged["gj_body"] = 0.5 * (out["gj_body"].float() + (flipped["gj_body"].float() * sign)[:, perm])
    merged["gj"] = from_body_frame(merged["gj_body"], merged["yaw"])
    if "j_global" in out:
        merged["j_global"] = merged["gj"]
    return merged


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
    part head's probability of the part (or by the joint's attention, `joint_weights`). A joint is observed when its part is the most likely one
    of at least one body pixel. Soft weights rather than the argmax part: a pixel the head cannot
    place (left or right forearm?) then counts half for each instead of all for a wrong one (DMP-14
    on the default profile: 290 mm instead of 312 mm on stage2_train, the same network).
    With `aggregate: global` (out holds j_global) J_initial is the global joints themselves, every
    joint observed: a documented departure from the paper's per-part mean (docs/design.md); M_j
    still carries them, spread over the parts, into UV for UVI.
    -> (J_initial (B, k, 3) root-relative metres, observed (B, k) bool, the UV warp dict)."""
    if "j_global" in out:
        j = out["j_global"].float()
        return j, torch.ones(j.shape[:2], dtype=torch.bool, device=j.device), warp_to_uv(out, res)
    body = (torch.sigmoid(out["mask"]) > 0.5).to(out["mj"].dtype)                 # (B, 1, h, w)
    top = torch.nn.functional.one_hot(out["parts"].argmax(1), k).permute(0, 3, 1, 2).to(body.dtype)
    joints, observed = aggregate_joints(out["mj"], body, joint_weights(out, body), top)
    return with_heatmap_xy(joints, out), observed, warp_to_uv(out, res)


def j_initial_uv(warp: dict, labels: torch.Tensor, k: int):
    """The paper's route: M_j warped into UV by the predicted IUV, averaged over A_uv's observed
    texels. warp: `warp_to_uv`'s dict (as `j_initial` returns it); labels (R, R) A_uv ->
    (J_initial (B, k, 3), observed (B, k) bool)."""
    return joints_from_uv(warp["uv_maps"][:, :3], warp["hits"] > 0, labels, k)


def fill_missing_with_root(joints: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """docs/design.md, scoring: a J_initial joint with no observed texel is scored at the root (the origin)."""
    return joints * observed[..., None].to(joints.dtype)


def load_dmp(path: str | Path, device="cpu") -> tuple[DMPNet, dict]:
    """A trained DMP file (weights_only) -> (eval-mode network, its config); ModelFileError naming
    a file of another kind or architecture. Files written before a setting existed load with its
    default (yaw_bins 0, yaw_depth off, aggregate parts, joints_xy maps, uv_res UV_RES)."""
    return load_model_file(path, "DMP", lambda cfg: DMPNet(
        cfg["backbone"], cfg["out_stride"], parts=int(cfg["joints"]), yaw_bins=int(cfg.get("yaw_bins", 0)),
        yaw_depth=bool(cfg.get("yaw_depth", False)), aggregate=cfg.get("aggregate", "parts"),
        uv_res=int(cfg.get("uv_res", UV_RES)), joints_xy=cfg.get("joints_xy", "maps"),
        global_joints=bool(cfg.get("global_joints", False)), global_grid=int(cfg.get("global_grid", 1)),
        flip_test=bool(cfg.get("flip_test", False))), device)


def as_lsp(joints: torch.Tensor, gt_lsp14: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Score 24-joint predictions on their LSP-14 subset (13 joints: the 24-set has no head top)."""
    if joints.shape[1] == 14:
        return joints, gt_lsp14
    idx = list(SMPL24_TO_LSP14[:13])
    return joints[:, idx], gt_lsp14[:, :13]
