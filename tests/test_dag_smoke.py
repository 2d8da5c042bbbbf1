"""What one real smoke run of the DAG shows (the run is shared: conftest.smoke_run)."""
from pathlib import Path


def test_smoke_run_builds_what_exists_and_stops_at_the_first_unimplemented_rule(smoke_run):
    """Every rule is implemented now: the smoke DAG must complete and write its report."""
    d, r, _ = smoke_run
    out = r.stdout + r.stderr
    # Until issue #3 lands the DAG must stop, loudly, at uv_assets/mocap.
    if "not implemented yet" in out:
        assert r.returncode != 0
        assert "is not implemented yet (issue #" in out
    else:
        assert r.returncode == 0, out[-3000:]
    assert (d / "resources/body/anny/assets.npz").is_file()
    assert (d / "results/smoke/params/train_dmp/dmp14.json").is_file()


def test_smoke_run_writes_only_inside_its_own_profile(smoke_run):
    d, _, before = smoke_run
    new = {p.relative_to(d).as_posix() for p in d.rglob("*") if ".git" not in p.parts} - before
    allowed = ("results/smoke", "reports/smoke", ".snakemake", "resources")
    stray = sorted(p for p in new if p not in ("results", "reports") and not any(p == a or p.startswith(a + "/") for a in allowed))
    assert stray == []
    assert not (d / "results/default").exists() and not (d / "reports/default").exists()


def test_rules_log_to_their_profile_folder(smoke_run):
    d, _, _ = smoke_run
    logs = sorted(Path(d, "results/smoke/logs").glob("*.log"))
    assert logs, "no rule wrote a log"
    assert any("not implemented yet" in p.read_text() or "done in" in p.read_text() for p in logs)


def test_smoke_report_says_which_profile_made_it(smoke_run):
    d, r, _ = smoke_run
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    text = (d / "reports/smoke/ablation.md").read_text()
    assert "Profile **smoke**" in text
    for row in ("DMP-14", "DMP-24", "IK-14", "UVI-14 w/o l_dismag", "UVI-14"):
        assert f"| {row} |" in text, row
    import json
    m = json.loads((d / "reports/smoke/metrics.json").read_text())
    assert m["profile"] == "smoke" and "mpjpe" in m["uvi14"] and "mpjpe" in m["mean_pose"]
