"""The one place that turns an error into the CLI's one-line message and exit code.

A fault of the user's inputs or machine (a bad parameter, a corrupt or truncated file, a missing
folder, a full disk) is reported as one line naming the culprit; anything else is a bug of uvhmr
and keeps its traceback. `--debug` (or UVHMR_DEBUG=1) shows the traceback of every error.

Faults are recognised by type (`isinstance`), never by class-name strings. The types of the
modules that load torch are imported only when an error is being reported (`fault_types`), so
importing `uvhmr.cli` stays cheap.
"""
from __future__ import annotations

import os
from typing import Optional

from uvhmr.data.shards import ShardError
from uvhmr.errors import AssetError, ConfigError, InputError
from uvhmr.io import WRITE_ERRNOS

# Exit codes: 2 an argument or parameter is wrong (or a folder is missing), 1 an input file is bad
# or the run failed on the machine.
OWN_TYPES: list[tuple[type, int, bool]] = [(ConfigError, 2, False), (InputError, 1, False), (AssetError, 1, True)]


def fault_types() -> list[tuple[type, int, bool]]:  # not a code dependency
    """[(exception type, exit code, whether the line starts with the type's name)], checked in
    order. A type renamed or moved fails these imports in the tests instead of silently losing
    its one line."""
    # Imported here, when an error is reported: these modules load torch, which the cheap types
    # (OWN_TYPES, checked first) and a bare `uvhmr --help` never need.
    from uvhmr.data.mocap import MocapFormatError  # heavy: torch
    from uvhmr.data.sources.spin_npz import SpinFormatError  # heavy: torch
    from uvhmr.modelfile import ModelFileError  # heavy: torch
    from uvhmr.models.encoders import PretrainedError  # heavy: torch, timm
    from uvhmr.train.checkpoint import CheckpointError  # heavy: torch
    from uvhmr.train.trainer import NonFiniteLoss  # heavy: torch
    return [*OWN_TYPES, (ShardError, 1, True), (SpinFormatError, 1, True), (MocapFormatError, 1, True),
            (CheckpointError, 1, True), (NonFiniteLoss, 1, True), (ModelFileError, 1, True), (PretrainedError, 1, True)]


def debug_enabled(flag: bool = False) -> bool:
    return bool(flag) or os.environ.get("UVHMR_DEBUG", "").strip() not in ("", "0", "false", "no")


def one_line(e: BaseException) -> Optional[tuple[str, int]]:
    """-> (the one-line message, exit code) for a fault of the inputs or the machine, None for a
    bug (the caller re-raises it, traceback and all)."""
    text = " ".join(str(e).split()) or type(e).__name__        # one line, whatever the message held
    for cls, code, named in OWN_TYPES:
        if isinstance(e, cls):
            return (f"{type(e).__name__}: {text}" if named else text), code
    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
        return f"{type(e).__name__}: {text}", 1
    if isinstance(e, (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError)):
        # uvhmr's own messages already name the file; an OSError from the system names it as filename.
        if e.filename and str(e.filename) not in text:
            text = f"{e.filename}: {text}"
        return text, 2
    # Only now the types of the modules that import torch: a parameter error is worded without it.
    for cls, code, named in fault_types():
        if isinstance(e, cls):
            return (f"{type(e).__name__}: {text}" if named else text), code
    return None
