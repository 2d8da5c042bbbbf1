"""The mocap rule's figure: sampled bodies (front and side) and joint-angle histograms, so a person
can judge the pose prior at a glance. Matplotlib, Agg backend, orthographic views drawn as
depth-sorted, back-face-culled, Lambert-shaded mesh triangles."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Views in Anny's frame (Z up, the body faces -Y, +X its left):
# screen x, screen y, direction towards the viewer.
VIEWS = {
    "front": (np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0, -1.0, 0])),   # body's left on the right
    "side": (np.array([0, 1.0, 0]), np.array([0, 0, 1.0]), np.array([1.0, 0, 0])),     # seen from its left
}
UP_Y = {  # SMPL's frame: Y up, faces +Z
    "front": (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])),
    "side": (np.array([0, 0, -1.0]), np.array([0, 1.0, 0]), np.array([1.0, 0, 0])),
}


def draw_body(ax, vertices: np.ndarray, faces: np.ndarray, view: str = "front", face_rgb: np.ndarray | None = None,
              up_axis: str = "z", max_faces: int | None = None) -> None:
    """Draw one mesh (V, 3) into a matplotlib axis, orthographic, painter's algorithm."""
    from matplotlib.collections import PolyCollection
    sx, sy, towards = (VIEWS if up_axis == "z" else UP_Y)[view]
    tri = vertices[faces]                                             # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    facing = normal @ towards
    if np.mean(facing) < 0:                                           # inward winding
        facing = -facing
    keep = np.flatnonzero(facing > 0)
    if max_faces is not None and len(keep) > max_faces:
        keep = keep[np.linspace(0, len(keep) - 1, max_faces).astype(int)]
    depth = (tri[keep].mean(1) @ towards)
    order = keep[np.argsort(depth)]                                   # far first
    xy = np.stack([tri[order] @ sx, tri[order] @ sy], -1)
    base = np.full((len(faces), 3), 0.75) if face_rgb is None else face_rgb
    shade = 0.35 + 0.65 * facing[order, None]
    ax.add_collection(PolyCollection(xy, facecolors=np.clip(base[order] * shade, 0, 1), edgecolors="none",
                                     antialiaseds=False))
    pts = vertices @ np.stack([sx, sy], 1)
    ax.set_xlim(pts[:, 0].min() - 0.05, pts[:, 0].max() + 0.05)
    ax.set_ylim(pts[:, 1].min() - 0.05, pts[:, 1].max() + 0.05)
    ax.set_aspect("equal")
    ax.axis("off")


def part_colours(vertex_part: np.ndarray, faces: np.ndarray, joint_names) -> np.ndarray:
    """(F, 3) colours: left limbs blue, right limbs orange, trunk and head grey."""
    names = list(joint_names)
    per_bone = np.array([[0.35, 0.55, 0.9] if n.endswith(".L") else [0.95, 0.6, 0.3] if n.endswith(".R")
                         else [0.78, 0.78, 0.75] for n in names])
    if not any(n.endswith(".L") for n in names):                      # SMPL names: L_x / R_x
        per_bone = np.array([[0.35, 0.55, 0.9] if n.startswith("L_") else [0.95, 0.6, 0.3] if n.startswith("R_")
                             else [0.78, 0.78, 0.75] for n in names])
    vc = per_bone[vertex_part]
    return vc[faces].mean(1)


def mocap_figure(path: Path, bodies: list[tuple[str, np.ndarray]], faces: np.ndarray, face_rgb: np.ndarray,
                 histograms: list[tuple[str, np.ndarray, tuple[float, float] | None]], up_axis: str = "z",
                 title: str = "") -> None:
    """bodies: (label, vertices (V, 3)); histograms: (label, values in degrees, (lo, hi) limit or None)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nb = len(bodies)
    nh = len(histograms)
    hist_cols = 4
    hist_rows = (nh + hist_cols - 1) // hist_cols
    fig = plt.figure(figsize=(max(2.0 * nb, 12), 6.2 + 2.4 * hist_rows), dpi=90)
    grid = fig.add_gridspec(2 + hist_rows, max(nb, hist_cols * 2), height_ratios=[3.1, 3.1] + [2.4] * hist_rows,
                            hspace=0.35, wspace=0.05)
    ncols = max(nb, hist_cols * 2)
    for i, (label, v) in enumerate(bodies):
        for r, view in enumerate(("front", "side")):
            ax = fig.add_subplot(grid[r, i])
            draw_body(ax, v, faces, view, face_rgb, up_axis)
            if r == 0:
                ax.set_title(label, fontsize=9)
            if i == 0:
                ax.text(-0.02, 0.5, view, transform=ax.transAxes, rotation=90, va="center", ha="right", fontsize=9)
    span = ncols // hist_cols
    for k, (label, values, lim) in enumerate(histograms):
        r, c = divmod(k, hist_cols)
        ax = fig.add_subplot(grid[2 + r, c * span:(c + 1) * span])
        ax.hist(values, bins=60, color="0.35")
        if lim is not None:
            for x in lim:
                ax.axvline(x, color="crimson", lw=1, ls="--")
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
