"""Checkpoints that let an interrupted workflow rule resume where it stopped.

Convention: checkpoints live OUTSIDE a rule's declared outputs, because the workflow tools
delete declared outputs before rerunning a rule. They go to
`<root>/checkpoints/<rule>[-<variant>]/<key>/`, where `key = hash_inputs(params, inputs)`, so
a rerun with the same parameters and inputs finds and resumes its own checkpoints, while any
change of either starts from scratch in a fresh folder. The trainers count the package files
their command runs among the inputs (`code_files`): a code change is a change of input.

One folder has one writer at a time (the rule's job); `load_latest` deletes leftover
temporary files from a killed writer on that assumption.

Files are `step-{step:08d}.pt`, written atomically through `uvhmr.io.save_with`, holding
`{"format": 1, "step": int, "state": dict}`. They are read with `weights_only=True`, so a
state may only hold tensors, plain Python values (dict/list/tuple/str/int/float/bool/None)
and objects' `state_dict()`s, never pickled classes. `rng_state()` produces such a value.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from uvhmr.code_deps import PACKAGE_DIR, REPO_PREFIX, code_deps
from uvhmr.io import save_with

FORMAT = 1
KEEP = 2
RNG_KEY = "rng"
_BLOCK = 1 << 20
_CKPT_RE = re.compile(r"^step-(\d+)\.pt$")
# Temporary names made by uvhmr.io.atomic_path for a checkpoint file.
_TMP_GLOB = ".step-*.pt.*.tmp*"


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used (corrupt, truncated, wrong layout)."""


# ---------------------------------------------------------------------------------- keys

