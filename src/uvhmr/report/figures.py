"""The figures rule: reports/<profile>/figures/, the paper's figure analogues in one place.

  fig3_dense_maps.png     the test split's semantic maps (paper Fig. 3), from the dataset rule
  fig4_uv_layout_auv.png  UV layout and A_uv (Fig. 4, left), from uv_assets
  fig5_uv_maps.png        UV_l, UV_j, UV_d of a posed body (Fig. 5), from uv_assets
  mocap_prior.png         sampled bodies of the pose prior, from mocap (when it drew one)
  fig8_qualitative.png    Fig. 8: fixed test images, occluded ones among them, with DMP-14's
                          J_initial, IK-14's J_refine and posed mesh, UVI-14's joints and mesh
  README.md               what each figure is, and which profile, data and commit made them

Fig. 8's predictions come from the same functions that `evaluate` scores
(uvhmr.evaluate.run: dmp_predictions, ik_predictions, uvi_predictions), so a figure shows exactly
what the tables measure. Each stage is drawn with its own weak-perspective camera (DMP's for DMP
and IK, UVI's refinement for UVI): a drawn joint off its ground truth is a real error of the
stage, in 3-D or in the camera.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from uvhmr.body.model import load_body_model
from uvhmr.data.dataset import SampleDataset
from uvhmr.data.render import LSP14_PARENTS, draw_mesh_overlay
from uvhmr.device import pick_device
from uvhmr.evaluate import metrics as M
from uvhmr.evaluate.run import (data_provenance, dmp_predictions, ground_truth, ik_predictions, uvi_cache_inputs,
                                uvi_predictions)
from uvhmr.io import atomic_dir
from uvhmr.report.provenance import git_commit, provenance_line
from uvhmr.uv.assets import load_uv_assets

# (output name, input key, path inside that input, caption)
COPIED = (
    ("fig3_dense_maps.png", "data", "figures/dataset_samples.png",
     "Paper Fig. 3 analogue: test images with their IUV image M_i, joint map M_j, location map M_l and "
     "displacement map M_d (ground truth, occluders composited)."),
    ("fig4_uv_layout_auv.png", "uv", "figures/uv_layout_auv.png",
     "Paper Fig. 4 (left) analogue: the symmetric UV layout and the UV part assignment A_uv (14 and 24 parts)."),
    ("fig5_uv_maps.png", "uv", "figures/uv_maps.png",
     "Paper Fig. 5 analogue: UV_l, UV_j and UV_d of a posed body, and |UV_d|."),
    ("mocap_prior.png", "mocap", "figures/mocap_prior.png",
     "Bodies drawn from the pose prior GIK-Net trains on (mocap rule), with joint-angle histograms."),
)
FIG8 = "fig8_qualitative.png"
FIG8_CAPTION = ("Paper Fig. 8 analogue: fixed test images (occluded ones marked), ground-truth joints (hollow: "
                "occluded), DMP-14's J_initial (joints without an observed texel are not drawn), IK-14's J_refine "
                "and GIK-Net mesh, UVI-14's joints and mesh, and a side view of the 3-D joints. Numbers: the "
                "sample's MPJPE (joints) or MPVE (meshes) in mm.")

_SIDE = {"R": (0.95, 0.45, 0.1), "L": (0.15, 0.45, 0.95), "C": (0.55, 0.55, 0.55)}
JOINT_RGB = np.array([_SIDE[n[0]] if n[:2] in ("R_", "L_") else _SIDE["C"] for n in M.LSP14_NAMES])
MESH_RGB = {"ik": (0.55, 0.75, 1.0), "uvi": (1.0, 0.72, 0.45)}
DEPTH = 50.0     # metres: the pseudo-perspective camera that draws a weak-perspective one


def pick_samples(visible: np.ndarray, n: int, n_occluded: int, min_hidden: int) -> list[int]:
    """Fixed test samples for Fig. 8: `n_occluded` with at least `min_hidden` hidden joints and
    the rest with fewer, each group evenly spaced over the split (so the choice depends only on
    the split, not on any model). visible: (N, 14) bool. -> sorted dataset indices."""
    hidden = (~np.asarray(visible, bool)).sum(1)
    occ, clear = np.flatnonzero(hidden >= min_hidden), np.flatnonzero(hidden < min_hidden)
    k_occ = min(n_occluded, len(occ), n)
    k_clear = min(n - k_occ, len(clear))
    k_occ = min(n - k_clear, len(occ))                  # too few clear samples: more occluded ones

    def spread(a, k):
        return a[np.unique(np.linspace(0, len(a) - 1, k).round().astype(int))] if k > 0 else a[:0]
    return sorted(int(i) for i in np.concatenate([spread(occ, k_occ), spread(clear, k_clear)]))


def weak_project(points: np.ndarray, cam: np.ndarray, size: float) -> np.ndarray:
    """(K, 3) camera-frame, root-relative points, weak perspective (s, tx, ty) -> (K, 2) pixels
    in an image of `size` px: 2 x / size - 1 = s (X_xy + t)."""
    s, t = float(cam[0]), np.asarray(cam[1:3], np.float64)
    return (s * (np.asarray(points, np.float64)[:, :2] + t) + 1.0) * size / 2.0


def _mesh_overlay(image: np.ndarray, verts: np.ndarray, faces: np.ndarray, cam: np.ndarray, rgb) -> np.ndarray:
    """The mesh drawn over `image` (R, R, 3) uint8 through the weak-perspective camera, as a
    perspective camera DEPTH metres away (1 % scale error for a body 1 m deep)."""
    size = image.shape[0]
    s = float(cam[0])
    if not np.isfinite(verts).all() or not s > 1e-3:
        return image
    vc = np.asarray(verts, np.float64) + np.array([cam[1], cam[2], DEPTH])
    f = s * size / 2.0 * DEPTH
    K = np.array([[f, 0, size / 2.0], [0, f, size / 2.0], [0, 0, 1.0]])
    return draw_mesh_overlay(image, vc, faces, K, color=rgb, opacity=0.8)


def _skeleton(ax, xy: np.ndarray, shown=None, hollow=None, lw: float = 1.4, ms: float = 18) -> None:
    shown = np.ones(len(xy), bool) if shown is None else np.asarray(shown, bool)
    hollow = np.zeros(len(xy), bool) if hollow is None else np.asarray(hollow, bool)
    for k, p in enumerate(LSP14_PARENTS):
        if p >= 0 and shown[k] and shown[p]:
            ax.plot(xy[[k, p], 0], xy[[k, p], 1], color=JOINT_RGB[k], lw=lw, solid_capstyle="round")
    on = shown & ~hollow
    ax.scatter(xy[on, 0], xy[on, 1], s=ms, c=JOINT_RGB[on], edgecolors="k", linewidths=0.4, zorder=3)
    off = shown & hollow
    ax.scatter(xy[off, 0], xy[off, 1], s=ms, facecolors="none", edgecolors=JOINT_RGB[off], linewidths=1.2, zorder=3)


def _side(ax, joints: dict) -> None:
    """Side view of root-relative 3-D joints (camera frame: depth z to the right, up = -y)."""
    for label, (j, style) in joints.items():
        j = np.asarray(j, np.float64)
        for k, p in enumerate(LSP14_PARENTS):
            if p >= 0:
                ax.plot([j[k, 2], j[p, 2]], [-j[k, 1], -j[p, 1]], style, lw=1.2, alpha=0.9,
                        label=label if k == 0 else None)
    ax.set_aspect("equal")
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_xticks([])
    ax.set_yticks([])


def qualitative_figure(out: Path, rows: list[dict], faces: np.ndarray, render_size: int, title: str) -> None:
    """rows: per sample {index, image (S, S, 3) float, gt_2d (14, 2) px, visible (14,), gt (14, 3),
    dmp, dmp_observed, dmp_cam, ik, ik_mesh_joints, ik_verts, uvi, uvi_verts, uvi_cam, errors}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = ("image, ground truth", "DMP-14: $J_{initial}$", "IK-14: $J_{refine}$", "IK-14: GIK-Net mesh",
            "UVI-14: joints", "UVI-14: mesh", "side view (depth →)")
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.95 * len(cols), 2.05 * len(rows) + 0.5), squeeze=False)
    R = render_size
    for r, row in enumerate(rows):
        img = row["image"]
        size = img.shape[0]
        # Nearest upsampling: the network's pixels as it saw them (and a small PNG).
        big = np.asarray(torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float(),
                                                         size=(R, R), mode="nearest")[0]
                         .permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5, np.uint8)
        scale = R / size
        panels = [
            (big, lambda ax: _skeleton(ax, row["gt_2d"] * scale, hollow=~row["visible"]), ""),
            (big, lambda ax: _skeleton(ax, weak_project(row["dmp"], row["dmp_cam"], R), shown=row["dmp_observed"]),
             f"{row['errors']['dmp']:.0f} mm"),
            (big, lambda ax: _skeleton(ax, weak_project(row["ik"], row["dmp_cam"], R)), f"{row['errors']['ik']:.0f} mm"),
            (_mesh_overlay(big, row["ik_verts"], faces, row["dmp_cam"], MESH_RGB["ik"]), None,
             f"MPVE {row['errors']['ik_mesh']:.0f} mm"),
            (big, lambda ax: _skeleton(ax, weak_project(row["uvi"], row["uvi_cam"], R)), f"{row['errors']['uvi']:.0f} mm"),
            (_mesh_overlay(big, row["uvi_verts"], faces, row["uvi_cam"], MESH_RGB["uvi"]), None,
             f"MPVE {row['errors']['uvi_mesh']:.0f} mm"),
        ]
        for c, (image, draw, note) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(image, extent=(0, R, R, 0), interpolation="nearest")
            if draw is not None:
                draw(ax)
            ax.set_xlim(0, R)
            ax.set_ylim(R, 0)
            ax.set_xticks([])
            ax.set_yticks([])
            if note:
                ax.text(0.03, 0.03, note, transform=ax.transAxes, fontsize=7, color="w", va="bottom",
                        bbox=dict(facecolor="k", alpha=0.55, pad=1.5, lw=0))
        _side(axes[r, -1], {"ground truth": (row["gt"], "k-"), "IK-14": (row["ik"], "b--"), "UVI-14": (row["uvi"], "r-")})
        hidden = int((~row["visible"]).sum())
        axes[r, 0].set_ylabel(f"#{row['index']}: {14 - hidden}/14 visible" + ("\n(occluded)" if hidden else ""),
                              fontsize=8, color="firebrick" if hidden else "k")
    for c, name in enumerate(cols):
        axes[0, c].set_title(name, fontsize=9)
    axes[0, -1].legend(fontsize=6, loc="upper left", frameon=False)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(fig)


