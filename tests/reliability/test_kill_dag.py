"""kill -9 of the whole DAG (Snakemake and every job it started), then the documented recovery
(docs/reliability.md): the rerun completes and every metrics JSON equals the uninterrupted run's.

Also the determinism claim of issue #12 at a fraction of a second smoke run's cost: the rerun trains
UVI-14 from scratch (its checkpoints are not copied) in another folder, and its weights, metrics and
report equal the shared smoke run's byte for byte. What makes that hold: every rule seeds Python,
NumPy and torch from `run.seed`, sets torch's threads to its `resources.threads` (not the machine's
core count), turns on torch's deterministic algorithms when `run.deterministic` (the
default), seeds its DataLoader shuffles per epoch, and runs on the CPU.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reliability_tools import LAY, temporaries

pytestmark = pytest.mark.slow

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
SMOKE = ["--config", "profile=smoke"]


def _env():
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is `folder` (Snakemake and its jobs run there)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if Path(os.readlink(p / "cwd")) == folder:
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def _wait_for(check, what, timeout=300):
    t0 = time.time()
    while not check():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_dag_killed_mid_training_reruns_to_identical_metrics(smoke_run, tmp_path):
    smoke, r, _ = smoke_run
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    d = tmp_path / "dag copy"
    # Everything but the checkpoints (so UVI-14 really trains again), timestamps kept.
    shutil.copytree(smoke, d, symlinks=True, ignore=lambda src, names: ["checkpoints"] if Path(src).name == "smoke" else [])
    # Delete UVI-14 and everything downstream of it (Snakemake does not rebuild a missing
    # intermediate file whose consumers' outputs are present): train_uvi, two evaluate jobs,
    # report and figures run again.
    uvi = d / LAY.uvi_model("uvi14")
    shutil.rmtree(uvi)
    shutil.rmtree(d / LAY.reports)
    for f in (d / LAY.metrics("uvi14"), d / LAY.metrics("oracle_uvi"), d / LAY.log("train_uvi", "uvi14")):
        f.unlink()

    out = open(tmp_path / "killed.out", "w")
    dag = subprocess.Popen([SNAKEMAKE, "--cores", "2", *SMOKE], cwd=d, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                           start_new_session=True)
    log = d / LAY.log("train_uvi", "uvi14")
    # Kill when train_uvi has started training (its log names its checkpoint folder).
    _wait_for(lambda: log.is_file() and "checkpoints in" in log.read_text() or dag.poll() is not None, "train_uvi to start")
    assert dag.poll() is None, (tmp_path / "killed.out").read_text()[-3000:]
    os.killpg(dag.pid, signal.SIGKILL)                       # Snakemake and the jobs of its process group
    dag.wait()
    for pid in _processes_in(d):                             # a job in a session of its own: kill it too
        os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not _processes_in(d), "every process of the DAG to die", 60)
    out.close()
    assert not uvi.exists()                                  # no half-written declared output
    assert "epoch 1/1" not in log.read_text()                # killed mid-training, not after it

    # The recovery docs/reliability.md documents: remove Snakemake's stale lock, then run the DAG again.
    unlock = subprocess.run([SNAKEMAKE, "--unlock", *SMOKE], cwd=d, env=_env(), capture_output=True, text=True, timeout=300)
    assert unlock.returncode == 0, (unlock.stdout + unlock.stderr)[-3000:]
    again = subprocess.run([SNAKEMAKE, "--cores", "2", *SMOKE, "--rerun-incomplete"], cwd=d, env=_env(), capture_output=True, text=True,
                           timeout=900)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert temporaries(uvi.parent) == []

    # Every metrics JSON and the report's metrics equal the uninterrupted smoke run's, byte for byte.
    names = sorted(p.name for p in (smoke / LAY.metrics("x")).parent.glob("*.json"))
    assert names and names == sorted(p.name for p in (d / LAY.metrics("x")).parent.glob("*.json"))
    for name in names:
        rel = Path(LAY.metrics("x")).parent / name
        assert (d / rel).read_bytes() == (smoke / rel).read_bytes(), rel
    assert (d / LAY.report("metrics.json")).read_bytes() == (smoke / LAY.report("metrics.json")).read_bytes()
    # UVI-14, trained again from scratch here, has the smoke run's weights bit for bit.
    a = torch.load(smoke / LAY.uvi_model("uvi14") / "seed0.pt", weights_only=True)["state_dict"]
    b = torch.load(uvi / "seed0.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
