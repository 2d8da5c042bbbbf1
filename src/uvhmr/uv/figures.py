"""Figures of the UV assets: the layout coloured by A_uv (paper Fig. 4, left) and the UV maps
UV_l, UV_j, UV_d of a posed body (paper Fig. 5)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from uvhmr.uv.gt import gt_uv_maps, root_of


def _colour(labels: np.ndarray, k: int) -> np.ndarray:
    import matplotlib
    cmap = matplotlib.colormaps["tab20"]
    img = np.ones(labels.shape + (3,))
    on = labels >= 0
    img[on] = cmap(labels[on] % 20 / 19.999)[:, :3] if k > 1 else 0
    return img


def _rgb(m: torch.Tensor, on: np.ndarray) -> np.ndarray:
    """(3, R, R) map -> RGB image, each channel scaled over the body texels, white elsewhere."""
    a = m.permute(1, 2, 0).numpy()
    out = np.ones_like(a)
    v = a[on]
    lo, hi = v.min(0), v.max(0)
    out[on] = (v - lo) / np.where(hi > lo, hi - lo, 1)
    return out


def write_figures(body, assets, out: Path, res: int = 128) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    out.mkdir(parents=True, exist_ok=True)

    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6))
    ax = axes[0]
    ax.add_collection(PolyCollection(assets.face_uv, facecolors="0.8", edgecolors="0.45", linewidths=0.05))
    ax.axvline(0.5, color="r", lw=0.8, ls="--")
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", title="UV layout (symmetric about u = 0.5)")
    for ax, k, js in ((axes[1], 14, body.lsp14), (axes[2], 24, body.joints24)):
        lab = assets.auv(k, res).numpy()
        ax.imshow(_colour(lab, k), interpolation="nearest", extent=(0, 1, 0, 1))
        ax.set(title=f"A_uv, {k} joints ({res}x{res})", xticks=[], yticks=[])
        if k == 14:
            import matplotlib as mpl
            cmap = mpl.colormaps["tab20"]
            ax.legend(handles=[Patch(color=cmap(i % 20 / 19.999), label=n) for i, n in enumerate(js.names)],
                      loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(out / "uv_layout_auv.png", dpi=110)
    plt.close(fig)

    g = torch.Generator().manual_seed(7)
    pose = torch.randn(1, body.num_joints, 3, generator=g) * 0.25
    pose[:, 0] = 0
    with torch.no_grad():
        o = body(pose, body.sample_shape(1, seed=7))
        sampler = assets.sampler(res)
        uv_l, uv_j, uv_d = gt_uv_maps(sampler, assets.auv(14, res), o.vertices, o.lsp14, root_of(o.lsp14))
    on = assets.auv(14, res).numpy() >= 0
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    for ax, m, t in zip(axes, (uv_l[0], uv_j[0], uv_d[0]), ("UV_l (location)", "UV_j (A_uv joint)", "UV_d = UV_l - UV_j")):
        ax.imshow(_rgb(m, on), interpolation="nearest")
        ax.set(title=t + ", xyz as RGB", xticks=[], yticks=[])
    mag = uv_d[0].norm(dim=0).numpy()
    im = axes[3].imshow(np.where(on, mag * 100, np.nan), cmap="viridis", interpolation="nearest")
    axes[3].set(title="|UV_d| (cm), the magnitude l_dismag compares with its flip", xticks=[], yticks=[])
    fig.colorbar(im, ax=axes[3], fraction=0.046)
    fig.tight_layout()
    fig.savefig(out / "uv_maps.png", dpi=110)
    plt.close(fig)
