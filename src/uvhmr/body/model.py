"""The one body-model interface that every stage uses, whatever the backend (Anny or SMPL).

    model = load_body_model("resources/body/anny")
    out = model(pose, shape, transl)       # BodyOutput: vertices, joints, lsp14, joints24

The interface and the export format are `uvhmr.body.base`; this module picks the backend.
"""
from __future__ import annotations

from pathlib import Path

from uvhmr.body.anny import AnnyBody
from uvhmr.body.base import ASSETS, EXPORT_VERSION, BodyModel
from uvhmr.body.smpl import SmplBody
from uvhmr.errors import read_npz


def load_body_model(directory: str | Path) -> BodyModel:
    """Load what the `body_model` rule exported into `directory` (resources/body/<backend>)."""
    d = Path(directory)
    f = d / ASSETS
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no body-model export here; run `uvhmr body-model` (the workflow's body_model rule) first")
    assets = read_npz(f, f"delete {d} and rerun the workflow's body_model rule", allow_pickle=False)
    version = int(assets.get("export_version", 0))
    if version != EXPORT_VERSION:
        raise ValueError(f"{f}: export version {version}, this uvhmr reads version {EXPORT_VERSION}; "
                         f"rebuild it (delete {d} and rerun the workflow's body_model rule)")
    backend = str(assets["backend"])
    if backend == "anny":
        return AnnyBody(d, assets)
    if backend == "smpl":
        return SmplBody(d, assets)
    raise ValueError(f"{f}: unknown backend {backend!r} (expected anny or smpl)")
