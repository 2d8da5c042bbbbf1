"""The epoch loop every training rule shares: seeds, progress bar, a CSV log per
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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class NonFiniteLoss(RuntimeError):
    pass


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
