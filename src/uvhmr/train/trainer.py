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
from uvhmr.train.checkpoint import load_latest, resumable_loop


def pick_device(setting: str) -> torch.device:
    """'auto' -> CUDA when there is one, else CPU."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("params: run.device: cuda requested but no CUDA device is available")
    if setting == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class NonFiniteLoss(RuntimeError):
    pass


def check_finite(loss: torch.Tensor, epoch: int, step: int, ckpt_dir: Path) -> None:
    """Stop on a NaN/inf loss, naming where and the last good checkpoint, instead of training on."""
    if not torch.isfinite(loss):
        last = load_latest(ckpt_dir)
        where = f"epoch {last[0]} checkpoint in {ckpt_dir}" if last else "no checkpoint yet"
        raise NonFiniteLoss(f"loss became {loss.item()} at epoch {epoch}, step {step}; last good: {where}")


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
        state["history"] = state["history"] + [{"epoch": epoch + 1, **metrics}]
        write_history(history_csv, state["history"])
        log("epoch %d/%d: %s" % (epoch + 1, epochs, ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) and math.isfinite(v) else f"{k} {v}" for k, v in metrics.items())))

    resumed = load_latest(ckpt_dir)
    if resumed:
        log(f"resuming from the epoch-{resumed[0]} checkpoint in {ckpt_dir}")
    state = resumable_loop(ckpt_dir, epochs, init, step)
    write_history(history_csv, state["history"])
    return state["history"]
