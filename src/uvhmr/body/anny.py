"""Anny (PyPI `anny==0.6.2`, Apache-2.0) as the default body model.

Frame: metres, Z up, the body faces -Y, +X is the body's left. Pose: `local-ref` axis-angle per
bone of the 36-bone rig `anny-nohands-notoes-noeyes` (bone 0 `root` carries the global
orientation; its translation is the pelvis position). Shape: Anny's 6 phenotypes.

`export_anny` builds the model once (about 70 s and 0.8 GB of anny cache, deleted afterwards) and
writes the compact model data plus our assets; `AnnyBody` loads them in well under a second.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from uvhmr.body.joints import LSP14_NAMES, SMPL24_NAMES, make_joint_set, mirror_permutation
from uvhmr.body.base import ASSETS, EXPORT_VERSION, BodyModel, face_mirror_from_vertices, joint_set_arrays
from uvhmr.io import atomic_dir, sort_safetensors_metadata

MODEL_DATA = "model.safetensors"

# LSP-14 joints as Anny bone heads (reference/anny.md §4); head top is a vertex.
LSP14_BONES = {
    "R_ankle": "foot.R", "R_knee": "lowerleg01.R", "R_hip": "upperleg01.R",
    "L_hip": "upperleg01.L", "L_knee": "lowerleg01.L", "L_ankle": "foot.L",
    "R_wrist": "wrist.R", "R_elbow": "lowerarm01.R", "R_shoulder": "upperarm01.R",
    "L_shoulder": "upperarm01.L", "L_elbow": "lowerarm01.L", "L_wrist": "wrist.L",
    "neck": "neck03",
}
# Base-mesh index of the top-of-head vertex (the highest vertex in 196/200 sampled bodies).
HEAD_TOP_BASE_VERTEX = 881

# SMPL-24 on the 36-bone rig; the hand and toe joints come from vertex rings (below).
SMPL24_BONES = {
    "pelvis": "root", "L_hip": "upperleg01.L", "R_hip": "upperleg01.R", "spine1": "spine04",
    "L_knee": "lowerleg01.L", "R_knee": "lowerleg01.R", "spine2": "spine02",
    "L_ankle": "foot.L", "R_ankle": "foot.R", "spine3": "spine01", "neck": "neck01",
    "L_collar": "clavicle.L", "R_collar": "clavicle.R", "head": "head",
    "L_shoulder": "upperarm01.L", "R_shoulder": "upperarm01.R", "L_elbow": "lowerarm01.L",
    "R_elbow": "lowerarm01.R", "L_wrist": "wrist.L", "R_wrist": "wrist.R",
}
# Vertex rings: (bone whose skinned vertices form the part, fraction along bone head -> farthest
# vertex). SMPL's hand joint sits near the knuckles, its foot joint near the ball of the foot.
RINGS = {"L_hand": ("wrist.L", 0.50), "L_foot": ("foot.L", 0.72)}
RING_HALF_WIDTH = 0.05


# What NVIDIA Warp (imported and initialised by anny) writes natively on a machine without a CUDA
# driver: expected there, and nothing the user can act on.
WARP_NOISE = ("Could not find or load the NVIDIA CUDA driver",)


@contextlib.contextmanager
def _filtered_native_stderr(drop=WARP_NOISE):
    """Capture file descriptor 2 (native libraries write there directly, past sys.stderr) and
    write back every line except those containing one of `drop`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(d in ln for d in drop)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_anny():
    """`import anny`, quietly: anny initialises NVIDIA Warp on import, which prints a 6-line banner
    (Warp's version, devices, kernel cache) and, on a CPU machine, a CUDA-driver warning, at every
    command that loads the body model. Warp's warnings and errors still show."""
    if "anny" not in sys.modules:
        with _filtered_native_stderr():
            try:
                import warp
                warp.config.log_level = warp.LOG_WARNING   # the banner is logged at INFO
                warp.init()                                 # now, inside the filter: anny would on first use
            except ImportError:                             # an anny without Warp: nothing to silence
                pass
            import anny  # noqa: F401
    import anny
    return anny


def _construct(model_data_path: Path):
    anny = import_anny()
    from anny.models.model_data import ModelData
    m = anny.Anny.from_model_data(ModelData.load_safetensors(str(model_data_path)),
                                  pose_parameterization="local-ref", bone_orientation="cached",
                                  root_identity_orientation=True)
    return m.to(torch.float32)


def _vertex_ring(ref_vertices: np.ndarray, part: np.ndarray, origin: np.ndarray, frac: float):
    """Vertices of `part` whose distance along origin -> farthest part vertex is within
    frac +- RING_HALF_WIDTH of that length. -> (indices, equal weights)."""
    idx = np.flatnonzero(part)
    rel = ref_vertices[idx] - origin
    tip = rel[np.argmax(np.linalg.norm(rel, axis=1))]
    length = np.linalg.norm(tip)
    t = rel @ (tip / length) / length
    ring = idx[np.abs(t - frac) <= RING_HALF_WIDTH]
    if len(ring) < 8:
        raise RuntimeError(f"vertex ring at {frac} of the part holds only {len(ring)} vertices")
    return ring, np.ones(len(ring))