def _json_default(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    # Refuse rather than fall back to repr(): reprs can hold memory addresses, which would
    # give a new key, hence no resume, on every run.
    raise TypeError(f"parameter of type {type(obj).__name__} is not JSON-serialisable: {obj!r}")


def canonical_json(params: dict) -> str:
    """Key-order independent, whitespace-free JSON of `params`."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def _files(top: Path) -> Iterable[tuple[str, Path]]:
    """(name relative to top's parent, path) for top itself or every file under it, sorted."""
    if top.is_file():
        yield top.name, top
        return
    if not top.is_dir():
        raise FileNotFoundError(f"input to hash does not exist: {top}")
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            yield path.relative_to(top.parent).as_posix(), path


def _hash_file(h: "hashlib._Hash", name: str, path: Path) -> None:
    size = path.stat().st_size
    # Name and size go first so that record boundaries are unambiguous.
    h.update(f"F\0{name}\0{size}\0".encode())
    read = 0
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
            read += len(block)
    if read != size:
        raise RuntimeError(f"{path} changed size while being hashed ({size} -> {read} bytes)")


def hash_inputs(params: dict, inputs: Iterable[str | os.PathLike]) -> str:
    """Key of a rule run: first 16 hex digits of a sha256 over params and input contents.

    params: JSON-serialisable dict (paths allowed); key order does not matter.
    inputs: files or directories, in the rule's order. Each contributes its name and every
    file's path relative to the input's parent (directories walked in sorted order) plus the
    file's bytes. Where the inputs live does not enter the key, so moving the checkout or
    spelling a path absolute vs relative still resumes.
    """
    h = hashlib.sha256()
    h.update(b"uvhmr-checkpoint-key-v1\0")
    params_json = canonical_json(params).encode()
    h.update(f"P\0{len(params_json)}\0".encode())
    h.update(params_json)
    for i, top in enumerate(inputs):
        top = Path(top)
        h.update(f"I\0{i}\0".encode())
        for name, path in _files(top):
            _hash_file(h, name, path)
    return h.hexdigest()[:16]


def code_files(subcommand: str) -> list[Path]:
    """The package files `uvhmr <subcommand>` runs (`code_deps`, as dvc.yaml lists them), as paths.
    A trainer's key covers them, so a rerun after a code change starts afresh instead of resuming
    checkpoints that the old code wrote (which would also hide the new code's training time)."""
    return [PACKAGE_DIR / p[len(REPO_PREFIX) + 1:] for p in code_deps(subcommand)]


def checkpoint_dir(root: str | os.PathLike, rule: str, variant: str | None, key: str) -> Path:
    """`root/checkpoints/<rule>[-<variant>]/<key>/` (not created)."""
    for what, part in (("rule", rule), ("variant", variant), ("key", key)):
        if part is not None and ("/" in part or "\\" in part or part in (".", "..")):
            raise ValueError(f"{what} must be a single path component, got {part!r}")
    if not rule or not key:
        raise ValueError("rule and key must be non-empty")
    name = f"{rule}-{variant}" if variant else rule
    return Path(root) / "checkpoints" / name / key


# ----------------------------------------------------------------------------------- RNG

def rng_state() -> dict:
    """Python, NumPy (legacy global), torch CPU and, if in use, CUDA generator states, as
    tensors and plain Python values so that `torch.load(weights_only=True)` can read them."""
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": [int(version), [int(v) for v in internal], gauss_next],
        "numpy": [str(name), keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    # Only once CUDA is initialised: querying would otherwise initialise it (slow, and pointless
    # since an unused generator is still at its default seed on resume).
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state()` returned."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------- save / load

def checkpoint_path(ckpt_dir: str | os.PathLike, step: int) -> Path:
    return Path(ckpt_dir) / f"step-{step:08d}.pt"


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoint files in `ckpt_dir`, by increasing step."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = []
    for path in ckpt_dir.iterdir():
        m = _CKPT_RE.match(path.name)
        if m and path.is_file():
            found.append((int(m.group(1)), path))
    return sorted(found)


def save_checkpoint(ckpt_dir: str | os.PathLike, step: int, state: dict, keep: int = KEEP) -> Path:
    """Atomically write `state` as checkpoint `step`, then delete all but the newest `keep`.

    state: everything needed to resume (model and optimizer state dicts, RNG states from
    `rng_state()`, counters...), as tensors and plain values only. Returns the file's path.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    path = checkpoint_path(ckpt_dir, step)
    payload = {"format": FORMAT, "step": int(step), "state": state}
    save_with(path, lambda tmp: torch.save(payload, tmp))
    # Prune only after the new file is in place, so a kill here leaves extra files, never
    # fewer than one complete checkpoint.
    for _, old in list_checkpoints(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def remove_temporaries(ckpt_dir: str | os.PathLike) -> list[Path]:
    """Delete half-written checkpoint files left by a killed writer; returns what it deleted."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    removed = sorted(ckpt_dir.glob(_TMP_GLOB))
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> tuple[int, dict]:
    """Read one checkpoint file -> (step, state); CheckpointError naming the file if unusable."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read means the same to the caller
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}: {e}); "
            "delete it to resume from an earlier checkpoint"
        ) from e
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT
            and isinstance(payload.get("step"), int) and isinstance(payload.get("state"), dict)):
        raise CheckpointError(f"checkpoint {path} does not have the expected layout "
                              f"{{'format': {FORMAT}, 'step': int, 'state': dict}}")
    m = _CKPT_RE.match(path.name)
    if m and int(m.group(1)) != payload["step"]:
        raise CheckpointError(f"checkpoint {path} holds step {payload['step']}, "
                              f"not the step its name says")
    return payload["step"], payload["state"]


def load_latest(ckpt_dir: str | os.PathLike, map_location: Any = "cpu") -> tuple[int, dict] | None:
    """(step, state) of the newest checkpoint in `ckpt_dir`, or None if there is none.

    Removes leftover temporary files first. A corrupt newest checkpoint raises CheckpointError
    rather than silently falling back: writes are atomic, so corruption means something else
    went wrong (disk, manual copy) and deserves a look.
    """
    remove_temporaries(ckpt_dir)
    found = list_checkpoints(ckpt_dir)
    if not found:
        return None
    return load_checkpoint(found[-1][1], map_location)


# ---------------------------------------------------------------------------------- loop

def _to_saved(state: dict) -> dict:
    return {k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in state.items()}


def _restore(state: dict, saved: dict, where: str = "checkpoint") -> dict:
    missing = set(state) - set(saved)
    if missing:
        raise CheckpointError(f"{where} lacks state entries {sorted(missing)}")
    out = dict(state)
    for k, v in saved.items():
        if hasattr(state.get(k), "load_state_dict"):
            try:
                state[k].load_state_dict(v)
            except Exception as e:  # noqa: BLE001 - another architecture, optimizer or layout
                first = str(e).strip().splitlines()
                raise CheckpointError(f"{where}: its {k!r} does not fit this run's {type(state[k]).__name__} "
                                      f"(another architecture or variant? {type(e).__name__}: "
                                      f"{first[1].strip() if len(first) > 1 else (first or [''])[0]}); "
                                      "delete it to start from scratch") from None
        else:
            out[k] = v
    return out


def resumable_loop(
    ckpt_dir: str | os.PathLike,
    n_steps: int,
    init_state: Callable[[], dict],
    step_fn: Callable[[dict, int], dict | None],
    every: int = 1,
    keep: int = KEEP,
) -> dict:
    """Run `step_fn` for steps 0..n_steps-1, checkpointing so a killed run resumes exactly.

    Contract:
    - `init_state()` builds the live state: a dict whose values are either objects with
      `state_dict()`/`load_state_dict()` (modules, optimizers, schedulers, grad scalers) or
      checkpointable plain values (tensors, numbers, lists...). It is always called, also
      when resuming; a checkpoint's contents are then loaded into those objects (plain values
      are replaced), so it must build the same structure every time.
    - The caller seeds the RNGs before calling; afterwards the Python, NumPy-global, torch
      (and CUDA) RNG states are saved with each checkpoint and restored on resume, so
      `step_fn` may draw random numbers and a resumed run is bit-identical to an
      uninterrupted one (given deterministic kernels).
    - `step_fn(state, step)` performs step `step` (0-based) and either mutates `state` in
      place and returns None, or returns the new state dict.
    - A checkpoint numbered k is written after k steps are complete: whenever k % every == 0
      and after the last step. A run that finds checkpoint n_steps does no step at all.
    - The key "rng" is reserved.
    Returns the final live state.
    """
    if n_steps < 0 or every < 1:
        raise ValueError(f"need n_steps >= 0 and every >= 1, got {n_steps}, {every}")
    state = init_state()
    if RNG_KEY in state:
        raise ValueError(f"state key {RNG_KEY!r} is reserved for the RNG states")
    start = 0
    latest = load_latest(ckpt_dir)
    if latest is not None:
        start, saved = latest
        if start > n_steps:
            raise CheckpointError(f"{ckpt_dir} holds a checkpoint at step {start}, beyond "
                                  f"n_steps={n_steps}; was it made with other parameters?")
        rng = saved.pop(RNG_KEY, None)
        if rng is None:
            raise CheckpointError(f"checkpoint at step {start} in {ckpt_dir} has no RNG state")
        state = _restore(state, saved, f"checkpoint {checkpoint_path(ckpt_dir, start)}")
        set_rng_state(rng)
    for step in range(start, n_steps):
        new = step_fn(state, step)
        if new is not None:
            state = new
        done = step + 1
        if done % every == 0 or done == n_steps:
            save_checkpoint(ckpt_dir, done, {**_to_saved(state), RNG_KEY: rng_state()}, keep)
    return state