def fig8_rows(rp, inputs: dict, log=print) -> tuple[list[dict], np.ndarray]:
    """Predict every stage on the chosen test samples. -> (rows for qualitative_figure, faces)."""
    sec = rp.section
    device = pick_device(rp.run.device)
    body = load_body_model(inputs["body"])
    dmp = dmp_predictions(inputs["dmp_cache"])
    if sec.samples:
        chosen = [int(i) for i in sec.samples]
    else:
        ds = SampleDataset(inputs["data"], joints=14, augment=None, occlusion=True, seed=rp.run.seed)
        visible = np.stack([ds[int(i)]["visible"].numpy() for i in dmp["index"]])
        chosen = [int(dmp["index"][k]) for k in pick_samples(visible, sec.n_images, sec.n_occluded, sec.min_hidden_joints)]
    row_of = {int(i): k for k, i in enumerate(dmp["index"])}
    missing = [i for i in chosen if i not in row_of]
    if missing:
        raise ValueError(f"figures.samples: {missing} not in the test split's DMP cache ({len(row_of)} samples)")
    rows = np.array([row_of[i] for i in chosen])
    log(f"figures: Fig. 8 on test samples {chosen}")
    gt = ground_truth(inputs["data"], np.asarray(chosen), body, rp.run.seed)
    ik = ik_predictions(inputs["ik_model"], dmp["j_initial"][rows], dmp["observed"][rows], body, device, seeds=1)[0]
    uv = load_uv_assets(inputs["uv"], body.faces.numpy())
    uvi = uvi_predictions(inputs["uvi_model"], uvi_cache_inputs(inputs["dmp_cache"], inputs["ik_cache"], rows),
                          uv, device, seeds=1)[0]
    dj = dmp["joints"][rows]
    errors = {"dmp": M.mpjpe(dj, gt["joints"]), "ik": M.mpjpe(ik["j_refine"], gt["joints"]),
              "ik_mesh": M.mpve(ik["vertices"], gt["vertices"], ik["mesh_joints"], gt["joints"]),
              "uvi": M.mpjpe(uvi["joints"], gt["joints"]),
              "uvi_mesh": M.mpve(uvi["vertices"], gt["vertices"], uvi["joints"], gt["joints"])}
    out = []
    for k, i in enumerate(chosen):
        it = gt["items"][k]
        out.append({"index": i, "image": it["image"].permute(1, 2, 0).numpy(), "gt_2d": it["joints2d"].numpy(),
                    "visible": gt["visible"][k].numpy(), "gt": gt["joints"][k].numpy(),
                    "dmp": dj[k].numpy(), "dmp_observed": dmp["observed"][rows[k]].numpy(),
                    "dmp_cam": dmp["camera"][rows[k]].numpy(),
                    "ik": ik["j_refine"][k].numpy(), "ik_verts": ik["vertices"][k].numpy(),
                    "uvi": uvi["joints"][k].numpy(), "uvi_verts": uvi["vertices"][k].numpy(),
                    "uvi_cam": uvi["camera"][k].numpy(),
                    "errors": {n: float(e[k]) for n, e in errors.items()}})
    return out, body.faces.numpy()


