"""The one place that turns an error into the CLI's one-line message and exit code.

A fault of the user's inputs or machine (a bad parameter, a corrupt or truncated file, a missing
folder, a full disk) is reported as one line naming the culprit; anything else is a bug of uvhmr
and keeps its traceback. `--debug` (or UVHMR_DEBUG=1) shows the traceback of every error.

Faults are recognised by type (`isinstance`), never by class-name strings. The modules that define
them are imported only here, when an error is being reported, so importing `uvhmr.cli` stays cheap.
"""
from __future__ import annotations

import os
from typing import Optional


class InputError(ValueError):
    """An input of a command cannot be used (an image too small, a box outside it); the message
    names the input and what was expected."""


class AssetError(ValueError):
    """A file one rule wrote and another reads (uv_assets.npz, the body-model export) is corrupt
    or truncated; the message names the file and the rule that rebuilds it."""


def read_npz(path, rebuild: str, **kwargs) -> dict:
    """Every array of an .npz file; a truncated or corrupt file (zipfile.BadZipFile, a bad member)
    becomes an AssetError naming it and `rebuild`, what writes it again."""
    import zipfile

    import numpy as np
    try:
        with np.load(path, **kwargs) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        if isinstance(e, OSError) and e.errno is not None:
            raise                       # a missing or unreadable file: the system's error names it
        raise AssetError(f"{path}: not a readable .npz (truncated or corrupt: {type(e).__name__}: {e}); "
                         f"{rebuild}") from e


class NotImplementedYet(RuntimeError):
    """A DAG rule whose subcommand does not exist yet."""


# Exit codes: 2 an argument or parameter is wrong (or a folder is missing), 1 an input file is bad
# or the run failed on the machine, 3 the command is not implemented yet.
def fault_types() -> list[tuple[type, int, bool]]:  # not a code dependency
    """[(exception type, exit code, whether the line starts with the type's name)], checked in
    order. Imported here, when an error is reported: importing the CLI stays cheap, and a type
    renamed or moved fails this import in the tests instead of silently losing its one line.
    (Importing the training modules loads torch: one_line checks the cheap types first.)"""
    from uvhmr.data.mocap import MocapFormatError
    from uvhmr.data.shards import ShardError
    from uvhmr.data.spin_adapter import SpinFormatError
    from uvhmr.models.encoders import PretrainedError
    from uvhmr.train.checkpoint import CheckpointError
    from uvhmr.train.trainer import ModelFileError, NonFiniteLoss
    return [*_own_types(), (ShardError, 1, True), (SpinFormatError, 1, True), (MocapFormatError, 1, True),
            (CheckpointError, 1, True), (NonFiniteLoss, 1, True), (ModelFileError, 1, True), (PretrainedError, 1, True)]


def _own_types() -> list[tuple[type, int, bool]]:
    from uvhmr.config import ConfigError
    return [(ConfigError, 2, False), (NotImplementedYet, 3, False), (InputError, 1, False), (AssetError, 1, True)]


def debug_enabled(flag: bool = False) -> bool:
    return bool(flag) or os.environ.get("UVHMR_DEBUG", "").strip() not in ("", "0", "false", "no")


def one_line(e: BaseException) -> Optional[tuple[str, int]]:
    """-> (the one-line message, exit code) for a fault of the inputs or the machine, None for a
    bug (the caller re-raises it, traceback and all)."""
    text = " ".join(str(e).split()) or type(e).__name__        # one line, whatever the message held
    for cls, code, named in _own_types():
        if isinstance(e, cls):
            return (f"{type(e).__name__}: {text}" if named else text), code
    from uvhmr.io import WRITE_ERRNOS
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
