"""Where and in what precision a network runs: the device a rule's `run.device` names, and bf16
autocast where the device computes it natively. Shared by training, the caches, evaluation and
`predict`."""
from __future__ import annotations

import torch


def pick_device(setting: str) -> torch.device:
    """'auto' -> CUDA when there is one, else CPU."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("params: run.device: cuda requested but no CUDA device is available")
    if setting == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 matrix products natively (not emulated, which is slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def training_precision(device: torch.device, setting: str) -> str:
    """params run.precision -> 'bf16' or 'fp32' for this device ('auto': bf16 where native)."""
    if setting == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return setting


def forward_in(precision: str, device: torch.device, net: torch.nn.Module, *inputs):
    """net(*inputs) under bf16 autocast (precision 'bf16') or as is ('fp32'); floating outputs (a
    tensor or a dict of them) come back fp32, so losses and the body model stay in full precision.
    Weights, optimiser state and gradients are fp32 either way."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = net(*inputs)
    if precision != "bf16":
        return out

    def f32(x):
        return x.float() if torch.is_tensor(x) and x.is_floating_point() else x
    return {k: f32(v) for k, v in out.items()} if isinstance(out, dict) else f32(out)
