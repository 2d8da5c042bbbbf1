"""Differences between two variants and their uncertainty, over test samples and training seeds.

A variant's error is the mean over its seeds of the mean over the test samples. Two sources of
chance move it: which test samples were drawn, and which seeds were trained. The interval of a
difference resamples both (a two-level bootstrap): the samples once per replicate and shared by
the two variants (they are scored on the same samples, so the comparison stays paired), and each
variant's seeds independently (they are different trainings). With one seed each it is the
ordinary paired bootstrap over samples.
"""
from __future__ import annotations

import numpy as np


def _per_seed(x) -> np.ndarray:
    """(N,) or (S, N) per-sample errors -> (S, N) float, None as NaN."""
    a = np.asarray(x, dtype=float)
    return a[None] if a.ndim == 1 else a


def paired_difference(a, b, n_boot: int = 2000, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """a (S_a, N), b (S_b, N): per-seed, per-sample errors of two variants on the same N samples
    (a 1-D list counts as one seed). Samples where any seed of either is not finite are dropped.
    -> (mean of a minus mean of b, each the mean over seeds of the mean over samples; its 95 %
    interval from the two-level bootstrap: samples shared, seeds drawn per variant)."""
    a, b = _per_seed(a), _per_seed(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired_difference: a has {a.shape[1]} samples, b has {b.shape[1]}; they must be the same rows")
    ok = np.isfinite(a).all(0) & np.isfinite(b).all(0)
    a, b = a[:, ok], b[:, ok]
    n = a.shape[1]
    if n == 0:
        return float("nan"), (float("nan"), float("nan"))
    diff = float(a.mean() - b.mean())
    rng = np.random.default_rng(seed)
    # Each replicate's sample draw as counts per sample: a seed's mean over the draw is counts @ errors / n.
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)]).astype(float)
    means_a, means_b = counts @ a.T / n, counts @ b.T / n                    # (n_boot, S_a), (n_boot, S_b)
    pick = lambda m: np.take_along_axis(m, rng.integers(0, m.shape[1], m.shape), 1).mean(1)
    boots = pick(means_a) - pick(means_b)
    return diff, (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)))