def anny_vertex_mirror(base_mesh_vertex_indices: np.ndarray, anny_root: Path) -> np.ndarray:
    """(V,) topology vertex -> its mirror, from MakeHuman's hm08.mirror over base-mesh indices."""
    bmi = np.asarray(base_mesh_vertex_indices, dtype=np.int64)
    mir = np.loadtxt(anny_root / "data/mpfb2/mesh_metadata/hm08.mirror", dtype=np.int64, usecols=(0, 1))
    base_mirror = np.empty(mir[:, 0].max() + 1, dtype=np.int64)
    base_mirror[mir[:, 0]] = mir[:, 1]
    base_to_topo = -np.ones(len(base_mirror), dtype=np.int64)
    base_to_topo[bmi] = np.arange(len(bmi))
    vertex_mirror = base_to_topo[base_mirror[bmi]]
    if (vertex_mirror < 0).any():
        raise RuntimeError("some Anny vertices have no mirror in this topology")
    return vertex_mirror


def symmetrize_model_data(md, vertex_mirror: np.ndarray, bone_mirror: np.ndarray) -> float:
    """Make Anny's model data exactly left-right symmetric, in place. -> largest change (m).

    Anny's template is symmetric, but its compact shape basis, bone heads and bone orientations
    are not quite (sampled adults: up to 0.7 mm on vertices, 2 mm at the neck after posing), so
    a mirrored pose would not give the mirrored mesh. Every quantity enters the model linearly
    (orientations before a special-Procrustes projection, which commutes with the mirror), so
    averaging each basis element with its mirror image makes every shape and pose symmetric.
    """
    M = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))
    vm, bm = torch.as_tensor(vertex_mirror), torch.as_tensor(bone_mirror)
    change = 0.0

    def points(t, perm):   # (..., N, 3)
        return 0.5 * (t + t[..., perm, :] * M.diagonal().to(t.dtype))

    def frames(t, perm):   # (..., N, 3, 3) rotations: mirror image is M R M
        return 0.5 * (t + M.to(t.dtype) @ t[..., perm, :, :] @ M.to(t.dtype))

    for name, fn, perm in (("template_vertices", points, vm), ("blendshapes", points, vm),
                           ("template_bone_heads", points, bm), ("bone_heads_blendshapes", points, bm),
                           ("bone_template_orientation_matrices", frames, bm),
                           ("bone_orientation_blendshapes", frames, bm)):
        t = getattr(md, name)
        new = fn(t, perm)
        if name.startswith("template"):
            change = max(change, float((new - t).abs().max()))
        object.__setattr__(md, name, new.to(t.dtype))  # ModelData is a frozen dataclass
    import roma
    ref = md.reference_bone_orientations
    object.__setattr__(md, "reference_bone_orientations", roma.special_procrustes(frames(ref, bm)).to(ref.dtype))
    return change


def anny_assets(m, anny_root: Path) -> dict:
    """Everything but the skinning that the interface needs, from a constructed Anny model."""
    faces = m.faces.numpy().astype(np.int64)
    face_uv = m.texture_coordinates[m.face_texture_coordinate_indices].numpy().astype(np.float32)
    bones = list(m.bone_labels)
    bmi = m.base_mesh_vertex_indices.numpy()

    vertex_mirror = anny_vertex_mirror(bmi, anny_root)
    base_to_topo = -np.ones(bmi.max() + 1, dtype=np.int64)
    base_to_topo[bmi] = np.arange(len(bmi))

    # Skinning part per vertex: the bone with the largest weight.
    vb, vw = m.vertex_bone_indices.numpy(), m.vertex_bone_weights.numpy()
    vertex_part = vb[np.arange(len(vb)), vw.argmax(1)].astype(np.int64)

    with torch.no_grad():
        out = m(pose_parameters=torch.eye(4).repeat(1, len(bones), 1, 1))
    ref_v = out["vertices"][0].double().numpy()
    ref_j = out["bone_poses"][0, :, :3, 3].double().numpy()

    head_top = int(base_to_topo[HEAD_TOP_BASE_VERTEX])
    nv = len(bmi)
    lsp14 = make_joint_set(LSP14_NAMES, [bones.index(LSP14_BONES[n]) if n in LSP14_BONES else -1 for n in LSP14_NAMES],
                           {LSP14_NAMES.index("head_top"): (np.array([head_top]), np.ones(1))}, nv)
    rows = {}
    for name, (bone, frac) in RINGS.items():
        b = bones.index(bone)
        ring, w = _vertex_ring(ref_v, vertex_part == b, ref_j[b], frac)
        rows[SMPL24_NAMES.index(name)] = (ring, w)
        rows[SMPL24_NAMES.index("R_" + name[2:])] = (vertex_mirror[ring], w)  # exact symmetry
    joints24 = make_joint_set(SMPL24_NAMES, [bones.index(SMPL24_BONES[n]) if n in SMPL24_BONES else -1 for n in SMPL24_NAMES], rows, nv)

    return {
        "backend": np.array("anny"), "export_version": np.array(EXPORT_VERSION), "faces": faces, "face_uv": face_uv,
        "vertex_mirror": vertex_mirror, "face_mirror": face_mirror_from_vertices(faces, vertex_mirror),
        "joint_names": np.array(bones), "joint_parents": np.array(m.bone_parents, dtype=np.int64),
        "joint_mirror": mirror_permutation(bones), "shape_labels": np.array(m.phenotype_labels),
        "vertex_part": vertex_part, "base_mesh_vertex_indices": bmi.astype(np.int64),
        **joint_set_arrays("lsp14", lsp14), **joint_set_arrays("joints24", joints24),
    }


