"""The one reader of trained model files (DMP, IK, UVI, HMR): `{"state_dict", "config",
"history"}` written by the training rules with torch.save, read back weights-only."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch


class ModelFileError(ValueError):
    """A model file of another kind, architecture or body model than the one expected."""


def load_model_file(path, kind: str, build: Callable[[dict], torch.nn.Module], device="cpu"):
    """A trained model file (read weights_only) -> (eval-mode network, its config).

    build(config) makes the network the file's config describes. A file of another kind or
    architecture (missing config keys, mismatched tensors, not a torch file) -> ModelFileError
    naming the file on one line; a missing file -> FileNotFoundError."""
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
