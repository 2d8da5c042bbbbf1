"""The paper's Fig. 3 for a few samples of a split: image, IUV image M_i, dense joint map M_j,
dense location map M_l and dense displacement map M_d, as the network sees them (occluders
composited, no augmentation)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from uvhmr.data.dataset import SampleDataset

# Colour scales (metres) shared by every sample, so colours compare across rows.
LOCATION_RANGE = 0.8
DISPLACEMENT_RANGE = 0.25


def map_rgb(m: np.ndarray, mask: np.ndarray, half_range: float) -> np.ndarray:
    """(3, S, S) root-relative map -> (S, S, 3) RGB: x, y, z each from [-r, r] to [0, 1]; black
    off the mask."""
    rgb = np.clip(np.moveaxis(m, 0, -1) / (2 * half_range) + 0.5, 0, 1)
    return rgb * mask[..., None]


def iuv_rgb(iuv: np.ndarray) -> np.ndarray:
    """(3, S, S) (mask, U, V) -> RGB: red = U, green = V, blue = 1 - U (as DensePose figures)."""
    m, u, v = iuv
    return np.stack([u, v, 1 - u], -1) * m[..., None]


def write_dataset_figure(split_dir: Path, out: Path, rows: int = 4) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ds = SampleDataset(split_dir, joints=14, augment=None, occlusion=True)
    n = min(rows, len(ds))
    idx = np.linspace(0, len(ds) - 1, n).round().astype(int) if n else []
    titles = ("image", "IUV  $M_i$", "joint map  $M_j$", "location map  $M_l$", "displacement  $M_d$")
    fig, axes = plt.subplots(n, 5, figsize=(11, 2.3 * n), squeeze=False)
    for r, i in enumerate(idx):
        s = {k: v.numpy() for k, v in ds[int(i)].items()}
        mask = s["mask"][0] > 0.5
        panels = (np.moveaxis(s["image"], 0, -1), iuv_rgb(s["iuv"]), map_rgb(s["M_j"], mask, LOCATION_RANGE),
                  map_rgb(s["M_l"], mask, LOCATION_RANGE), map_rgb(s["M_d"], mask, DISPLACEMENT_RANGE))
        for c, (ax, img) in enumerate(zip(axes[r], panels)):
            ax.imshow(np.clip(img, 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=10)
        vis = int(s["visible"].sum())
        axes[r, 0].set_ylabel(f"#{int(i)}: {vis}/14 joints visible", fontsize=8)
    fig.suptitle(f"{ds.index['split']}: semantic maps aligned with the image (paper Fig. 3); "
                 f"M_l, M_j in [-{LOCATION_RANGE}, {LOCATION_RANGE}] m, M_d in [-{DISPLACEMENT_RANGE}, "
                 f"{DISPLACEMENT_RANGE}] m as RGB = xyz", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(fig)
