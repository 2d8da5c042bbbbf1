"""The report's tables and its paired bootstrap (issue #9)."""
import numpy as np

from uvhmr.report.tables import TABLE4, build_tables, paired_bootstrap


def test_bootstrap_covers_zero_for_identical_and_excludes_it_for_a_5mm_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(100, 30, 500)
    d, (lo, hi) = paired_bootstrap(a, a.copy())
    assert d == 0 and lo <= 0 <= hi
    d, (lo, hi) = paired_bootstrap(a + 5 + rng.normal(0, 2, 500), a)
    assert 4 < d < 6 and lo > 0


def _fake(target, mpjpe, n=50, seed=0):
    rng = np.random.default_rng(seed)
    ps = (mpjpe + rng.normal(0, 10, n)).round(3).tolist()
    m = {"mpjpe": mpjpe, "pa_mpjpe": mpjpe * 0.8, "mpjpe_visible": mpjpe * 0.7, "pa_mpjpe_visible": mpjpe * 0.6}
    if target.startswith("uvi"):
        m["mpve"] = mpjpe * 1.2
    if target.startswith("ik"):
        m["mesh_mpve"] = mpjpe * 1.3
    return {"n": n, "metrics": m, "seeds": [{k: {"mean": v} for k, v in m.items()}], "per_sample": {"mpjpe": ps}}


def test_every_table4_row_has_numbers_and_the_profile_is_named():
    targets = {t for _, t, _, _ in TABLE4}
    metrics = {t: _fake(t, 100.0 + i, seed=i) for i, t in enumerate(sorted(targets))}
    metrics["mean_pose"] = _fake("mean_pose", 250.0)
    out = build_tables(metrics, "default")
    text = out["ablation.md"]
    assert "Profile **default**" in text
    for label, _, view, _ in TABLE4:
        row = next(l for l in text.splitlines() if l.startswith(f"| {label} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] != "-" and cells[3] != "-", row        # MPJPE and PA-MPJPE filled
    assert "| Mean pose (floor) |" in out["comparison.md"] and "(paper)" in out["comparison.md"]
    assert '"profile": "default"' in out["metrics.json"]
