"""README.md starts with exactly two set-up commands, and CI runs the second one."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def setup_commands():
    text = (REPO / "README.md").read_text()
    m = re.search(r"```bash\n(.*?)```", text, re.S)
    return [l for l in m.group(1).splitlines() if l.strip()]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    cmds = setup_commands()
    assert len(cmds) == 2
    main_job, tests = cmds
    assert "snakemake --cores" in main_job and "profile=" not in main_job   # the default profile
    assert "pytest" in tests
    ci = (REPO / ".ci/run").read_text()
    assert tests in ci.splitlines()


def test_every_dependency_is_pinned():
    lock = [l for l in (REPO / "requirements.lock").read_text().splitlines() if l and not l.startswith("#")]
    assert lock and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^\s]+", l) for l in lock), lock
    names = {l.split("==")[0].lower() for l in lock}
    for dep in ("torch", "torchvision", "anny", "smplx", "snakemake", "dvc", "numpy", "pandas",
                "opencv-contrib-python-headless", "trimesh", "pyyaml", "pytest"):
        assert dep in names, dep
    pins = dict(l.split("==") for l in lock)
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1" and pins["anny"] == "0.6.2"


def results_table() -> list[dict]:
    """README's "Current results" table -> its rows as {column header: cell}."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Current results", 1)[1].split("\n## ", 1)[0]
    lines = [l.strip() for l in section.splitlines() if l.strip().startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in l.strip("|").split("|")))) for l in lines[2:]]


def test_every_figure_in_the_readme_results_table_is_the_committed_default_metrics():
    """Issue #23: the README's table quotes reports/default/metrics.json, each row naming its target."""
    import json
    metrics = json.loads((REPO / "reports/default/metrics.json").read_text())
    rows = results_table()
    assert len(rows) >= 6, rows
    for row in rows:
        target = row["target"].strip("`")
        assert target in metrics, f"README row {row['row']!r}: {target} is not in reports/default/metrics.json"
        for col, key in (("MPJPE", "mpjpe"), ("PA-MPJPE", "pa_mpjpe")):
            if row.get(col, "-") != "-":
                assert float(row[col]) == round(metrics[target][key], 1), (row, metrics[target][key])


def test_the_readme_gate_ratio_is_dmp14_over_the_mean_pose_in_the_committed_metrics():
    """Issue #19: the README quotes DMP-14's J_initial over the mean pose's, as metrics.json has them."""
    import json
    metrics = json.loads((REPO / "reports/default/metrics.json").read_text())
    m = re.search(r"DMP-14 / mean pose = ([0-9.]+)", (REPO / "README.md").read_text())
    assert m, "README: no 'DMP-14 / mean pose = X' in the results"
    assert float(m.group(1)) == round(metrics["dmp14"]["mpjpe"] / metrics["mean_pose"]["mpjpe"], 2)
