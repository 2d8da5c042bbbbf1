"""Licensed data (H36M, 3DOH, MPI-INF-3DHP, LSP, COCO) in the SPIN/DecoMR preprocessed `.npz`
format, turned into the same shards as the synthetic data (`uvhmr.data.format`, through the SMPL
backend): the dataset rule's `spin_npz` source.

Selected in params.yaml::

    body_model: {backend: smpl, smpl_dir: ..., smpl_uv_obj: ...}
    dataset:
      source: spin_npz
      files: /data/spin                        # the folder holding the .npz files and images
      spin_splits: {dmp_train: [h36m_train.npz, coco_2014_train.npz],
                    stage2_train: [3doh_train.npz], test: [3doh_test.npz]}
      spin_images: {h36m_train.npz: h36m, coco_2014_train.npz: coco, ...}   # image folders under files

Per row (SPIN's constants and utils/imutils.py): `imgname` (path under the image folder),
`center` (2,) and `scale` (bbox height / 200) of the square crop, `part` (24, 3) 2-D keypoints in
image pixels with confidence (the first 14 are LSP-14), `pose` (72,) SMPL axis-angle with the
global orientation in the camera frame (y down), `shape` (10,) betas, `has_smpl` (rows without
SMPL parameters carry no dense ground truth and are skipped); `S` (24, 4) is not needed.

`center` and `part` are pixel indices (pixel centres at integers, as SPIN's and OpenCV's).
The crop is resampled to `image_size`; the weak-perspective camera is fitted to the confident
LSP-14 keypoints (DecoMR's cal_cam) and turned into a perspective camera with SPIN's long focal
length (5000 px at 224), which renders the dense maps in the same code as the synthetic data; the
stored 2-D joints are the mesh joints' projections (within the fit's error of the keypoints).
The first n_<split> usable rows are taken, in file order. LSP and COCO rows carry SMPL only with
fitted parameters (SPIN's or EFT's fits, has_smpl = 1); rows without are skipped.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from uvhmr.body.model import load_body_model
from uvhmr.data.figures_dataset import write_dataset_figure
from uvhmr.data.format import pack_records, shard_name, shard_stats, split_size, write_index
from uvhmr.data.render_sample import load_context, render_sample
from uvhmr.data.scene import intrinsics
from uvhmr.data.shards import Shard, write_shard
from uvhmr.io import atomic_dir

KEYS = {"imgname": None, "center": (2,), "scale": (), "part": (24, 3), "pose": (72,), "shape": (10,), "has_smpl": ()}
SPIN_FOCAL_AT_224 = 5000.0
MIN_KEYPOINTS = 4          # confident LSP-14 keypoints needed to fit the camera


class SpinFormatError(ValueError):
    """A SPIN-format file or image that cannot be used, named in the message."""


def load_spin_npz(path: Path) -> dict:
    """Read and check one SPIN-format file -> {key: array} with N rows each."""
    if not path.is_file():
        raise SpinFormatError(f"{path}: no such file (listed in dataset.spin_splits)")
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise SpinFormatError(f"{path}: not a readable .npz ({e})") from None
    missing = [k for k in KEYS if k not in d]
    if missing:
        raise SpinFormatError(f"{path}: missing key(s) {', '.join(missing)} (a SPIN/DecoMR file has "
                              f"{', '.join(KEYS)})")
    n = len(d["imgname"])
    for k, shape in KEYS.items():
        if len(d[k]) != n or (shape is not None and d[k].shape[1:] != shape):
            raise SpinFormatError(f"{path}: {k}: expected ({n}, {', '.join(map(str, shape or ()))}) rows, "
                                  f"got {d[k].shape}")
    return d


def crop_matrix(center, scale: float, size: int) -> np.ndarray:
    """(2, 3) affine: image pixels -> crop pixels (continuous convention) for SPIN's square crop
    of side 200 * scale around `center`."""
    k = size / (200.0 * float(scale))
    c = np.asarray(center, np.float64)
    return np.array([[k, 0, size / 2 - k * c[0]], [0, k, size / 2 - k * c[1]]])


def crop_image(image: np.ndarray, A: np.ndarray, size: int) -> np.ndarray:
    """Resample the crop (zero outside the image), (H, W, 3) uint8 -> (size, size, 3) uint8;
    blurred first when it shrinks, so the crop does not alias."""
    import cv2
    k = float(A[0, 0])
    if k < 1:
        image = cv2.GaussianBlur(image, (0, 0), 0.45 / k)
    M = A.copy()
    M[:, 2] += A[:, :2] @ [0.5, 0.5] - 0.5        # cv2 puts pixel centres at integers
    return cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def fit_camera(joints: np.ndarray, keypoints: np.ndarray, conf: np.ndarray, size: int):
    """Weighted least-squares weak perspective x_ndc = s (X_xy + t) of model-frame joints (K, 3)
    to keypoints (K, 2) in crop pixels with confidences (K,). -> (s, t (2,)) or None."""
    w = (np.asarray(conf) > 0).astype(np.float64)
    if w.sum() < MIN_KEYPOINTS:
        return None
    X = np.asarray(joints, np.float64)[:, :2]
    p = 2.0 * np.asarray(keypoints, np.float64) / size - 1.0
    xm = (w[:, None] * X).sum(0) / w.sum()
    pm = (w[:, None] * p).sum(0) / w.sum()
    s = float((w[:, None] * (X - xm) * (p - pm)).sum() / max((w[:, None] * (X - xm) ** 2).sum(), 1e-12))
    if s <= 0:
        return None
    return s, pm / s - xm


def _rows(sec, split: str, root: Path, log) -> list[tuple[str, dict, int]]:
    """(npz name, its arrays, row) of the first n_<split> rows with SMPL parameters."""
    files = sec.spin_splits.get(split)
    if not files:
        raise SpinFormatError(f"params.yaml: dataset.spin_splits.{split}: no .npz files listed for this split")
    want, out = split_size(sec, split), []
    for name in files:
        d = load_spin_npz(root / name)
        ok = np.flatnonzero(np.asarray(d["has_smpl"]) > 0)
        log(f"{name}: {len(d['imgname'])} rows, {len(ok)} with SMPL parameters")
        out += [(name, d, int(i)) for i in ok[:max(want - len(out), 0)]]
    if not out:
        raise SpinFormatError(f"dataset {split}: no rows with SMPL parameters (has_smpl) in {', '.join(files)}")
    return out


def _read_image(path: Path) -> np.ndarray:
    """An image file -> (H, W, 3) uint8 RGB; SpinFormatError naming the file if it is missing, not
    an image, or a truncated JPEG (which OpenCV would decode silently, grey below the cut)."""
    import cv2
    hint = "check dataset.files and dataset.spin_images, or download the file again"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SpinFormatError(f"{path}: missing or unreadable image ({e.strerror or e}; {hint})") from None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        raise SpinFormatError(f"{path}: not a readable image ({len(data)} bytes; {hint})")
    if data[:2] == b"\xff\xd8" and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        # No end-of-image marker after the last scan: the file was cut short.
        raise SpinFormatError(f"{path}: truncated JPEG (no end marker after its last scan; {hint})")
    return np.ascontiguousarray(img[..., ::-1])


def adapt_rows(ctx, rows, root: Path, images: dict, offset: int, batch: int = 64) -> tuple[dict, dict, int]:
    """One shard of rows -> (shard arrays, statistics, rows skipped for too few keypoints)."""
    body, size = ctx.body, ctx.size
    nb = len(body.shape_labels)
    focal = SPIN_FOCAL_AT_224 * size / 224.0
    K = intrinsics(focal, size)
    pose = torch.as_tensor(np.stack([d["pose"][i] for _, d, i in rows]), dtype=torch.float32).reshape(-1, 24, 3)
    beta = torch.zeros(len(rows), nb)
    for j, (_, d, i) in enumerate(rows):
        m = min(nb, d["shape"].shape[1])
        beta[j, :m] = torch.as_tensor(d["shape"][i][:m], dtype=torch.float32)
    recs, keep, skipped = [], [], 0
    for b0 in range(0, len(rows), batch):
        with torch.no_grad():
            out = body(pose[b0:b0 + batch], beta[b0:b0 + batch])
        for k in range(out.vertices.shape[0]):
            j = b0 + k
            name, d, i = rows[j]
            # SPIN's centre and keypoints are pixel indices (pixel centres at integers): + 0.5
            # puts them in render.py's continuous convention.
            A = crop_matrix(np.asarray(d["center"][i]) + 0.5, d["scale"][i], size)
            kp = d["part"][i]
            kp2 = (kp[:, :2] + 0.5) @ A[:, :2].T + A[:, 2]
            cam = fit_camera(out.lsp14[k].double().numpy(), kp2[:14], kp[:14, 2], size)
            if cam is None:
                skipped += 1
                continue
            s, t2 = cam
            t = np.array([t2[0], t2[1], 2 * focal / (size * s)])
            img = crop_image(_read_image(root / images.get(name, "") / str(d["imgname"][i])), A, size)
            recs.append(render_sample(ctx, out.vertices[k].double().numpy(), out.lsp14[k].double().numpy(),
                                      out.joints24[k].double().numpy(), K, np.eye(3), t, None, image=img))
            keep.append(j)
    if not recs:
        return {}, {}, skipped
    keep = np.array(keep)
    return (pack_records(recs, pose[keep].numpy(), beta[keep].numpy(), offset + keep), shard_stats(recs), skipped)


def run_spin_npz(rp, body_dir: Path, uv_dir: Path, mocap_dir: Path, split: str, out_dir: Path, log=print) -> None:
    """The dataset rule on SPIN-format data: same shards, index.json and figure as synthetic data.
    mocap_dir: unused (the files carry their poses); the sources share one signature."""
    sec = rp.section
    if sec.files is None:
        raise SpinFormatError("params.yaml: dataset.files: expected the folder holding the SPIN-format .npz files, got null")
    body = load_body_model(body_dir)
    if body.name != "smpl":
        raise SpinFormatError(f"params.yaml: dataset.source: spin_npz needs body_model.backend smpl "
                              f"(the files hold SMPL parameters), got {body.name}")
    root = Path(sec.files)
    rows = _rows(sec, split, root, log)
    ctx = load_context(body, Path(uv_dir), sec, with_texture=False)
    nshards = math.ceil(len(rows) / sec.shard_size)
    skipped = 0
    with atomic_dir(out_dir) as tmp:
        stats, shards = [], []
        k = 0
        for c in range(nshards):
            arrays, st, sk = adapt_rows(ctx, rows[c * sec.shard_size:(c + 1) * sec.shard_size], root,
                                        dict(sec.spin_images), c * sec.shard_size)
            skipped += sk
            if not arrays:
                continue
            write_shard(tmp / shard_name(k), arrays, {"split": split, "shard": k, "stats": st})
            st["bytes"] = Shard(tmp / shard_name(k)).header["size"]
            stats.append(st)
            shards.append({"file": shard_name(k), "num_samples": st["samples"], "bytes": st["bytes"]})
            k += 1
        if not shards:
            raise SpinFormatError(f"dataset {split}: every row had fewer than {MIN_KEYPOINTS} confident LSP-14 keypoints")
        write_index(tmp, body, sec, split, int(rp.run.seed), shards, stats, "spin_npz")
        write_dataset_figure(tmp, tmp / "figures" / "dataset_samples.png")
    log(f"dataset {split}: {sum(s['samples'] for s in stats)} samples from {', '.join(sec.spin_splits[split])} "
        f"({skipped} skipped: fewer than {MIN_KEYPOINTS} confident keypoints)")
