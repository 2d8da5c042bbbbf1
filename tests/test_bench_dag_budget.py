"""bench/dag_budget.py reads Snakemake benchmark files and the budget table in docs/time_budget.md."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _run(root):
    return subprocess.run([sys.executable, str(REPO / "bench/dag_budget.py"), "--profile", "smoke", "--root", str(root)],
                          capture_output=True, text=True)


def test_dag_budget_sums_jobs_and_flags_an_exceeded_limit(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/time_budget.md").write_text((REPO / "docs/time_budget.md").read_text())
    b = tmp_path / "results/smoke/benchmarks"
    b.mkdir(parents=True)
    (b / "train_dmp-dmp14.tsv").write_text(HEADER + "12.5\t0:00:12\t900.0\t0\t0\t0\t0\t0\t0\t0\n")
    (b / "train_dmp-dmp24.tsv").write_text(HEADER + "20.0\t0:00:20\t950.0\t0\t0\t0\t0\t0\t0\t0\n")
    r = _run(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(l for l in r.stdout.splitlines() if l.startswith("train_dmp"))
    assert line.split()[1:6] == ["2", "32.5", "20.0", "950", "30"] and line.endswith("NO")
    assert "whole DAG" in r.stdout and "32.5" in r.stdout
    (b / "train_uvi-uvi14.tsv").write_text(HEADER + "400\t0:06:40\t100\t0\t0\t0\t0\t0\t0\t0\n")
    r = _run(tmp_path)
    assert r.returncode == 1 and "EXCEEDED" in r.stdout
