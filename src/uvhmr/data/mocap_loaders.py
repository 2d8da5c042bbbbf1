"""Readers for licensed SMPL mocap the user may have (selected by `mocap.source`):

- `amass`: AMASS `.npz` per sequence: `poses` (T, 156) SMPL+H (or (T, 165) SMPL-X, (T, 72) SMPL),
  `betas` (16,) or more, `trans` (T, 3), `mocap_framerate` (or `mocap_frame_rate`). AMASS's
  `shape.npz` files (betas only) are skipped. SMPL+H has no SMPL hand joints (SMPL joints 22, 23);
  as in the paper's appendix C they are drawn from SPIN fits when `mocap.spin_fits` names a file
  (otherwise left at zero rotation).
- `aistpp`: AIST++ motion `.pkl`: `smpl_poses` (T, 72), `smpl_trans` (T, 3), `smpl_scaling` (1,),
  60 fps. AIST++ has no betas: the paper's appendix C samples them from SPIN fits (`mocap.spin_fits`);
  without that file they come from the body model's shape prior (N(0, 1) for SMPL).
- `spin_fits`: SPIN / DecoMR fits: `.npz` with `pose` (N, 72) and `shape` (or `betas`) (N, 10),
  optionally `has_smpl` (rows with 0 are dropped), or SPIN's static fits `.npy` (N, 82) = pose + betas.

All of them are SMPL parameters, so they need `body_model.backend: smpl` (an SMPL pose does not
drive Anny's rig); with Anny they stop with a message saying so. The global orientation (joint 0)
and the translation are dropped: the mocap rule's output is in the body frame, and the dataset rule
and train_ik draw the global orientation from `uvhmr.data.orientation`.

Sequences are listed first (`list_sequences`, from headers only) and read one at a time
(`read_sequence`), so millions of frames stream through the mocap rule.
"""
from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from uvhmr.errors import ConfigError

SOURCES = ("amass", "aistpp", "spin_fits")
SMPL_JOINTS = 24
AIST_FPS = 60.0
SPIN_CHUNK = 1000          # SPIN fits have no sequences: frames are split in chunks of this size


class MocapSourceError(ConfigError):
    """A licensed-mocap problem, worded as one line naming the file or the parameter (a
    ConfigError, so the CLI reports it as one line)."""


def require_smpl(source: str, backend: str) -> None:
    """Refuse SMPL mocap on a body model other than SMPL, with a message that says what to do."""
    if source in SOURCES and backend != "smpl":
        raise MocapSourceError(
            f"mocap.source: {source} holds SMPL parameters and needs body_model.backend: smpl (with your SMPL files in "
            f"body_model.smpl_dir); the body model here is {backend!r}. With Anny, use mocap.source: prior "
            "(the built-in pose prior)")


@dataclass(frozen=True)
class Sequence:
    path: Path
    key: str            # file path relative to the mocap folder (plus #chunk for SPIN fits)
    frames: int         # frames after subsampling
    stride: int = 1     # keep every stride-th frame of the file
    start: int = 0      # then rows start .. stop - 1 of those (SPIN chunks, a split sequence)
    stop: int = -1      # -1: to the end


