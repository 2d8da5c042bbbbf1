"""SMPL (user-supplied, licensed files) as the optional body model, through `smplx==0.1.28`.

Selected with `body_model.backend: smpl`; nothing here runs unless the user points
`body_model.smpl_dir` at a folder holding `SMPL_{NEUTRAL,MALE,FEMALE}.pkl` and
`body_model.smpl_uv_obj` at an OBJ with SMPL's topology and UVs. The SMPL data itself is never
copied into the project: the export holds only derived assets (mirror maps, joint sets, UVs) and
the absolute path of the `.pkl`, which `SmplBody` reads again at load time.

Frame: metres, Y up, the body faces +Z, +X is the body's left (as on Anny). Pose: axis-angle per
SMPL joint (joint 0 = global orientation, joints 1..23 = smplx's `body_pose`). SMPL's zero pose
is a T-pose (Anny's is A-like). Shape: the first `num_betas` betas, prior N(0, 1).

Pickle formats: the official files pickle chumpy arrays and a scipy.sparse `J_regressor`.
smplx unpickles them only with `chumpy` installed (`pip install --no-build-isolation chumpy`,
which needs scipy and, on numpy >= 1.24, the `np.bool`/`np.int`/`inspect.getargspec` aliases
chumpy expects). uvhmr does not depend on chumpy: alternatively convert the file once, wherever
chumpy works, into a plain pickle of numpy arrays with the same keys (`v_template`, `shapedirs`,
`posedirs`, `J_regressor` (dense, or scipy.sparse if scipy is installed), `weights`,
`kintree_table`, `f`), e.g. `{k: np.asarray(v.toarray() if hasattr(v, "toarray") else v)}`,
and name it `SMPL_<GENDER>.pkl`.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch

from uvhmr.body.joints import LSP14_NAMES, SMPL24_NAMES, SMPL24_PARENTS, SMPL24_TO_LSP14, make_joint_set, mirror_permutation
from uvhmr.body.base import ASSETS, EXPORT_VERSION, BodyModel, face_mirror_from_vertices, joint_set_arrays
from uvhmr.config import SMPL_FILES, check_smpl_files
from uvhmr.errors import AssetError
from uvhmr.io import atomic_dir

# Largest distance (m) between a template vertex reflected through x = 0 and its mirror vertex.
MIRROR_TOLERANCE = 1e-3
# smplx appends vertex keypoints (nose, eyes, toes, finger tips) at SMPL+H vertex indices; we use
# only the 24 rig joints, so select vertex 0 five times (valid on any mesh) and nothing else.
_NO_EXTRA_JOINTS = dict(vertex_ids={k: 0 for k in ("nose", "reye", "leye", "rear", "lear")},
                        use_hands=False, use_feet_keypoints=False)


def smpl_file(bm) -> Path:
    """The SMPL pickle that `bm` selects (smpl_dir / SMPL_<GENDER>.pkl), absolute."""
    return (Path(bm.smpl_dir).expanduser() / SMPL_FILES[bm.smpl_gender]).resolve()


# ---------------------------------------------------------------------------------- UV OBJ

def read_uv_obj(path) -> tuple[np.ndarray, np.ndarray]:
    """Read an OBJ's topology and UVs -> faces (F, 3) int64 vertex indices (0-based),
    face_uv (F, 3, 2) float32 per-corner UVs (v up, as written).

    Reads `v`, `vt` and `f` lines (`a/at`, `a/at/an`; 1-based or negative indices); quads are
    split into two triangles; every other line is ignored. Raises ValueError naming the file
    (and line) for anything malformed.
    """
    path = Path(path)
    n_v = 0
    uv: list[tuple[float, float]] = []
    corners: list[tuple[tuple[int, int], ...]] = []   # per polygon: (vertex, uv) 0-based
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            tag = parts[0]
            where = f"{path}:{lineno}"
            if tag == "v":
                if len(parts) < 4:
                    raise ValueError(f"{where}: a `v` line needs 3 coordinates, got {line.strip()!r}")
                n_v += 1
            elif tag == "vt":
                try:
                    uv.append((float(parts[1]), float(parts[2])))
                except (IndexError, ValueError):
                    raise ValueError(f"{where}: a `vt` line needs 2 numbers, got {line.strip()!r}") from None
            elif tag == "f":
                if len(parts) not in (4, 5):
                    raise ValueError(f"{where}: only triangles and quads are supported, got {len(parts) - 1} corners")
                poly = []
                for c in parts[1:]:
                    ids = c.split("/")
                    if len(ids) < 2 or not ids[1]:
                        raise ValueError(f"{where}: face corner {c!r} has no UV index (expected a/at or a/at/an)")
                    try:
                        vi, ti = int(ids[0]), int(ids[1])
                    except ValueError:
                        raise ValueError(f"{where}: face corner {c!r} is not a/at with integer indices") from None
                    vi = vi - 1 if vi > 0 else n_v + vi
                    ti = ti - 1 if ti > 0 else len(uv) + ti
                    if not (0 <= vi < n_v) or not (0 <= ti < len(uv)):
                        raise ValueError(f"{where}: face corner {c!r} points past the {n_v} vertices / {len(uv)} UVs read so far")
                    poly.append((vi, ti))
                corners.append(tuple(poly))
    if not corners:
        raise ValueError(f"{path}: no faces (`f` lines) in this OBJ")
    tris = []
    for poly in corners:
        tris.append(poly[:3])
        if len(poly) == 4:
            tris.append((poly[0], poly[2], poly[3]))
    arr = np.array(tris, dtype=np.int64)                     # (F, 3, 2)
    faces = arr[..., 0]
    face_uv = np.asarray(uv, dtype=np.float32)[arr[..., 1]]
    return faces, face_uv


def _align_uv(smpl_faces: np.ndarray, num_vertices: int, obj_path, obj_faces: np.ndarray, obj_uv: np.ndarray) -> np.ndarray:
    """Per-corner UVs of SMPL's own faces (order and corner order), from the OBJ's faces."""
    if obj_faces.max() + 1 > num_vertices or len(obj_faces) != len(smpl_faces):
        raise ValueError(f"{obj_path}: not SMPL's topology: {obj_faces.max() + 1} vertices and {len(obj_faces)} faces, "
                         f"SMPL has {num_vertices} and {len(smpl_faces)} (body_model.smpl_uv_obj)")
    index = {tuple(sorted(f)): i for i, f in enumerate(obj_faces.tolist())}
    out = np.empty((len(smpl_faces), 3, 2), dtype=np.float32)
    for i, f in enumerate(smpl_faces.tolist()):
        j = index.get(tuple(sorted(f)))
        if j is None:
            raise ValueError(f"{obj_path}: not SMPL's topology: SMPL face {i} {f} is not among its faces (body_model.smpl_uv_obj)")
        where = {v: k for k, v in enumerate(obj_faces[j].tolist())}
        out[i] = obj_uv[j, [where[v] for v in f]]
    return out


# ---------------------------------------------------------------------------------- smplx

class SmplFileError(AssetError, RuntimeError):
    """The user's SMPL pickle cannot be loaded (one line at the CLI; a RuntimeError, as before)."""


