"""The package's own error types that many modules raise: a leaf module, importing nothing of
uvhmr, so any module can raise them without an import loop. How the CLI words them (and the
fault types of heavier modules) is `uvhmr.faults`.
"""
from __future__ import annotations


class ConfigError(ValueError):
    """A parameter problem, worded as one line: `<file>: <key>: <what was expected>`."""


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

    import numpy as np      # here, not at the top: the CLI imports this module before any numpy work
    try:
        with np.load(path, **kwargs) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        if isinstance(e, OSError) and e.errno is not None:
            raise                       # a missing or unreadable file: the system's error names it
        raise AssetError(f"{path}: not a readable .npz (truncated or corrupt: {type(e).__name__}: {e}); "
                         f"{rebuild}") from e