def export_anny(rig: str, topology: str, age_range: tuple[float, float], out_dir: Path, cache_dir: Path,
                log=print) -> None:
    """Build Anny once and write `model.safetensors` + `assets.npz` into `out_dir` (atomically).

    Anny's 0.8 GB build cache goes to `cache_dir` (inside the project) and is removed afterwards.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["ANNY_CACHE_DIR"] = str(cache_dir)
    anny = import_anny()
    import anny.paths
    anny.paths.set_anny_cache_path(cache_dir)
    try:
        log(f"building Anny (rig {rig}, topology {topology}); the first build takes about 70 s")
        m = anny.Anny(rig=rig, topology=topology).to(torch.float32)
        md = m.to_model_data()
        root = anny.paths.get_anny_root_dir()
        change = symmetrize_model_data(md, anny_vertex_mirror(md.base_mesh_vertex_indices.numpy(), root),
                                       mirror_permutation(list(m.bone_labels)))
        log(f"symmetrized the model data (template moved by at most {change * 1000:.3f} mm)")
        with atomic_dir(out_dir) as tmp:
            md.save_safetensors(str(tmp / MODEL_DATA))
            sort_safetensors_metadata(tmp / MODEL_DATA)   # byte-identical rebuilds, stable hashes
            small = _construct(tmp / MODEL_DATA)  # the object every later stage will load
            np.savez(tmp / ASSETS, age_range=np.array(age_range, dtype=np.float32),
                     **anny_assets(small, root))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    log(f"wrote {out_dir}/{MODEL_DATA} and {out_dir}/{ASSETS}")


class AnnyBody(BodyModel):
    name = "anny"
    up_axis = "z"

    def __init__(self, directory: Path, assets: dict):
        super().__init__(assets)
        self.model = _construct(Path(directory) / MODEL_DATA)
        self.age_range = tuple(float(a) for a in assets["age_range"])

    def _skin(self, pose, shape, transl):
        import roma
        b, j, _ = pose.shape
        P = torch.eye(4, dtype=pose.dtype, device=pose.device).repeat(b, j, 1, 1)
        P[:, :, :3, :3] = roma.rotvec_to_rotmat(pose)
        P[:, 0, :3, 3] = transl
        out = self.model(pose_parameters=P, phenotype_kwargs=shape)
        return out["vertices"], out["bone_poses"][..., :3, 3]

    def sample_shape(self, batch: int, seed: int) -> torch.Tensor:
        """(batch, 6) phenotypes from Anny's age-conditioned sampler (WHO-calibrated), adults by
        default (ages `age_range` years, gender uniform)."""
        from anny.shape_distribution import SimpleShapeDistribution
        dev, dt = self.faces.device, torch.float32
        dist = SimpleShapeDistribution(
            self.model,
            morphological_age_distribution=torch.distributions.Uniform(torch.tensor(self.age_range[0], dtype=dt, device=dev),
                                                                       torch.tensor(self.age_range[1], dtype=dt, device=dev)),
            gender_distribution=torch.distributions.Uniform(torch.tensor(0.0, dtype=dt, device=dev), torch.tensor(1.0, dtype=dt, device=dev)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _, pheno = dist.sample(batch)
        return torch.stack([torch.as_tensor(pheno[k], dtype=dt, device=dev) for k in self.shape_labels], dim=1)

    def mean_shape(self) -> torch.Tensor:
        """All phenotypes 0.5 except height 0.25 (reference/anny.md: realistic adults need about 0.25)."""
        s = torch.full((len(self.shape_labels),), 0.5, device=self.faces.device)
        s[self.shape_labels.index("height")] = 0.25
        return s