def _build_smpl(pkl: Path, gender: str, num_betas: int):
    """smplx.SMPL from a pickle, without member parameters or extra vertex keypoints."""
    import smplx
    pkl = Path(pkl)
    if not pkl.is_file():
        raise FileNotFoundError(f"{pkl}: SMPL file not found (body_model.smpl_dir); the export only records its path")
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # smplx prints a warning for 10-beta files
            m = smplx.SMPL(model_path=str(pkl), gender=gender, num_betas=num_betas, create_betas=False,
                           create_global_orient=False, create_body_pose=False, create_transl=False,
                           **_NO_EXTRA_JOINTS)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in ("chumpy", "scipy"):
            raise SmplFileError(
                f"{pkl}: this SMPL pickle needs the `{e.name}` module to unpickle (the official files hold chumpy "
                "arrays and a scipy.sparse J_regressor). Either install chumpy and scipy "
                "(pip install scipy; pip install --no-build-isolation chumpy) or convert the file once into a plain "
                "pickle of numpy arrays (see uvhmr/body/smpl.py)") from e
        raise
    except Exception as e:
        raise SmplFileError(f"{pkl}: could not load as an SMPL model ({type(e).__name__}: {e}); "
                            "expected the SMPL_<GENDER>.pkl of smpl.is.tue.mpg.de") from e
    return m.to(torch.float32)


def _vertex_mirror(template: np.ndarray, where: str) -> tuple[np.ndarray, float]:
    """(V, 3) template -> (V,) nearest vertex to each reflected vertex, and the largest distance."""
    v = torch.as_tensor(template, dtype=torch.float64)
    reflected = v * v.new_tensor([-1.0, 1.0, 1.0])
    idx, dist = [], []
    for chunk in reflected.split(2048):
        d = torch.cdist(chunk, v)
        m = d.min(dim=1)
        idx.append(m.indices)
        dist.append(m.values)
    mirror = torch.cat(idx).numpy().astype(np.int64)
    worst = float(torch.cat(dist).max())
    if worst > MIRROR_TOLERANCE:
        raise ValueError(f"{where}: the SMPL template is not left-right symmetric about x = 0 (a reflected vertex is "
                         f"{worst * 1000:.2f} mm from the nearest vertex; tolerance {MIRROR_TOLERANCE * 1000:.1f} mm)")
    if not np.array_equal(mirror[mirror], np.arange(len(mirror))):
        raise ValueError(f"{where}: the nearest-vertex mirror map of the SMPL template is not one-to-one")
    return mirror, worst


