"""The `mocap` rule: body-frame poses, shapes and joints for GIK-Net, written in shards.

    run_mocap(rp, body_dir, out_dir)            # the CLI's entry point (atomic, deterministic)
    data = open_mocap(out_dir, "train")         # streaming reader
    for batch in data.iter_batches(256, shuffle=True, seed=epoch): ...

Sources (`mocap.source`): `prior` (default, Anny: `uvhmr.data.pose_prior`, gross self-penetration
rejected) or licensed SMPL mocap (`amass`, `aistpp`, `spin_fits`: `uvhmr.data.mocap_loaders`, SMPL
backend only).

Output layout::

    out/manifest.json                     counts, shards, fields, joint names, backend, params, stats
    out/<split>/<field>-<shard:05d>.npy   split in (train, val); np.load(..., mmap_mode="r") works
    out/figures/mocap_prior.png           sampled bodies (front, side) + joint-angle histograms; the
                                          prior's "lying" body laid down as the renders lay it

Fields (per sample): `pose` (J, 3) float32 axis-angle, root (joint 0) zero: the body frame;
`shape` (S,) float32; `lsp14` (14, 3) and `joints24` (24, 3) float32 metres, in the body frame,
relative to the root = mid-hips (LSP-14 R_hip, L_hip); `category` int8 (prior: index into
manifest["categories"]) or, for licensed mocap, `sequence` int32 (index into manifest["sequences"],
file paths relative to mocap.files) and `frame` int32 (the row in that file).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from uvhmr.body.joints import LSP14_HIPS
from uvhmr.body.model import load_body_model
from uvhmr.config import to_dict
from uvhmr.data import mocap_loaders as ml
from uvhmr.data.mocap_figure import mocap_figure, part_colours
from uvhmr.data.mocap_loaders import MocapSourceError, require_smpl
from uvhmr.data.orientation import AXES, FACING, OrientationSampler, with_orientation
from uvhmr.data.pose_prior import CATEGORIES, SPINE, PenetrationCheck, PosePrior
from uvhmr.errors import ConfigError
from uvhmr.io import atomic_dir, write_json

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SPLITS = ("train", "val")
BLOCK = 1024                  # prior candidates drawn per random block (seeded by seed, split, block)
FIGURE = "figures/mocap_prior.png"
ROOT = "mid-hips (mean of LSP-14 R_hip and L_hip)"


class MocapFormatError(ValueError):
    """A missing, truncated or inconsistent mocap output, worded as one line naming the file."""


# ---------------------------------------------------------------------------------- writing

class ShardWriter:
    """Buffers rows of several fields and writes `<dir>/<field>-<shard:05d>.npy` every
    `shard_size` rows, so that only one shard is ever in memory."""

    def __init__(self, directory: Path, fields: dict[str, tuple[tuple, str]], shard_size: int):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fields, self.shard_size = fields, int(shard_size)
        self.buf: dict[str, list] = {k: [] for k in fields}
        self.buffered = 0
        self.shards: list[int] = []

    def add(self, rows: dict[str, np.ndarray]) -> None:
        n = {len(v) for v in rows.values()}
        if len(n) != 1 or set(rows) != set(self.fields):
            raise ValueError(f"ShardWriter.add: expected equal-length {sorted(self.fields)}, got "
                             f"{ {k: np.shape(v) for k, v in rows.items()} }")
        for k, (shape, dtype) in self.fields.items():
            a = np.asarray(rows[k], dtype=dtype)
            if a.shape[1:] != tuple(shape):
                raise ValueError(f"ShardWriter.add: {k} rows must be {tuple(shape)}, got {a.shape[1:]}")
            self.buf[k].append(a)
        self.buffered += n.pop()
        while self.buffered >= self.shard_size:
            self._flush(self.shard_size)

    def _flush(self, count: int) -> None:
        index = len(self.shards)
        for k in self.fields:
            a = np.concatenate(self.buf[k]) if len(self.buf[k]) != 1 else self.buf[k][0]
            np.save(self.dir / f"{k}-{index:05d}.npy", np.ascontiguousarray(a[:count]))
            self.buf[k] = [a[count:]] if len(a) > count else []
        self.buffered -= count
        self.shards.append(count)

    def close(self) -> list[int]:
        if self.buffered:
            self._flush(self.buffered)
        return self.shards


def _rows(out, pose: torch.Tensor, shape: torch.Tensor) -> dict[str, np.ndarray]:
    root = out.lsp14[:, list(LSP14_HIPS)].mean(1, keepdim=True)
    return {"pose": pose.numpy(), "shape": shape.numpy(),
            "lsp14": (out.lsp14 - root).numpy(), "joints24": (out.joints24 - root).numpy()}


def _fields(model, extra: dict) -> dict[str, tuple[tuple, str]]:
    return {"pose": ((model.num_joints, 3), "float32"), "shape": ((len(model.shape_labels),), "float32"),
            "lsp14": ((14, 3), "float32"), "joints24": ((24, 3), "float32"), **extra}


def _progress(total: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="pose", mininterval=2.0, disable=None, leave=False)


# ---------------------------------------------------------------------------------- the rule

def run_mocap(rp, body_dir: Path, out_dir: Path, log: Callable[[str], None] = print) -> None:
    """The mocap rule: load the body model exported in `body_dir`, write `out_dir` atomically."""
    model = load_body_model(body_dir)
    if model.name != rp.body_model.backend:
        raise ConfigError(f"{body_dir}: this export is the {model.name!r} body model, but body_model.backend is "
                         f"{rp.body_model.backend!r}; point --body at resources/body/{rp.body_model.backend}")
    build_mocap(rp, model, Path(out_dir), log)


def build_mocap(rp, model, out_dir: Path, log: Callable[[str], None] = print) -> dict:
    """Same as `run_mocap` with a loaded body model (tests pass small models). -> the manifest."""
    sec = rp.section
    t0 = time.perf_counter()
    if sec.source != "prior":
        require_smpl(sec.source, model.name)
        if not sec.files:
            raise MocapSourceError(f"mocap.files: mocap.source {sec.source} needs the folder of your {sec.source} files, got null")
    manifest = {"format_version": FORMAT_VERSION, "backend": model.name, "up_axis": model.up_axis,
                "source": sec.source, "profile": rp.profile, "seed": rp.run.seed,
                "frame": "the body model's body frame: root (joint 0) rotation zero; joints root-relative, metres",
                "root": ROOT, "joint_names": list(model.joint_names), "shape_labels": list(model.shape_labels),
                "lsp14_names": list(model.lsp14.names), "joints24_names": list(model.joints24.names),
                "params": to_dict(sec), "splits": {}, "stats": {}}
    sizes = {"train": sec.n_train, "val": sec.n_val}
    with atomic_dir(out_dir) as tmp:
        if sec.source == "prior":
            bodies = _build_prior(rp, model, tmp, sizes, manifest, log)
        else:
            bodies = _build_licensed(rp, model, tmp, sizes, manifest, log)
        if sec.figure:
            t = time.perf_counter()
            _figure(tmp / FIGURE, model, tmp, manifest, bodies)
            log(f"mocap: figure {FIGURE} in {time.perf_counter() - t:.1f} s")
        write_json(tmp / MANIFEST, manifest)
    total = sum(s["count"] for s in manifest["splits"].values())
    counts = ", ".join(f"{k} {v['count']}" for k, v in manifest["splits"].items())
    log(f"mocap: {total} poses ({counts}) in {time.perf_counter() - t0:.1f} s -> {out_dir}")
    return manifest


def _build_prior(rp, model, tmp: Path, sizes: dict, manifest: dict, log) -> list:
    sec = rp.section
    prior = PosePrior.from_model(model, sec.categories)
    check = PenetrationCheck(model, depth=sec.penetration_depth, min_vertices=sec.penetration_vertices,
                             seed=rp.run.seed)
    manifest["categories"] = list(CATEGORIES)
    manifest["category_weights"] = dict(zip(CATEGORIES, prior.weights.round(6).tolist()))
    manifest["limits_deg"] = {n: prior.limits_deg[i].round(3).tolist() for i, n in enumerate(model.joint_names)}
    manifest["penetration"] = {"depth_m": check.depth, "min_vertices": check.min_vertices, "pairs": check.pair_names}
    fields = _fields(model, {"category": ((), "int8")})
    manifest["fields"] = {k: {"shape": list(s), "dtype": d} for k, (s, d) in fields.items()}
    examples: dict[int, tuple] = {}
    for split_id, split in enumerate(SPLITS):
        n = sizes[split]
        t = time.perf_counter()
        writer = ShardWriter(tmp / split, fields, sec.shard_size)
        done, candidates, rejected, clipped = 0, 0, 0, 0.0
        per_cat = np.zeros((len(CATEGORIES), 2), dtype=np.int64)     # drawn, kept
        block = 0
        bar = _progress(n, f"mocap {split}")
        while done < n:
            rng = np.random.default_rng([rp.run.seed, split_id, block])
            smp = prior.sample(BLOCK, rng)
            shapes = model.sample_shape(BLOCK, int(rng.integers(2 ** 31)))
            poses = torch.from_numpy(smp.pose)
            for i in range(0, BLOCK, sec.batch_size):
                if done >= n:
                    break
                pose, shape = poses[i:i + sec.batch_size], shapes[i:i + sec.batch_size]
                cat = smp.category[i:i + sec.batch_size]
                with torch.no_grad():
                    out = model(pose, shape)
                    bad = check(out.vertices, out.joints).numpy()
                keep = np.flatnonzero(~bad)
                seen = len(bad)                        # candidates examined (up to the last one needed)
                if len(keep) >= n - done:
                    keep = keep[: n - done]
                    seen = int(keep[-1]) + 1
                candidates += seen
                rejected += int(bad[:seen].sum())
                np.add.at(per_cat[:, 0], cat[:seen], 1)
                np.add.at(per_cat[:, 1], cat[keep], 1)
                clipped += float(smp.clipped[i:i + seen].any(-1).mean(-1).sum())
                rows = _rows(out, pose, shape)
                rows = {k: v[keep] for k, v in rows.items()}
                rows["category"] = cat[keep]
                writer.add(rows)
                if split == "train":
                    for r, j in enumerate(keep):
                        examples.setdefault(int(cat[j]), (pose[j], shape[j], torch.from_numpy(rows["lsp14"][r])))
                done += len(keep)
                bar.update(len(keep))
            block += 1
        bar.close()
        shards = writer.close()
        dt = time.perf_counter() - t
        manifest["splits"][split] = {"count": done, "shards": shards}
        manifest["stats"][split] = {
            "candidates": candidates, "rejected_self_penetration": rejected,
            "rejection_rate": round(rejected / max(candidates, 1), 4),
            "mean_fraction_of_bones_clipped": round(clipped / max(candidates, 1), 4),
            "per_category": {c: {"drawn": int(a), "kept": int(b)} for c, (a, b) in zip(CATEGORIES, per_cat)}}
        log(f"mocap: {split}: {done} poses from {candidates} candidates ({rejected} rejected for self-penetration, "
            f"{100 * rejected / max(candidates, 1):.1f} %) in {dt:.1f} s ({1000 * dt / max(done, 1):.2f} ms/pose)")
    return [_figure_body(CATEGORIES[k], *examples[k], model.up_axis, rp.run.seed) for k in sorted(examples)]


def _figure_body(category: str, pose: torch.Tensor, shape: torch.Tensor, lsp14: torch.Tensor, up_axis: str,
                 seed: int) -> tuple[str, torch.Tensor, torch.Tensor]:
    """One family's example for the figure, as the renders pose it: the "lying" body laid down by
    the orientation sampler, the others upright (root identity; their small tilts would only blur
    the comparison). pose (J, 3), shape (S,), lsp14 (14, 3) body frame -> (label, pose, shape)."""
    label = category.replace("_", " ")
    if category != "lying":
        return label, pose, shape
    import roma

    # A yaw of 90 deg turns the lying trunk across the front view, so that view shows it lengthwise.
    sampler = OrientationSampler(up_axis=up_axis, yaw_min=90.0, yaw_max=90.0)
    rv = sampler.sample(1, seed, torch.ones(1, dtype=torch.bool), lsp14[None])
    face = roma.rotvec_to_rotmat(rv[0].double()) @ torch.tensor(FACING[up_axis], dtype=torch.float64)
    face_up = float(face[AXES[up_axis][0]])
    side = "on the back" if face_up > 0.7 else "on the front" if face_up < -0.7 else "on a side"
    return f"{label} ({side})", with_orientation(pose[None], rv)[0], shape


def _build_licensed(rp, model, tmp: Path, sizes: dict, manifest: dict, log) -> list:
    sec = rp.section
    seqs = ml.list_sequences(sec.source, sec.files, sec.fps, log=log)
    rng = np.random.default_rng([rp.run.seed, 7])
    units = _split_sequences(seqs, sizes, rng, log)
    manifest["sequences"] = [s.key for s in seqs]
    fields = _fields(model, {"sequence": ((), "int32"), "frame": ((), "int32")})
    manifest["fields"] = {k: {"shape": list(s), "dtype": d} for k, (s, d) in fields.items()}
    num_betas = len(model.shape_labels)
    spin = None
    if sec.spin_fits:
        spin = ml.read_spin_fits(Path(sec.spin_fits))
        log(f"mocap: {len(spin[0])} SPIN fits from {sec.spin_fits}: "
            + ("betas for AIST++" if sec.source == "aistpp" else "hand rotations for AMASS" if sec.source == "amass" else "unused"))
    elif sec.source in ("aistpp", "amass"):
        log("mocap: no mocap.spin_fits: " + ("AIST++ betas come from the body model's shape prior" if sec.source == "aistpp"
                                            else "AMASS hand joints keep zero rotation"))
    key_index = {s.key: i for i, s in enumerate(seqs)}
    bodies = []
    for split in SPLITS:
        t = time.perf_counter()
        chosen = units[split]
        total = sum(len(idx) for _, idx in chosen)
        writer = ShardWriter(tmp / split, fields, sec.shard_size)
        bar = _progress(total, f"mocap {split}")
        for seq, idx in chosen:
            pose, shape = ml.read_sequence(sec.source, seq, num_betas)
            pose = pose[idx]
            srng = np.random.default_rng([rp.run.seed, 11, key_index[seq.key]])
            if shape is None:                                  # AIST++: betas per sequence
                if spin is not None:
                    shape = np.repeat(_betas_rows(spin[1], srng.integers(len(spin[1]), size=1), num_betas), len(pose), 0)
                else:
                    shape = model.sample_shape(1, int(srng.integers(2 ** 31))).numpy().repeat(len(pose), 0)
            else:
                shape = shape[idx]
            if sec.source == "amass" and spin is not None:     # SMPL hand joints from SPIN fits
                pose[:, 22:24] = spin[0][srng.integers(len(spin[0]), size=len(pose))][:, 22:24]
            for i in range(0, len(pose), sec.batch_size):
                p = torch.from_numpy(np.ascontiguousarray(pose[i:i + sec.batch_size]))
                s = torch.from_numpy(np.ascontiguousarray(shape[i:i + sec.batch_size], dtype=np.float32))
                with torch.no_grad():
                    out = model(p, s)
                rows = _rows(out, p, s)
                rows["sequence"] = np.full(len(p), key_index[seq.key], dtype=np.int32)
                rows["frame"] = ((seq.start + np.asarray(idx[i:i + sec.batch_size])) * seq.stride).astype(np.int32)
                writer.add(rows)
                bar.update(len(p))
                if split == "train" and len(bodies) < 8:
                    bodies.append((seq.key.split("/")[-1][:18], p[0], s[0]))
        bar.close()
        manifest["splits"][split] = {"count": total, "shards": writer.close()}
        manifest["stats"][split] = {"sequences": len(chosen)}
        log(f"mocap: {split}: {total} frames from {len(chosen)} sequences in {time.perf_counter() - t:.1f} s")
    return bodies


def _betas_rows(betas: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(rows), k), dtype=np.float32)
    m = min(k, betas.shape[1])
    out[:, :m] = betas[rows, :m]
    return out


def _split_sequences(seqs: list, sizes: dict, rng: np.random.Generator, log) -> dict:
    """Whole sequences go to one split (val first, in a seeded order, until it holds n_val frames);
    then n frames per split are drawn uniformly without replacement. -> {split: [(seq, frame idx)]}."""
    from dataclasses import replace
    if len(seqs) == 1:                      # one sequence: split its frames (the end is val)
        s = seqs[0]
        nv = max(1, min(s.frames - 1, round(s.frames * sizes["val"] / (sizes["train"] + sizes["val"]))))
        log(f"mocap: only one sequence ({s.key}): its last {nv} frames are the val split")
        parts = {"train": [replace(s, stop=s.start + s.frames - nv, frames=s.frames - nv)],
                 "val": [replace(s, start=s.start + s.frames - nv, frames=nv)]}
    else:
        order = rng.permutation(len(seqs))
        val, frames = [], 0
        for i in order[:-1]:                # at least one sequence stays in train
            if frames >= sizes["val"]:
                break
            val.append(int(i))
            frames += seqs[i].frames
        parts = {"val": [seqs[i] for i in sorted(val)], "train": [s for i, s in enumerate(seqs) if i not in set(val)]}
    out = {}
    for split, units in parts.items():
        total = sum(u.frames for u in units)
        n = sizes[split]
        if total <= n:
            if total < n:
                log(f"mocap: {split}: only {total} frames available (mocap.n_{split} is {n}): using all of them")
            pick = np.arange(total)
        else:
            pick = np.sort(rng.choice(total, size=n, replace=False))
        bounds = np.cumsum([0] + [u.frames for u in units])
        out[split] = [(u, pick[(pick >= a) & (pick < b)] - a) for u, a, b in zip(units, bounds[:-1], bounds[1:])
                      if ((pick >= a) & (pick < b)).any()]
    return out


# ---------------------------------------------------------------------------------- figure

def _figure(path: Path, model, tmp: Path, manifest: dict, bodies: list) -> None:
    faces = model.faces.cpu().numpy()
    rgb = part_colours(model.vertex_part.cpu().numpy(), faces, model.joint_names)
    with torch.no_grad():
        verts = [model(p[None], s[None]).vertices[0].numpy() for _, p, s in bodies]
    labelled = [(label, v) for (label, _, _), v in zip(bodies, verts)]
    data = MocapData(tmp, "train", manifest)
    n = min(len(data), 20000)
    b = data.batch(np.arange(n))
    pose = np.degrees(b["pose"].numpy())
    names = list(model.joint_names)
    hist = []
    lim = manifest.get("limits_deg")

    def comp(bone, axis, label, sign=1.0):
        if bone in names:
            values = sign * pose[:, names.index(bone), axis]
            lo_hi = None if lim is None else tuple(sorted(sign * np.asarray(lim[bone][axis])))
            hist.append((label, values, lo_hi))

    if model.name == "anny":
        prior = PosePrior.from_model(model)
        comp("upperleg01.L", 0, "left hip flexion (-X of upperleg01.L)", -1)
        comp("upperleg01.L", 1, "left hip adduction (+Y of upperleg01.L)")
        comp("lowerleg01.L", 0, "left knee flexion (+X of lowerleg01.L)")
        comp("foot.L", 0, "left ankle plantar flexion (+X of foot.L)")
        elbow = pose[:, names.index("lowerarm01.L")] @ prior.elbow_axis + prior.elbow_rest
        hist.append(("left elbow flexion (about its hinge axis)", elbow, (0.0, 150.0)))
        sp = [names.index(x) for x in SPINE]
        hist.append(("trunk flexion (sum of +X over spine05..01)", pose[:, sp, 0].sum(1),
                     tuple(np.asarray([lim[x][0] for x in SPINE]).sum(0))))
    else:
        for j in ("L_hip", "L_knee", "L_shoulder", "L_elbow"):
            comp(j, 0, f"{j} X (deg)")
    lsp = b["lsp14"].numpy()
    up = np.array([0, 0, 1.0]) if model.up_axis == "z" else np.array([0, 1.0, 0])
    arm = lsp[:, 10] - lsp[:, 9]                                   # L_shoulder -> L_elbow
    elev = np.degrees(np.arccos(np.clip(-(arm @ up) / np.linalg.norm(arm, axis=1), -1, 1)))
    hist.append(("left upper-arm elevation from hanging (deg)", elev, None))
    ankles = np.linalg.norm(lsp[:, 0] - lsp[:, 5], axis=1)
    hist.append(("ankle-to-ankle distance (cm)", 100 * ankles, None))
    title = (f"mocap ({manifest['source']}, {manifest['backend']}): {manifest['splits']['train']['count']} train poses; "
             f"histograms over {n}; dashed: joint limits")
    mocap_figure(path, labelled, faces, rgb, hist, model.up_axis, title)


# ---------------------------------------------------------------------------------- reading

class MocapData:
    """One split of a mocap output: `len`, `batch(indices)`, `iter_batches(...)`.

    Shards are memory-mapped to validate them (a missing, truncated or mis-shaped shard raises
    MocapFormatError naming the file); `iter_batches` streams them one shard at a time."""

    def __init__(self, directory: str | Path, split: str, manifest: Optional[dict] = None):
        self.dir = Path(directory)
        if manifest is None:
            manifest = read_manifest(self.dir)
        if split not in manifest["splits"]:
            raise MocapFormatError(f"{self.dir / MANIFEST}: no split {split!r} (splits: {', '.join(manifest['splits'])})")
        self.manifest, self.split = manifest, split
        self.fields = {k: (tuple(v["shape"]), np.dtype(v["dtype"])) for k, v in manifest["fields"].items()}
        self.counts = [int(c) for c in manifest["splits"][split]["shards"]]
        if sum(self.counts) != int(manifest["splits"][split]["count"]):
            raise MocapFormatError(f"{self.dir / MANIFEST}: split {split}: shard counts {self.counts} do not add up "
                                   f"to its count {manifest['splits'][split]['count']}")
        self.offsets = np.cumsum([0] + self.counts)
        self.maps = [{k: self._open(k, i, c) for k in self.fields} for i, c in enumerate(self.counts)]

    def path(self, field: str, shard: int) -> Path:
        return self.dir / self.split / f"{field}-{shard:05d}.npy"

    def _open(self, field: str, shard: int, count: int) -> np.ndarray:
        p = self.path(field, shard)
        shape, dtype = self.fields[field]
        if not p.is_file():
            raise MocapFormatError(f"{p}: missing shard (the manifest lists {len(self.counts)} shards for {self.split}); "
                                   "rerun the mocap rule")
        try:
            a = np.load(p, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise MocapFormatError(f"{p}: corrupt or truncated shard ({e}); rerun the mocap rule") from None
        if a.shape != (count, *shape) or a.dtype != dtype:
            raise MocapFormatError(f"{p}: expected {dtype} {(count, *shape)}, found {a.dtype} {a.shape}; rerun the mocap rule")
        return a

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def batch(self, indices) -> dict[str, torch.Tensor]:
        """Rows at `indices` (any order) -> {field: tensor (len(indices), ...)}."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"mocap {self.split}: index out of range 0..{len(self) - 1}")
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        out = {k: np.empty((len(idx), *s), dtype=d) for k, (s, d) in self.fields.items()}
        for sh in np.unique(shard):
            sel = np.flatnonzero(shard == sh)
            local = idx[sel] - self.offsets[sh]
            for k in self.fields:
                out[k][sel] = self.maps[sh][k][local]
        return {k: torch.from_numpy(v) for k, v in out.items()}

    def iter_batches(self, batch_size: int, shuffle: bool = False, seed: int = 0,
                     drop_last: bool = False) -> Iterator[dict[str, torch.Tensor]]:
        """Batches streamed shard by shard (shard order and rows within a shard shuffled when
        `shuffle`, deterministic by `seed`); a batch may span two shards."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.counts)) if shuffle else np.arange(len(self.counts))
        carry: dict[str, list] = {k: [] for k in self.fields}
        held = 0
        for sh in order:
            rows = rng.permutation(self.counts[sh]) if shuffle else np.arange(self.counts[sh])
            data = {k: np.asarray(self.maps[sh][k])[rows] for k in self.fields}    # one shard in memory
            start = 0
            while start < len(rows):
                take = min(batch_size - held, len(rows) - start)
                for k in self.fields:
                    carry[k].append(data[k][start:start + take])
                held += take
                start += take
                if held == batch_size:
                    yield {k: torch.from_numpy(np.concatenate(v)) for k, v in carry.items()}
                    carry = {k: [] for k in self.fields}
                    held = 0
        if held and not drop_last:
            yield {k: torch.from_numpy(np.concatenate(v)) for k, v in carry.items()}


def read_manifest(directory: str | Path) -> dict:
    import json
    p = Path(directory) / MANIFEST
    try:
        m = json.loads(p.read_text())
    except FileNotFoundError:
        raise MocapFormatError(f"{p}: no mocap manifest here; run the workflow's mocap rule") from None
    except json.JSONDecodeError as e:
        raise MocapFormatError(f"{p}: corrupt manifest ({e.msg} at line {e.lineno}); rerun the mocap rule") from None
    if m.get("format_version") != FORMAT_VERSION:
        raise MocapFormatError(f"{p}: format version {m.get('format_version')}, this uvhmr reads {FORMAT_VERSION}; "
                               "rerun the mocap rule")
    return m


def open_mocap(directory: str | Path, split: str) -> MocapData:
    """The `split` ("train" or "val") of a mocap output folder."""
    return MocapData(directory, split)
