"""The epoch loop every training rule shares: device choice, seeds, progress bar, a CSV log per
epoch (DVC-plots-ready), a checkpoint per epoch outside the rule's outputs, and resume."""
from __future__ import annotations

import csv
import io
import math
import random
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from uvhmr.io import write_text
from uvhmr.train.checkpoint import list_checkpoints, resumable_loop


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class NonFiniteLoss(RuntimeError):
    pass


class ModelFileError(ValueError):
    """A model file of another kind, architecture or body model than the one expected."""


def load_model_file(path, kind: str, build: Callable[[dict], torch.nn.Module], device="cpu"):
    """A trained model file (read weights_only) -> (eval-mode network, its config).

    build(config) makes the network the file's config describes. A file of another kind or
    architecture (missing config keys, mismatched tensors, not a torch file) -> ModelFileError
    naming the file; a missing file -> FileNotFoundError."""
    p = Path(path)
    try:
        blob = torch.load(p, map_location=device, weights_only=True)
        cfg = blob["config"]
        net = build(cfg)
        net.load_state_dict(blob["state_dict"])
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - a file of another kind or architecture
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else (lines or [""])[0]
        article = "an" if kind[0] in "AEFHILMNORSX" else "a"     # as spoken: an IK, an HMR, a UVI
        raise ModelFileError(f"{p}: not {article} {kind} model file of this uvhmr ({type(e).__name__}: {detail})") from None
    return net.to(device).eval(), cfg


def last_good(ckpt_dir: Path) -> str:
    """The newest checkpoint in ckpt_dir, in words, for an error message."""
    found = list_checkpoints(ckpt_dir)
    if not found:
        return f"none yet (the run would start from scratch; checkpoints go to {ckpt_dir})"
    step, path = found[-1]
    return f"{path} (after epoch {step}; rerunning resumes from it)"


def check_finite(loss: torch.Tensor, epoch: int, step: int, ckpt_dir: Path) -> None:
    """Stop on a NaN/inf loss (an exploding loss ends there), naming where and the last good
    checkpoint, instead of training on. epoch: 0-based, as run_epoch gets it (the message counts
    from 1, like the epoch log lines); step: the batch within the epoch."""
    if not torch.isfinite(loss):
        raise NonFiniteLoss(f"loss became {loss.item()} at epoch {epoch + 1}, step {step}; "
                            f"stopped without saving; last good checkpoint: {last_good(ckpt_dir)}")


def check_finite_parameters(model: torch.nn.Module, epoch: int, ckpt_dir: Path) -> None:
    """Before an epoch's checkpoint: refuse to save non-finite weights (a NaN gradient on an epoch's
    last step would otherwise leave a NaN model behind a finite loss)."""
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise NonFiniteLoss(f"parameters became non-finite in epoch {epoch + 1} ({len(bad)} tensors, e.g. {bad[0]}); "
                            f"stopped without saving; last good checkpoint: {last_good(ckpt_dir)}")


def write_history(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def train_epochs(model: torch.nn.Module, optimizer: torch.optim.Optimizer, epochs: int,
                 run_epoch: Callable[[int], dict], ckpt_dir: Path, history_csv: Path, log=print) -> list[dict]:
    """Run `run_epoch(epoch) -> metrics` for every epoch not yet done, checkpointing after each.

    The checkpoint holds the model, the optimizer, the RNG states and the history, so a killed
    run resumes at the next epoch and ends bit-identical to an uninterrupted one on the CPU.
    -> the per-epoch history (also written to history_csv after every epoch)."""
    def init():
        return {"model": model, "optimizer": optimizer, "history": []}

    def step(state, epoch):
        metrics = run_epoch(epoch)
        check_finite_parameters(model, epoch, ckpt_dir)
        state["history"] = state["history"] + [{"epoch": epoch + 1, **metrics}]
        write_history(history_csv, state["history"])
        log("epoch %d/%d: %s" % (epoch + 1, epochs, ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) and math.isfinite(v) else f"{k} {v}" for k, v in metrics.items())))

    done = list_checkpoints(ckpt_dir)      # (not loaded here: resumable_loop loads the newest)
    if done:
        log(f"resuming from the epoch-{done[-1][0]} checkpoint in {ckpt_dir}")
    state = resumable_loop(ckpt_dir, epochs, init, step)
    write_history(history_csv, state["history"])
    return state["history"]