def smpl_assets(m, pkl: Path, obj_path, head_top_vertex: int) -> dict:
    """Everything but the skinning that the interface needs, from a constructed smplx.SMPL."""
    faces = np.asarray(m.faces_tensor.numpy(), dtype=np.int64)
    template = m.v_template.double().numpy()
    nv = len(template)
    parents = m.parents.numpy().astype(np.int64)
    if tuple(parents.tolist()) != SMPL24_PARENTS:
        raise ValueError(f"{pkl}: kintree_table does not hold SMPL's 24-joint tree (parents {parents.tolist()})")
    if m.J_regressor.shape != (24, nv) or m.lbs_weights.shape != (nv, 24):
        raise ValueError(f"{pkl}: J_regressor {tuple(m.J_regressor.shape)} / weights {tuple(m.lbs_weights.shape)} "
                         f"are not (24, {nv}) / ({nv}, 24)")
    if not 0 <= head_top_vertex < nv:
        raise ValueError(f"body_model.smpl_head_top_vertex: expected a vertex index below {nv}, got {head_top_vertex}")

    obj_faces, obj_uv = read_uv_obj(obj_path)
    face_uv = _align_uv(faces, nv, obj_path, obj_faces, obj_uv)

    vertex_mirror, worst = _vertex_mirror(template, str(pkl))
    vertex_part = m.lbs_weights.numpy().argmax(axis=1).astype(np.int64)
    lsp14 = make_joint_set(LSP14_NAMES, list(SMPL24_TO_LSP14),
                           {LSP14_NAMES.index("head_top"): (np.array([head_top_vertex]), np.ones(1))}, nv)
    joints24 = make_joint_set(SMPL24_NAMES, list(range(24)), {}, nv)
    betas = int(m.shapedirs.shape[-1])
    return {
        "backend": np.array("smpl"), "export_version": np.array(EXPORT_VERSION), "faces": faces, "face_uv": face_uv,
        "vertex_mirror": vertex_mirror, "face_mirror": face_mirror_from_vertices(faces, vertex_mirror),
        "joint_names": np.array(SMPL24_NAMES), "joint_parents": parents,
        "joint_mirror": mirror_permutation(SMPL24_NAMES),
        "shape_labels": np.array([f"beta{i:02d}" for i in range(betas)]),
        "vertex_part": vertex_part,
        **joint_set_arrays("lsp14", lsp14), **joint_set_arrays("joints24", joints24),
        "smpl_model_path": np.array(str(pkl)), "smpl_gender": np.array(m.gender), "num_betas": np.array(betas),
        "mirror_max_distance": np.array(worst),
    }


def export_smpl(bm, out_dir: Path, log=print) -> None:
    """Write `assets.npz` for the user's SMPL file into `out_dir` (atomically).

    Only derived data and the pickle's absolute path are written, never the SMPL data itself.
    """
    check_smpl_files(bm, "params.yaml")
    pkl = smpl_file(bm)
    log(f"loading SMPL from {pkl} (gender {bm.smpl_gender}, {bm.smpl_num_betas} betas requested)")
    m = _build_smpl(pkl, bm.smpl_gender, bm.smpl_num_betas)
    obj = Path(bm.smpl_uv_obj).expanduser()
    try:
        assets = smpl_assets(m, pkl, obj, bm.smpl_head_top_vertex)
    except ValueError as e:
        if not str(e).startswith((str(pkl), str(obj))):    # not a fault of the user's files: a bug, keep its traceback
            raise
        raise SmplFileError(str(e)) from e
    if int(assets["num_betas"]) != bm.smpl_num_betas:
        log(f"note: the SMPL file provides {int(assets['num_betas'])} betas (body_model.smpl_num_betas is {bm.smpl_num_betas})")
    log(f"SMPL: {len(assets['vertex_mirror'])} vertices, {len(assets['faces'])} faces; left-right mirror map "
        f"within {float(assets['mirror_max_distance']) * 1000:.3f} mm")
    with atomic_dir(out_dir) as tmp:
        np.savez(tmp / ASSETS, **assets)
    log(f"wrote {Path(out_dir) / ASSETS}")


class SmplBody(BodyModel):
    """SMPL through smplx. Zero pose = SMPL's T-pose; shape = betas, prior N(0, 1)."""

    name = "smpl"
    up_axis = "y"

    def __init__(self, directory: Path, assets: dict):
        super().__init__(assets)
        pkl = Path(str(assets["smpl_model_path"]))
        self.model = _build_smpl(pkl, str(assets["smpl_gender"]), int(assets["num_betas"]))
        faces = self.model.faces_tensor
        if faces.shape != self.faces.shape or not torch.equal(faces, self.faces) \
                or int(self.model.shapedirs.shape[-1]) != len(self.shape_labels):
            raise ValueError(f"{pkl}: this SMPL file no longer matches the export in {directory}; rerun the body_model rule")

    def _skin(self, pose, shape, transl):
        b = pose.shape[0]
        out = self.model(betas=shape, global_orient=pose[:, 0], body_pose=pose[:, 1:].reshape(b, 69),
                         transl=transl, return_verts=True)
        return out.vertices, out.joints[:, :24]

    def sample_shape(self, batch: int, seed: int) -> torch.Tensor:
        """(batch, num_betas) betas ~ N(0, 1), deterministic by seed."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(batch, len(self.shape_labels), generator=g, dtype=torch.float32).to(self.faces.device)

    def mean_shape(self) -> torch.Tensor:
        return torch.zeros(len(self.shape_labels), device=self.faces.device)
