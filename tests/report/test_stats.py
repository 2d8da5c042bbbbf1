"""The two-level bootstrap of report/stats.py (issue #23)."""
import numpy as np
import pytest

from uvhmr.report.stats import paired_difference


def _errors(offsets, base, rng, noise=5.0):
    """One row of per-sample errors per seed: the shared per-sample difficulty, the seed's offset, noise."""
    return np.stack([base + o + rng.normal(0, noise, base.shape) for o in offsets])


def test_identical_variants_cover_zero_and_a_5mm_shift_excludes_it():
    rng = np.random.default_rng(0)
    a = rng.normal(100, 30, 500)
    d, (lo, hi) = paired_difference(a, a.copy())
    assert d == 0 and lo <= 0 <= hi
    d, (lo, hi) = paired_difference(a + 5 + rng.normal(0, 2, 500), a)
    assert 4 < d < 6 and lo > 0


def test_the_difference_is_that_of_the_shown_means():
    rng = np.random.default_rng(1)
    base = rng.uniform(50, 150, 300)
    a, b = _errors([10.0, 14.0], base, rng), _errors([0.0, 1.0], base, rng)
    d, (lo, hi) = paired_difference(a, b)
    shown_a, shown_b = np.mean([s.mean() for s in a]), np.mean([s.mean() for s in b])
    assert d == pytest.approx(shown_a - shown_b, abs=1e-9)
    assert lo < d < hi and lo > 0


def test_seeds_that_disagree_widen_the_interval():
    rng = np.random.default_rng(2)
    base = rng.uniform(50, 150, 300)
    noise = rng.normal(0, 5.0, (2, 300))
    agree_a = np.stack([base + 10 + noise[0], base + 10 + noise[1]])
    disagree_a = np.stack([base + 0 + noise[0], base + 20 + noise[1]])     # the same mean, seeds 20 mm apart
    b = _errors([0.0, 0.0], base, rng)
    d1, (lo1, hi1) = paired_difference(agree_a, b)
    d2, (lo2, hi2) = paired_difference(disagree_a, b)
    assert d1 == pytest.approx(d2, abs=1e-9)
    assert (hi2 - lo2) > 3 * (hi1 - lo1)
    assert lo2 <= 0.5 * d2      # with two seeds 20 mm apart, the seed draw alone can halve the difference


def test_one_seed_is_the_paired_bootstrap_and_nans_drop_the_sample():
    rng = np.random.default_rng(3)
    base = rng.uniform(50, 150, 200)
    a, b = base + 3 + rng.normal(0, 1, 200), base + rng.normal(0, 1, 200)
    a_nan = a.copy()
    a_nan[5] = np.nan
    d, (lo, hi) = paired_difference(a_nan.tolist(), b.tolist())
    keep = np.arange(200) != 5
    assert d == pytest.approx(float((a[keep] - b[keep]).mean()), abs=1e-9)
    assert lo < d < hi and hi - lo < 1.0     # paired: the shared per-sample difficulty cancels
    with pytest.raises(ValueError, match="same rows"):
        paired_difference(a[:10], b)
