"""The report's tables (issue #9); their intervals: test_stats.py."""
from pathlib import Path

import numpy as np

from uvhmr.config import load_params
from uvhmr.report.tables import build_tables, table4_rows

REPO = Path(__file__).resolve().parents[2]
PARAMS = load_params(REPO / "params.yaml")
REG = (PARAMS.variants, PARAMS.pipeline)
TABLE4 = table4_rows(*REG)



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
    targets = {r.target for r in TABLE4}
    metrics = {t: _fake(t, 100.0 + i, seed=i) for i, t in enumerate(sorted(targets))}
    metrics["mean_pose"] = _fake("mean_pose", 250.0)
    out = build_tables(metrics, "default", *REG)
    text = out["ablation.md"]
    assert "Profile **default**" in text
    for label in (r.label for r in TABLE4):
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
    out = build_tables(metrics, "default", *REG, prov)
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
    # What the DAG writes while it runs (dvc.lock under `dvc repro`, reports/) is not a code change.
    (tmp_path / "reports").mkdir()
    for name in ("dvc.lock", "reports/ablation.md"):
        (tmp_path / name).write_text("1")
    subprocess.run(["git", "add", "dvc.lock", "reports"], cwd=tmp_path, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "y"], cwd=tmp_path, check=True)
    head = git_commit(tmp_path)
    for name in ("dvc.lock", "reports/ablation.md"):
        (tmp_path / name).write_text("2")
    assert git_commit(tmp_path) == head
    (tmp_path / "f").write_text("y")
    assert git_commit(tmp_path) == head + " + uncommitted changes"


def test_the_reading_says_where_our_ordering_differs_from_the_papers():
    metrics = {r.target: _fake(r.target, 200.0, seed=1) for r in TABLE4}
    metrics["ik14"] = _fake("ik14", 180.0, seed=2)                       # IK improves on DMP ...
    metrics["uvi14"] = _fake("uvi14", 190.0, seed=3)                     # ... UVI does not improve on IK
    metrics["uvi14_noik"] = _fake("uvi14_noik", 195.0, seed=3)          # +5 mm on the same noise: hurts
    metrics["uvi14_nodismag"] = _fake("uvi14_nodismag", 190.0, seed=3)  # identical: no difference
    metrics["uvi14_nodmp"] = _fake("uvi14_nodmp", 185.0, seed=3)        # -5 mm: helps
    metrics["mean_pose"] = _fake("mean_pose", 195.0)
    text = build_tables(metrics, "default", *REG)["ablation.md"].split("## How this reads against the paper")[1]
    lines = text.strip().splitlines()
    assert any(l.startswith("- **DMP-14 does not beat the mean pose** (200.0 mm vs 195.0 mm") for l in lines)
    assert not any("IK-14 does not beat" in l or "UVI-14 does not beat" in l for l in lines)
    assert "- IK-14 improves on DMP-14 (180.0 vs 200.0 mm), as in the paper (112.9 vs 128.4 mm)." in lines
    assert "- UVI-14 does not improve on IK-14 (190.0 vs 180.0 mm), unlike the paper (58.3 vs 112.9 mm)." in lines
    verdict = {l.split(":")[0][2:]: l for l in lines if l.startswith("- UVI-14 w/o")}
    assert "hurts here, as in the paper" in verdict["UVI-14 w/o IK-14"] and "the paper: +11.1 mm" in verdict["UVI-14 w/o IK-14"]
    assert "no measurable difference" in verdict["UVI-14 w/o l_dismag"]
    assert "helps here, unlike the paper" in verdict["UVI-14 w/o DMP-14"]


def test_the_rows_come_from_the_registry_in_the_papers_order():
    assert [(r.label, r.target, r.view, r.full) for r in TABLE4] == [
        ("DMP-24", "dmp24", "", "dmp14"), ("DMP-14 w/o synthetic occlusion", "dmp14_nosynocc", "", "dmp14"),
        ("DMP-14-Nonoccluded", "dmp14", "visible", None), ("DMP-14", "dmp14", "", None),
        ("IK-14 w/o gaussian noise", "ik14_nonoise", "", "ik14"), ("IK-14 w/o random zero", "ik14_nozero", "", "ik14"),
        ("IK-14", "ik14", "", None),
        ("UVI-14 w/o IK-14", "uvi14_noik", "", "uvi14"), ("UVI-14 w/o DMP-14", "uvi14_nodmp", "", "uvi14"),
        ("UVI-14 w/o l_dismag", "uvi14_nodismag", "", "uvi14"), ("UVI-14", "uvi14", "", None)]
    assert TABLE4[3].paper == (None, 128.4, 109.8) and TABLE4[-1].paper == (72.3, 58.3, 44.6)


