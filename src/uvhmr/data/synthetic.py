"""The dataset rule: render one split of synthetic samples into shards (or adapt licensed data).

A sample is a posed body (mocap pose, sampled shape, global orientation from the shared sampler,
which lays the prior's "lying" family down) seen by a perspective camera that makes it fill
60-95 % of the crop, painted with a procedural clothing texture, lit, over a procedural
background. The pixel-centre raster that the ground truth comes from is the one the
anti-aliased image is shaded from (render.py), so they line up pixel for pixel.

Output folder (results/<profile>/data/<name>/<split>/)::

    index.json            format, split, sizes, joint sets and mirrors, occlusion settings, shard
                          list (file, samples, bytes), statistics (fill, coverage, weak-perspective
                          reprojection error), the dataset parameters
    shard-00000.shard     shards.py's container; arrays below (N samples, S = image_size,
    ...                   P = covered pixels summed over the shard's samples)
    figures/dataset_samples.png   the paper's Fig. 3 for a few samples

Per-shard arrays (units: metres, camera frame; pixels in render.py's convention):
    image     (N, S, S, 3) uint8  RGB render without occluders
    maskbits  (N, ceil(S*S/8)) uint8  body pixels, packed row-major (shards.unpack_mask)
    offsets   (N + 1,) int64      sample n's covered pixels are rows offsets[n]:offsets[n+1] of
                                  the pixel arrays below, in row-major pixel order
    uv        (P, 2) uint16       U, V * 65535 in the project's UV layout (v up)
    M_l       (P, 3) float32      surface point seen through the pixel, root-relative
    part14    (P,) int8           A_uv label (LSP-14) of the pixel
    part24    (P,) int8           A_uv label (24 joints)
    joints3d  (N, 14, 3) float32  LSP-14, root-relative; joints3d_24 (N, 24, 3)
    joints2d  (N, 14, 2) float32  perspective projections; joints2d_24 (N, 24, 2)
    root      (N, 3) float32      mid-hip point in the camera frame
    K, R      (N, 3, 3) float32   x_pix ~ K (R X + t), X = body model output (pose, shape) in
    t         (N, 3) float32      the model's frame (translation 0)
    cam_wp    (N, 3) float32      weak perspective (s, tx, ty): 2 x_pix / S - 1 ~ s (X_rel,xy + t)
    pose      (N, J, 3) float32   axis-angle, joint 0 = global orientation; shape (N, B)
    source_index (N,) int64       the mocap (or licensed dataset) row the pose came from

M_j and M_d are not stored: M_j is the joint of the pixel's part and M_d = M_l - M_j, both
rebuilt exactly at load time (dataset.py), as are the occluders (occlusion.py). Only covered
pixels carry maps, so a 96 px sample costs about 47 KiB (the default profile's three splits,
6500 samples: about 300 MiB) and a 224 px one about 250 KiB.

Building: a shard is a pure function of (parameters, seed, split, shard index), so shards build
in any order and anywhere: `run_dataset` runs `resources.threads` worker processes
(`python -m uvhmr.data.synthetic --shards ...`, also usable as one cluster job per shard) and the
files are byte-identical to a serial build.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from uvhmr.data.render import covered, interpolate_corners, interpolate_vertices, over, project, \
    rasterize_view, render_rgba, to_uint8, vertex_normals, view_faces
from uvhmr.data.scene import TextureSpace, background, canonical_rotation, paint_texture, place_camera, \
    sample_light, texture_space, weak_perspective, weak_perspective_project
from uvhmr.data.shards import SUFFIX, pack_mask, write_shard
from uvhmr.io import atomic_dir, write_json

SPLITS = ("dmp_train", "stage2_train", "test")
SPLIT_ID = {"dmp_train": 1, "stage2_train": 2, "test": 3}
FORMAT = "uvhmr-dataset"
VERSION = 1
INDEX = "index.json"
UV_SCALE = 65535.0


def split_size(section, split: str) -> int:
    return int(getattr(section, f"n_{split}"))


def shard_name(k: int) -> str:
    return f"shard-{k:05d}{SUFFIX}"


def seed_ints(*keys: int, n: int = 1) -> list[int]:
    """Deterministic 32-bit seeds from integer keys (numpy's SeedSequence)."""
    return [int(x) for x in np.random.SeedSequence([int(k) for k in keys]).generate_state(n)]


# ----------------------------------------------------------------------------- context

@dataclass
class Context:
    """What every sample needs, loaded once per process."""
    body: object
    faces: np.ndarray            # (F, 3) int64
    layout_uv: np.ndarray        # (F, 3, 2) float64 the project's symmetric layout
    layout_uv32: np.ndarray      # the same, float32 (shading)
    incidence: torch.Tensor      # (V, F) sparse, for vertex normals
    auv: dict                    # 14 / 24 -> (R, R) int64 A_uv labels, -1 off the body
    vertex_auv: dict             # 14 / 24 -> (V,) int64 per-vertex labels (fallback)
    joint_mirror: dict           # 14 / 24 -> (K,) int64
    R0: np.ndarray               # (3, 3) model -> camera rotation for an upright, facing body
    tex: TextureSpace | None
    size: int
    section: object


def load_context(body, uv_dir: Path, section, with_texture: bool = True) -> Context:
    from uvhmr.uv.assets import load_uv_assets
    faces = body.faces.numpy().astype(np.int64)
    uv = load_uv_assets(uv_dir, faces)
    res = max(uv.resolutions)
    layout = np.asarray(uv.face_uv, np.float64)
    tex = texture_space(body, uv.face_uv, section.texture_size) if with_texture else None
    from uvhmr.data.render import incidence
    return Context(body, faces, layout, layout.astype(np.float32), incidence(faces, body.num_vertices),
                   {k: uv.auv(k, res).numpy().astype(np.int64) for k in (14, 24)},
                   {k: np.asarray(uv.arrays[f"vertex_auv{k}"], np.int64) for k in (14, 24)},
                   {k: np.asarray(uv.joint_mirror(k), np.int64) for k in (14, 24)},
                   canonical_rotation(body.up_axis), tex, int(section.image_size), section)


def part_labels(ctx: Context, k: int, uv: np.ndarray, f: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A_uv label (K = 14 or 24) at each pixel: the label of the texel nearest to the pixel's UV;
    where that texel is off the layout (at an island border), the label of the face corner with
    the largest barycentric weight. -> (N,) int8."""
    lab = ctx.auv[k]
    r = lab.shape[0] - 1
    col = np.clip(np.rint(uv[:, 0] * r), 0, r).astype(np.int64)
    row = np.clip(np.rint((1.0 - uv[:, 1]) * r), 0, r).astype(np.int64)
    out = lab[row, col]
    miss = out < 0
    if miss.any():
        corner = ctx.faces[f[miss], np.argmax(b[miss], 1)]
        out[miss] = ctx.vertex_auv[k][corner]
    return out.astype(np.int8)


# ----------------------------------------------------------------------------- one sample

def ground_truth(ctx: Context, raster, verts_cam: np.ndarray, root: np.ndarray) -> dict:
    """Pixel-centre raster -> mask (S, S) bool and, per covered pixel in row-major order:
    uv (N, 2) float64, M_l (N, 3) float32 root-relative, part14 / part24 (N,) int8."""
    idx, f, b = covered(raster)
    uv = interpolate_corners(f, b, ctx.layout_uv)
    m_l = (interpolate_vertices(ctx.faces, f, b, np.asarray(verts_cam, np.float64)) - root[None]).astype(np.float32)
    return {"mask": raster.mask, "uv": uv, "M_l": m_l,
            "part14": part_labels(ctx, 14, uv, f, b), "part24": part_labels(ctx, 24, uv, f, b)}


def render_sample(ctx: Context, verts_model: np.ndarray, lsp14: np.ndarray, joints24: np.ndarray,
                  K: np.ndarray, R: np.ndarray, t: np.ndarray, rng: np.random.Generator | None,
                  image: np.ndarray | None = None, normals: np.ndarray | None = None,
                  fill: float | None = None) -> dict:
    """Render one posed body (model frame, metres) with camera (K, R, t).

    rng draws the appearance (texture, light, background); `image` (S, S, 3) uint8 replaces the
    render (licensed data: the photo); normals (V, 3) camera-frame vertex normals and fill (the
    body's box / image size, place_camera's) if at hand.
    -> the per-sample record (the module docstring's arrays, unquantised: uv float64), plus
    wp_error (mean weak-perspective reprojection error, px) and fill (body box / image size)."""
    s = ctx.size
    vc = np.asarray(verts_model, np.float64) @ R.T + t
    j14 = np.asarray(lsp14, np.float64) @ R.T + t
    j24 = np.asarray(joints24, np.float64) @ R.T + t
    root = 0.5 * (j14[2] + j14[3])
    screen = view_faces(vc, ctx.faces, K)
    centres = rasterize_view(vc, ctx.faces, K, s, s, screen=screen)
    rec = ground_truth(ctx, centres, vc, root)
    if image is None:
        texture = paint_texture(rng, ctx.tex)
        light = sample_light(rng)
        bg = background(rng, s)
        if normals is None:
            normals = vertex_normals(vc, ctx.faces, ctx.incidence)
        premult, alpha, _ = render_rgba(vc, ctx.faces, K, s, s, ctx.layout_uv32, texture, light,
                                        centres=centres, normals=normals, screen=screen)
        image = to_uint8(over(premult, alpha, bg))
    j2d = project(j14, K)
    rel = j14 - root
    cam = weak_perspective(rel, j2d, s)
    rec.update(image=image, joints3d=rel.astype(np.float32), joints3d_24=(j24 - root).astype(np.float32),
               joints2d=j2d.astype(np.float32), joints2d_24=project(j24, K).astype(np.float32),
               root=root.astype(np.float32), K=K.astype(np.float32), R=R.astype(np.float32),
               t=t.astype(np.float32), cam_wp=cam.astype(np.float32),
               wp_error=float(np.linalg.norm(weak_perspective_project(rel, cam, s) - j2d, axis=1).mean()),
               fill=float(np.ptp(project(vc, K), axis=0).max() / s) if fill is None else fill)
    return rec


def pack_records(records: list[dict], pose: np.ndarray, shape: np.ndarray, source_index: np.ndarray) -> dict:
    """Per-sample records -> the shard's arrays (module docstring)."""
    counts = np.array([len(r["M_l"]) for r in records], np.int64)
    out = {
        "image": np.stack([r["image"] for r in records]),
        "maskbits": np.stack([pack_mask(r["mask"]) for r in records]),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "uv": np.concatenate([np.rint(np.clip(r["uv"], 0, 1) * UV_SCALE) for r in records])
                .astype(np.uint16).reshape(-1, 2),
        "M_l": np.concatenate([r["M_l"] for r in records]).reshape(-1, 3).astype(np.float32),
        "part14": np.concatenate([r["part14"] for r in records]).astype(np.int8),
        "part24": np.concatenate([r["part24"] for r in records]).astype(np.int8),
    }
    for key in ("joints3d", "joints3d_24", "joints2d", "joints2d_24", "root", "K", "R", "t", "cam_wp"):
        out[key] = np.stack([r[key] for r in records]).astype(np.float32)
    out["pose"] = np.asarray(pose, np.float32)
    out["shape"] = np.asarray(shape, np.float32)
    out["source_index"] = np.asarray(source_index, np.int64)
    return out


def shard_stats(records: list[dict]) -> dict:
    s = records[0]["mask"].shape[0]
    return {"samples": len(records),
            "wp_error_px_sum": float(sum(r["wp_error"] for r in records)),
            "wp_error_px_max": float(max(r["wp_error"] for r in records)),
            "fill_sum": float(sum(r["fill"] for r in records)),
            "coverage_sum": float(sum(len(r["M_l"]) / (s * s) for r in records))}


# ----------------------------------------------------------------------------- one shard

def mocap_split(split: str) -> str:
    """Test poses come from the mocap rule's held-out split, training poses from its train split."""
    return "val" if split == "test" else "train"


def pose_indices(section, split: str, seed: int, num_poses: int, start: int, n: int) -> np.ndarray:
    """Rows of the mocap split for samples start .. start + n - 1 of `split`: one permutation per
    mocap split, dmp_train and stage2_train taking consecutive stretches of it (disjoint poses
    while the mocap split is large enough, wrapping around otherwise)."""
    perm = np.random.default_rng(seed_ints(seed, 17, 0 if split == "test" else 1)).permutation(num_poses)
    offset = section.n_dmp_train if split == "stage2_train" else 0
    return perm[(offset + start + np.arange(n)) % num_poses]


def generate_shard(ctx: Context, mocap, split: str, shard: int, seed: int, batch: int = 32,
                   progress: bool = True) -> tuple[dict, dict]:
    """All samples of one shard, a pure function of (parameters, seed, split, shard).
    -> (arrays for write_shard, statistics)."""
    from tqdm import tqdm

    from uvhmr.data.orientation import OrientationSampler, with_orientation
    sec = ctx.section
    total = split_size(sec, split)
    start = shard * sec.shard_size
    n = min(sec.shard_size, total - start)
    sid = SPLIT_ID[split]
    rows = pose_indices(sec, split, seed, len(mocap), start, n)
    body = ctx.body
    mrows = mocap.batch(rows)
    pose = mrows["pose"].float()
    shape = body.sample_shape(n, seed_ints(seed, sid, shard, 1)[0]).float()
    # The rows' category and body-frame joints let the sampler lay the "lying" family down.
    orient = OrientationSampler(up_axis=body.up_axis).sample_rows(mrows, seed_ints(seed, sid, shard, 2)[0])
    pose = with_orientation(pose, orient)
    records = []
    bar = tqdm(total=n, desc=f"{split} shard {shard}", unit="sample", disable=not progress, mininterval=2.0)
    for b0 in range(0, n, batch):
        with torch.no_grad():
            out = body(pose[b0:b0 + batch], shape[b0:b0 + batch])
        for i in range(out.vertices.shape[0]):
            k = b0 + i
            rng = np.random.default_rng([seed, sid, shard, k])
            v = out.vertices[i].double().numpy()
            K, t, fill = place_camera(v, ctx.R0, rng, ctx.size, sec.focal_range, sec.fill_range, sec.center_jitter)
            records.append(render_sample(ctx, v, out.lsp14[i].double().numpy(), out.joints24[i].double().numpy(),
                                         K, ctx.R0, t, rng, fill=fill))
            bar.update(1)
    bar.close()
    return pack_records(records, pose.numpy(), shape.numpy(), rows), shard_stats(records)


# ----------------------------------------------------------------------------- the rule

def occlusion_settings(section, split: str) -> dict:
    """How the Dataset composites occluders for this split (recorded in index.json)."""
    return {"count": list(section.occluders), "scale": list(section.occluder_scale),
            "families": "test" if split == "test" else "train", "prob": float(section.occlusion_prob)}


def write_index(out: Path, body, section, split: str, seed: int, shards: list[dict], stats: list[dict],
                source: str) -> dict:
    n = sum(s["samples"] for s in stats)
    summary = {"wp_reprojection_error_px_mean": sum(s["wp_error_px_sum"] for s in stats) / max(n, 1),
               "wp_reprojection_error_px_max": max((s["wp_error_px_max"] for s in stats), default=0.0),
               "fill_mean": sum(s["fill_sum"] for s in stats) / max(n, 1),
               "coverage_mean": sum(s["coverage_sum"] for s in stats) / max(n, 1),
               "bytes": sum(s["bytes"] for s in shards)}
    from uvhmr.config import to_dict
    params = {k: v for k, v in to_dict(section).items() if k != "resources"}   # resources never change the bytes
    index = {
        "format": FORMAT, "version": VERSION, "split": split, "source": source, "seed": seed,
        "num_samples": n, "image_size": int(section.image_size), "backend": body.name,
        "up_axis": body.up_axis, "pose_shape": [body.num_joints, 3], "shape_dim": len(body.shape_labels),
        "joint_sets": {"lsp14": list(body.lsp14.names), "joints24": list(body.joints24.names)},
        "mirror": {"lsp14": body.lsp14.mirror.tolist(), "joints24": body.joints24.mirror.tolist(),
                   "rig": body.joint_mirror.tolist()},
        "uv_scale": UV_SCALE, "occlusion": occlusion_settings(section, split),
        "shards": shards, "stats": summary, "params": params,
    }
    write_json(out / INDEX, index)
    return index


def open_mocap(mocap_dir: Path, split: str):
    """The mocap rule's poses (uvhmr.data.mocap.open_mocap): `len()` rows, `batch(indices)` ->
    {"pose": (N, J, 3) with identity root, ...}."""
    from uvhmr.data.mocap import open_mocap as _open
    return _open(mocap_dir, split)


def build_shards(section, seed: int, body_dir: Path, uv_dir: Path, mocap_dir: Path, split: str,
                 shards: list[int], out_dir: Path, progress: bool = True, body=None) -> None:
    """Build the given shards of a split into out_dir (one file each, statistics in its attrs).
    Single-threaded torch, so a shard's bytes do not depend on where or beside what it is built.
    body: the loaded body model, if at hand."""
    from uvhmr.body.model import load_body_model
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        body = load_body_model(body_dir) if body is None else body
        ctx = load_context(body, Path(uv_dir), section)
        mocap = open_mocap(Path(mocap_dir), mocap_split(split))
        for k in shards:
            arrays, stats = generate_shard(ctx, mocap, split, k, seed, progress=progress)
            write_shard(Path(out_dir) / shard_name(k), arrays, {"split": split, "shard": k, "stats": stats})
    finally:
        torch.set_num_threads(threads)


# Parallel builds run `python -m uvhmr.data.synthetic` per worker: a fresh interpreter needs no
# fork of a process that holds torch's thread pools, and no re-import of the caller's __main__.
PARALLEL_MIN_SAMPLES = 400      # below this, starting processes costs more than it saves


def _build_parallel(rp, workers: int, body_dir, uv_dir, mocap_dir, split: str, nshards: int, out: Path, log) -> None:
    import subprocess
    import sys
    import tempfile

    from uvhmr.config import rule_params_dict
    with tempfile.TemporaryDirectory(prefix="uvhmr-dataset-") as td:
        pfile = Path(td) / "params.json"
        pfile.write_text(json.dumps(rule_params_dict(rp)))
        procs = []
        for w in range(workers):
            mine = ",".join(str(k) for k in range(w, nshards, workers))
            cmd = [sys.executable, "-m", "uvhmr.data.synthetic", "--params", str(pfile), "--body", str(body_dir),
                   "--uv", str(uv_dir), "--mocap", str(mocap_dir), "--split", split, "--shards", mine, "--out", str(out)]
            procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
        failed = []
        for cmd, p in procs:
            _, err = p.communicate()
            if p.returncode:
                failed.append(f"{' '.join(cmd[2:4])} ... --shards {cmd[-3]}: exit {p.returncode}: {err.strip()[-2000:]}")
    if failed:
        raise RuntimeError("dataset: a shard builder failed:\n" + "\n".join(failed))


def run_dataset(rp, body_dir: Path, uv_dir: Path, mocap_dir: Path, split: str, out_dir: Path, log=print) -> None:
    """The dataset rule for one split: shards + index.json + figures/, written atomically.

    Deterministic: the same parameters, seed and inputs give byte-identical files, whether the
    shards are built in one process or `resources.threads` processes (each shard depends only on
    (seed, split, shard index); generation runs single-threaded)."""
    import time
    sec = rp.section
    if split not in SPLITS:
        raise ValueError(f"dataset: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    if sec.source == "spin_npz":
        from uvhmr.data.spin_adapter import run_spin_adapter
        return run_spin_adapter(rp, Path(body_dir), Path(uv_dir), split, Path(out_dir), log=log)
    from uvhmr.body.model import load_body_model
    from uvhmr.data.shards import Shard
    # The mocap folder first (its manifest and shard headers, no poses read): a missing or empty
    # one stops here, in one line, not after the body model and UV assets have loaded.
    open_mocap(Path(mocap_dir), mocap_split(split))
    seed = int(rp.run.seed)
    n = split_size(sec, split)
    nshards = math.ceil(n / sec.shard_size)
    t0 = time.time()
    workers = min(int(rp.resources.threads), nshards) if n >= PARALLEL_MIN_SAMPLES else 1
    with atomic_dir(out_dir) as tmp:
        if workers > 1:
            log(f"dataset {split}: {nshards} shards on {workers} processes")
            _build_parallel(rp, workers, body_dir, uv_dir, mocap_dir, split, nshards, tmp, log)
            body = load_body_model(body_dir)          # after the workers: they need the memory more
        else:
            body = load_body_model(body_dir)
            build_shards(sec, seed, body_dir, uv_dir, mocap_dir, split, list(range(nshards)), tmp, body=body)
        stats, shards = [], []
        for k in range(nshards):
            sh = Shard(tmp / shard_name(k))
            st = dict(sh.attrs["stats"], bytes=sh.header["size"])
            stats.append(st)
            shards.append({"file": shard_name(k), "num_samples": st["samples"], "bytes": st["bytes"]})
        index = write_index(tmp, body, sec, split, seed, shards, stats, "synthetic")
        from uvhmr.data.figures_dataset import write_dataset_figure
        write_dataset_figure(tmp, tmp / "figures" / "dataset_samples.png")
    st = index["stats"]
    log(f"dataset {split}: {n} samples in {nshards} shard(s), {st['bytes'] / 2 ** 20:.1f} MiB, "
        f"{time.time() - t0:.1f} s; body fills {st['fill_mean'] * 100:.0f} % of the crop on average; "
        f"weak-perspective reprojection error {st['wp_reprojection_error_px_mean']:.2f} px mean "
        f"({st['wp_reprojection_error_px_max']:.2f} max) at {sec.image_size} px")


def main(argv=None) -> None:
    """`python -m uvhmr.data.synthetic`: build some shards of a split (what run_dataset's worker
    processes run; a cluster job can run it too, one shard each)."""
    import argparse

    from uvhmr.config import load_rule_params
    ap = argparse.ArgumentParser(prog="python -m uvhmr.data.synthetic", description=main.__doc__)
    for flag in ("--params", "--body", "--uv", "--mocap", "--split", "--shards", "--out"):
        ap.add_argument(flag, required=True)
    a = ap.parse_args(argv)
    rp = load_rule_params(a.params)
    build_shards(rp.section, int(rp.run.seed), Path(a.body), Path(a.uv), Path(a.mocap), a.split,
                 [int(k) for k in a.shards.split(",") if k], Path(a.out))


if __name__ == "__main__":
    main()