def run_figures(rp, inputs: dict, out_dir: Path, log=print) -> None:
    """inputs: data (test split), uv, mocap, body, dmp_cache (dmp14), ik_model (ik14), ik_cache
    (ik14), uvi_model (uvi14): paths. Writes out_dir (reports/<profile>/figures) atomically."""
    prov = {"profile": rp.profile, "data": data_provenance(inputs["data"]), "commit": git_commit()}
    readme = ["# Figures\n", provenance_line(prov) + " Written by `uvhmr figures`.\n"]
    copied = 0
    with atomic_dir(out_dir) as tmp:
        for name, key, rel, caption in COPIED:
            src = Path(inputs[key]) / rel
            if src.is_file():
                shutil.copyfile(src, tmp / name)
                copied += 1
                readme.append(f"- `{name}`: {caption} (from `{src}`)")
            else:
                readme.append(f"- `{name}`: not made: `{src}` does not exist (its rule drew no figure).")
                log(f"figures: {src} missing; {name} skipped")
        rows, faces = fig8_rows(rp, inputs, log)
        commit = prov["commit"][:12] + (" + uncommitted changes" if "uncommitted" in prov["commit"] else "")
        title = (f"DMP -> IK -> UVI on fixed test images (paper Fig. 8). Profile {rp.profile}, "
                 f"commit {commit}, data {inputs['data']}")
        qualitative_figure(tmp / FIG8, rows, faces, rp.section.render_size, title)
        readme.append(f"- `{FIG8}`: {FIG8_CAPTION} Test samples {[r['index'] for r in rows]}.")
        (tmp / "README.md").write_text("\n".join(readme) + "\n")
    log(f"wrote {out_dir}: {FIG8} ({len(rows)} test images) and {copied} copied figures")
