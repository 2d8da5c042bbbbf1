"""The uv_assets rule: build, save and load the UV layout, lookups, A_uv and flip maps.

Output folder (results/<profile>/uv/):
  uv_assets.npz      face_uv (F, 3, 2); island (F,); seam (V,); per resolution R in `resolutions`:
                     lookup_R_{face,bary,mask,valid}, auv14_R / auv24_R (R, R) labels (-1 off the
                     body), flip_R (R*R,) texel -> mirrored texel; lsp14_mirror (14,),
                     joints24_mirror (24,); vertex_auv14 / vertex_auv24 (V,)
  layout_report.json seam vertices and area per island kind and per A_uv part
  figures/           uv_layout_auv.png (Fig. 4 left), uv_maps.png (Fig. 5)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from uvhmr.errors import read_npz
from uvhmr.io import atomic_dir
from uvhmr.uv.figures import write_figures
from uvhmr.uv.layout import GROUPS, area_shares, seam_vertices, symmetric_layout
from uvhmr.uv.parts import build_auv
from uvhmr.uv.texels import TexelLookup, UVSampler, build_lookup

FILE = "uv_assets.npz"
REPORT = "layout_report.json"


def vertex_groups(body) -> np.ndarray:
    """(V,) index into layout.GROUPS by each vertex's skinning part."""
    names = body.joint_names
    vp = body.vertex_part.numpy()
    g = np.zeros(len(vp), np.int64)
    for k, words in ((1, ("neck", "head")), (2, ("wrist", "hand")), (3, ("foot", "ankle"))):
        g[np.isin(vp, [i for i, n in enumerate(names) if any(w in n.lower() for w in words)])] = k
    return g


def flip_index(res: int) -> np.ndarray:
    """(R*R,) flat texel index -> flat index of its mirror texel (column c -> R - 1 - c)."""
    r, c = np.meshgrid(np.arange(res), np.arange(res), indexing="ij")
    return (r * res + (res - 1 - c)).reshape(-1)


@dataclass
class UVAssets:
    face_uv: np.ndarray
    faces: np.ndarray
    arrays: dict
    resolutions: tuple[int, ...]

    def lookup(self, res: int) -> TexelLookup:
        return TexelLookup.from_arrays(self.arrays, f"lookup_{res}", res)

    def sampler(self, res: int) -> UVSampler:
        if self.faces is None:
            raise ValueError("load_uv_assets(..., faces=body.faces) is needed for mesh <-> UV conversions")
        return UVSampler(self.faces, self.face_uv, self.lookup(res))

    def auv(self, joints: int, res: int) -> torch.Tensor:
        """(R, R) A_uv labels for 14 or 24 joints, -1 off the body."""
        return torch.as_tensor(self.arrays[f"auv{joints}_{res}"])

    def joint_mirror(self, joints: int) -> np.ndarray:
        return self.arrays["lsp14_mirror" if joints == 14 else "joints24_mirror"]


def load_uv_assets(directory: str | Path, faces: np.ndarray | None = None) -> UVAssets:
    """faces: the body model's (F, 3), needed only for `sampler()` (mesh <-> UV conversions)."""
    f = Path(directory) / FILE
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no UV assets here; run the workflow's uv_assets rule first")
    arrays = read_npz(f, "delete it and rerun the workflow's uv_assets rule")
    res = tuple(int(r) for r in arrays["resolutions"])
    return UVAssets(arrays["face_uv"], None if faces is None else np.asarray(faces), arrays, res)


def build_uv_assets(body, section, out_dir: Path, log=print) -> dict:
    """Build everything into out_dir (atomically). -> the layout report."""
    faces = body.faces.numpy()
    sc = section.island_scales
    scales = {g: getattr(sc, g) for g in GROUPS}
    groups = vertex_groups(body)
    face_uv, islands, island_of = symmetric_layout(
        body.face_uv.numpy(), faces, body.face_mirror.numpy(), body.vertex_mirror.numpy(), groups, scales,
        margin_texels_128=section.margin_texels, log=log)
    with torch.no_grad():
        ref = body(body.reference_pose(1), body.mean_shape()[None])
    arrays = {"face_uv": face_uv, "island": island_of, "resolutions": np.array(section.resolutions),
              "lsp14_mirror": body.lsp14.mirror, "joints24_mirror": body.joints24.mirror,
              "island_group": np.array([it.group for it in islands])}
    seam = seam_vertices(face_uv, faces)
    arrays["seam"] = seam
    report = {"vertices": int(len(seam)), "seam_vertices": int(seam.sum()),
              "seam_fraction": float(seam.mean()),
              "atlas_seam_fraction": float(seam_vertices(body.face_uv.numpy(), faces).mean()),
              "area_share_by_island_kind": area_shares(face_uv, np.array([GROUPS.index(islands[i].group) for i in island_of]), GROUPS),
              "atlas_area_share_by_island_kind": area_shares(body.face_uv.numpy(), np.array([GROUPS.index(islands[i].group) for i in island_of]), GROUPS),
              "island_scales": scales, "resolutions": list(section.resolutions)}
    for res in section.resolutions:
        lk = build_lookup(face_uv, res)
        arrays.update(lk.save_arrays(f"lookup_{res}"))
        arrays[f"flip_{res}"] = flip_index(res)
        sampler = UVSampler(faces, face_uv, lk)
        for k, js, joints in ((14, body.lsp14, ref.lsp14[0]), (24, body.joints24, ref.joints24[0])):
            labels, vl = build_auv(sampler, ref.vertices[0], joints, js.mirror)
            arrays[f"auv{k}_{res}"] = labels.numpy()
            arrays[f"vertex_auv{k}"] = vl.numpy()
            cov = lk.mask
            counts = np.bincount(labels.numpy()[cov], minlength=k)
            report[f"auv{k}_{res}_texel_share"] = dict(zip(js.names, (counts / cov.sum()).round(4).tolist()))
        report[f"coverage_{res}"] = float(lk.mask.mean())
    with atomic_dir(out_dir) as tmp:
        np.savez(tmp / FILE, **arrays)
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n")
        write_figures(body, UVAssets(face_uv, faces, arrays, tuple(section.resolutions)), tmp / "figures",
                      res=max(section.resolutions))
    log(f"UV layout: {report['seam_fraction'] * 100:.2f} % seam vertices (atlas {report['atlas_seam_fraction'] * 100:.2f} %); "
        f"area shares {json.dumps({k: round(v, 3) for k, v in report['area_share_by_island_kind'].items()})}")
    return report