def list_files(source: str, folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise MocapSourceError(f"mocap.files: expected a folder of {source} files, got {str(folder)!r} (no such folder)")
    pattern = {"amass": ("*.npz",), "aistpp": ("*.pkl",), "spin_fits": ("*.npz", "*.npy")}[source]
    files = sorted({p for pat in pattern for p in folder.rglob(pat) if p.is_file()})
    if not files:
        raise MocapSourceError(f"mocap.files: no {source} files ({', '.join(pattern)}) under {folder}")
    return files


def list_sequences(source: str, folder: str | Path, fps: float, log=print) -> list[Sequence]:
    """Every sequence under `folder`, with its frame count after subsampling to at most `fps`."""
    folder = Path(folder)
    out = []
    for f in list_files(source, folder):
        rel = f.relative_to(folder).as_posix()
        if source == "amass":
            info = _npz_header(f)
            if "poses" not in info:
                log(f"mocap: skipping {f} (no `poses`: {', '.join(sorted(info)) or 'empty'})")
                continue
            rate = _amass_rate(f)
            stride = max(1, int(round(rate / fps)))
            out.append(Sequence(f, rel, len(range(0, info["poses"][0], stride)), stride))
        elif source == "aistpp":
            d = _read_pkl(f)
            stride = max(1, int(round(AIST_FPS / fps)))
            out.append(Sequence(f, rel, len(range(0, len(d["smpl_poses"]), stride)), stride))
        else:
            n = len(read_spin_fits(f)[0])
            for c, a in enumerate(range(0, n, SPIN_CHUNK)):
                b = min(n, a + SPIN_CHUNK)
                out.append(Sequence(f, f"{rel}#{c}", b - a, 1, a, b))
    if not out:
        raise MocapSourceError(f"mocap.files: no usable {source} sequences under {folder}")
    return out


def read_sequence(source: str, seq: Sequence, num_betas: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """-> pose (n, 24, 3) float32 SMPL axis-angle with joint 0 zeroed, shape (n, num_betas) float32
    or None (AIST++: no betas; the caller samples them)."""
    rows = slice(seq.start, None if seq.stop < 0 else seq.stop)
    if source == "amass":
        pose, betas = read_amass(seq.path)
        pose = pose[::seq.stride][rows]
        shape = np.broadcast_to(_betas(betas, num_betas, seq.path), (len(pose), num_betas))
    elif source == "aistpp":
        pose = read_aistpp(seq.path)[0][::seq.stride][rows]
        shape = None
    else:
        pose, betas = read_spin_fits(seq.path)
        pose, shape = pose[rows], np.stack([_betas(b, num_betas, seq.path) for b in betas[rows]])
    pose = np.array(pose, dtype=np.float32)
    pose[:, 0] = 0.0
    return pose, None if shape is None else np.ascontiguousarray(shape, dtype=np.float32)


# ---------------------------------------------------------------------------------- formats

def read_amass(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """AMASS .npz -> SMPL pose (T, 24, 3) (hand joints 22, 23 zero), betas (K,)."""
    z = _load_npz(path)
    for k in ("poses", "betas", "trans"):
        if k not in z:
            raise MocapSourceError(f"{path}: not an AMASS sequence: no `{k}` (keys: {', '.join(sorted(z))})")
    poses, trans = np.asarray(z["poses"]), np.asarray(z["trans"])
    if poses.ndim != 2 or poses.shape[1] not in (72, 156, 165) or poses.shape[1] % 3:
        raise MocapSourceError(f"{path}: `poses` must be (T, 156) SMPL+H, (T, 165) SMPL-X or (T, 72) SMPL, got {poses.shape}")
    if trans.shape != (len(poses), 3):
        raise MocapSourceError(f"{path}: `trans` must be ({len(poses)}, 3), got {trans.shape}")
    out = np.zeros((len(poses), SMPL_JOINTS, 3), dtype=np.float32)
    body = 24 if poses.shape[1] == 72 else 22              # SMPL+H / SMPL-X: 22 body joints, then hands
    out[:, :body] = poses[:, :body * 3].reshape(-1, body, 3)
    return out, np.asarray(z["betas"], dtype=np.float32).reshape(-1)


def read_aistpp(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """AIST++ .pkl -> SMPL pose (T, 24, 3), trans (T, 3), scaling."""
    d = _read_pkl(path)
    poses, trans, scaling = np.asarray(d["smpl_poses"]), np.asarray(d["smpl_trans"]), np.asarray(d["smpl_scaling"])
    if poses.ndim != 2 or poses.shape[1] != 72:
        raise MocapSourceError(f"{path}: `smpl_poses` must be (T, 72), got {poses.shape}")
    if trans.shape != (len(poses), 3):
        raise MocapSourceError(f"{path}: `smpl_trans` must be ({len(poses)}, 3), got {trans.shape}")
    if scaling.size != 1 or not np.isfinite(scaling).all() or float(scaling.reshape(-1)[0]) <= 0:
        raise MocapSourceError(f"{path}: `smpl_scaling` must be one positive number, got {scaling.tolist()}")
    return poses.reshape(-1, SMPL_JOINTS, 3).astype(np.float32), trans.astype(np.float32), float(scaling.reshape(-1)[0])


def read_spin_fits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SPIN/DecoMR fits (.npz pose + shape, or .npy (N, 82)) -> pose (N, 24, 3), betas (N, K)."""
    path = Path(path)
    if path.suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise MocapSourceError(f"{path}: not a readable .npy file ({e})") from None
        if a.ndim != 2 or a.shape[1] < 73:
            raise MocapSourceError(f"{path}: SPIN static fits must be (N, 82) = 72 pose + 10 betas, got {a.shape}")
        pose, betas = a[:, :72], a[:, 72:]
    else:
        z = _load_npz(path)
        if "pose" not in z or not ({"shape", "betas"} & set(z)):
            raise MocapSourceError(f"{path}: a SPIN/DecoMR fit file needs `pose` and `shape` (keys: {', '.join(sorted(z))})")
        pose, betas = np.asarray(z["pose"]), np.asarray(z["shape"] if "shape" in z else z["betas"])
        if pose.ndim != 2 or pose.shape[1] != 72 or betas.ndim != 2 or len(betas) != len(pose):
            raise MocapSourceError(f"{path}: `pose` must be (N, 72) and `shape` (N, K), got {pose.shape} and {betas.shape}")
        if "has_smpl" in z:
            keep = np.asarray(z["has_smpl"]).reshape(-1) > 0
            if len(keep) != len(pose):
                raise MocapSourceError(f"{path}: `has_smpl` has {len(keep)} rows, `pose` {len(pose)}")
            pose, betas = pose[keep], betas[keep]
    return pose.reshape(-1, SMPL_JOINTS, 3).astype(np.float32), betas.astype(np.float32)


def _betas(b: np.ndarray, k: int, path) -> np.ndarray:
    b = np.asarray(b, dtype=np.float32).reshape(-1)
    out = np.zeros(k, dtype=np.float32)
    out[:min(k, len(b))] = b[:k]
    if not np.isfinite(out).all():
        raise MocapSourceError(f"{path}: betas are not finite")
    return out


def _load_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise MocapSourceError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def _npz_header(path: Path) -> dict:
    """{array name: shape} of an .npz without reading the arrays."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if not name.endswith(".npy"):
                    continue
                with zf.open(name) as fh:
                    version = np.lib.format.read_magic(fh)
                    shape, _, _ = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0(fh))
                out[name[:-4]] = shape
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise MocapSourceError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    return out


def _amass_rate(path: Path) -> float:
    try:
        with np.load(path, allow_pickle=False) as z:          # lazy: reads only the rate
            for k in ("mocap_framerate", "mocap_frame_rate"):
                if k in z.files:
                    rate = float(np.asarray(z[k]).reshape(-1)[0])
                    if rate > 0:
                        return rate
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise MocapSourceError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    raise MocapSourceError(f"{path}: no `mocap_framerate` (or `mocap_frame_rate`): cannot subsample to mocap.fps")


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, strings and numpy arrays, nothing else: a downloaded .pkl
    cannot run code when it is read (plain pickle.load calls whatever a file names)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"), ("_codecs", "encode"),
               *((m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
               *(("numpy", f"dtypes.{n}") for n in ("Float32DType", "Float64DType", "Int64DType", "Int32DType"))}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays, numbers, strings, "
                                         "lists and dicts may be in a motion file)")
        return super().find_class(module, name)


def _read_pkl(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            d = _ArraysOnlyUnpickler(fh, encoding="latin1").load()
    except Exception as e:   # a broken pickle can raise almost anything
        raise MocapSourceError(f"{path}: not a readable AIST++ motion pickle ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict) or not {"smpl_poses", "smpl_trans", "smpl_scaling"} <= set(d):
        keys = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise MocapSourceError(f"{path}: an AIST++ motion needs smpl_poses, smpl_trans and smpl_scaling (got {keys})")
    return d