def test_a_variant_without_the_papers_numbers_gets_a_row_and_a_reading():
    import yaml
    from uvhmr.config import parse_params
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["variants"]["train_uvi"]["uvi14_wide"] = {"label": "UVI-14 wide", "overrides": {"width": 48}}
    p = parse_params(raw)
    rows = table4_rows(p.variants, p.pipeline)
    assert [r.label for r in rows][-2:] == ["UVI-14 wide", "UVI-14"]
    metrics = {r.target: _fake(r.target, 200.0, seed=1) for r in rows}
    metrics["uvi14_wide"] = _fake("uvi14_wide", 190.0, seed=1)
    out = build_tables(metrics, "default", p.variants, p.pipeline)
    assert "| UVI-14 wide |" in out["ablation.md"]
    assert "- UVI-14 wide: helps here (Δ -10.0 mm" in out["ablation.md"] and "not in the paper" in out["ablation.md"]
    assert "UVI-14 wide (paper)" not in out["comparison.md"]


def test_stage_ordering_and_heldout_ik_ablations_are_paired_differences_read_against_the_paper():
    """Issue #23's ordering (UVI < IK < DMP with intervals) and issue #20's IK ablations on
    held-out poses: Δ is the difference of the means; a clear gap excludes 0, equal rows do not;
    the paper's sign is read (its IK ablations hurt, +2.8 and +3.9 mm)."""
    import json
    from uvhmr.report.tables import differences
    rng = np.random.default_rng(1)
    base = rng.uniform(50, 150, 200)
    metrics = {"dmp14": _fake("dmp14", 0), "ik14": _fake("ik14", 0), "uvi14": _fake("uvi14", 0)}
    for t, shift in (("dmp14", 60.0), ("ik14", 30.0)):
        metrics[t]["per_sample"]["mpjpe"] = [(base + shift + rng.normal(0, 1, 200)).tolist()]
    e = rng.normal(0, 20, 100)          # UVI: IK's rows plus errors of mean exactly 0 and a wide spread
    metrics["uvi14"]["per_sample"]["mpjpe"] = [(np.array(metrics["ik14"]["per_sample"]["mpjpe"][0]) + np.r_[e, -e]).tolist()]
    held = lambda shift: {"j_refine_mpjpe": [(base + shift).tolist(), (base + shift + 0.5).tolist()],
                          "noise_j_refine_mpjpe": [(base + shift).tolist(), (base + shift).tolist()]}
    metrics["ik14"]["heldout_mocap"] = {"per_sample": held(0.0)}
    metrics["ik14_nonoise"] = _fake("ik14_nonoise", 0)
    metrics["ik14_nonoise"]["heldout_mocap"] = {"per_sample": held(5.0)}       # removing the noise hurts
    metrics["ik14_nonoise"]["per_sample"]["mpjpe"] = metrics["ik14"]["per_sample"]["mpjpe"]
    d = differences(metrics, *REG)
    ik_dmp, uvi_ik = d["ik14_minus_dmp14"], d["uvi14_minus_ik14"]
    assert abs(ik_dmp["delta"] - (np.mean(metrics["ik14"]["per_sample"]["mpjpe"]) - np.mean(metrics["dmp14"]["per_sample"]["mpjpe"]))) < 0.01
    assert ik_dmp["delta"] < -29 and ik_dmp["excludes_zero"]
    assert abs(uvi_ik["delta"]) < 0.01 and uvi_ik["ci_low"] < -1 < 1 < uvi_ik["ci_high"] and not uvi_ik["excludes_zero"]
    noise = d["ik14_nonoise_minus_ik14_noise"]
    assert abs(noise["delta"] - 5.0) < 0.01 and noise["excludes_zero"]
    assert abs(d["ik14_nonoise_minus_ik14_zeroed"]["delta"] - 5.0) < 0.01
    out = build_tables(metrics, "default", *REG)
    line = next(l for l in out["ablation.md"].splitlines() if "ik14_nonoise minus ik14" in l and "noise" in l)
    assert "agrees" in line and "disagrees" not in line, line
    assert json.loads(out["metrics.json"])["differences"]["uvi14_minus_ik14"]["ci_low"] < 0
