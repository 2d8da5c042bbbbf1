"""The HMR-style baseline (Kanazawa et al. 2018): the same backbone and data as DMP, regressing
the body model's pose (6D per bone, the root in the camera frame), shape and the weak-perspective
camera directly from the global image feature, posed through the body model.
"""
from __future__ import annotations

import roma
import torch
import torch.nn as nn

from uvhmr.modelfile import ModelFileError, load_model_file
from uvhmr.models.encoders import Encoder
from uvhmr.models.ik import rot6d_to_matrix
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


def posed_joints(body, rotmats: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """(B, J, 3, 3), (B, S) -> (B, 14, 3) LSP joints, camera frame, root-relative."""
    out = body(roma.rotmat_to_rotvec(rotmats), shape)
    return out.lsp14 - root_of(out.lsp14)


def load_hmr(path, body, device="cpu"):
    """An HMR model file (weights_only) -> (eval-mode HMRNet, its config); ModelFileError naming a file
    of another kind or architecture, or one trained for another body model."""
    net, cfg = load_model_file(path, "HMR", lambda cfg: HMRNet(cfg["backbone"], cfg["num_bones"], torch.zeros(cfg["shape_dim"])),
                               device)
    if (cfg["num_bones"], cfg["shape_dim"]) != (body.num_joints, len(body.shape_labels)):
        raise ModelFileError(f"{path}: an HMR model for a body model with {cfg['num_bones']} joints and {cfg['shape_dim']} "
                             f"shape parameters, not this one ({body.num_joints}, {len(body.shape_labels)})")
    return net, cfg
