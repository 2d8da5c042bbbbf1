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


def test_report_names_profile_data_and_commit(tmp_path):
    import subprocess
    from uvhmr.report.provenance import git_commit, provenance_line
    metrics = {"dmp14": _fake("dmp14", 100.0)}
    metrics["dmp14"]["data"] = {"path": "results/default/data/test", "source": "synthetic", "split": "test",
                                "samples": 50, "image_size": 64, "body_model": "anny", "occluder_families": "test"}
    prov = {"profile": "default", "data": metrics["dmp14"]["data"], "commit": "0123abc"}
    out = build_tables(metrics, "default", prov)
    for name in ("ablation.md", "comparison.md"):
        first = out[name].splitlines()[2]
        assert "Profile **default**" in first and "commit `0123abc`" in first, first
        assert "synthetic test split `results/default/data/test` (50 images, 64 px, anny bodies" in first
    # Without a recorded commit or data, the report says so instead of guessing.
    line = provenance_line({"profile": "smoke", "data": {}, "commit": git_commit(tmp_path)})
    assert line == "Profile **smoke**; data: unknown; commit `unknown`."
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "add", "f"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], cwd=tmp_path, check=True)
    head = git_commit(tmp_path)
    assert len(head) == 40 and "uncommitted" not in head
    (tmp_path / "f").write_text("y")
    assert git_commit(tmp_path) == head + " + uncommitted changes"
