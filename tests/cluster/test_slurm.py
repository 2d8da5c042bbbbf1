"""The DAG on Slurm (docs/workflow.md, "Running on a cluster"; issue #10): the profiles, and the smoke DAG on a real Slurm.

The cluster is a throw-away single-node Slurm on localhost (slurm_local.py: Debian's slurm-wlm,
installed if missing; daemons are children of this process, stopped by PID, also on failure). The
smoke run through workflow/profiles/slurm is killed mid-run (SIGKILL), cleaned up exactly as the
docs/workflow.md's "Running on a cluster" says, rerun to the end, and its metrics must equal the local smoke
run's (conftest.smoke_run) byte for byte: every rule fixes its seeds and torch thread count, so a
job computes the same numbers wherever it runs.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import OLD_CODE_TIME
from conftest import _copy_workflow as copy_declarations
from slurm_local import LocalSlurm, SlurmUnavailable, client_env

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROFILES = REPO / "workflow/profiles"
STAGES = ("prepare", "stage1", "stage2", "evaluate")
# docs/workflow.md "Running on a cluster": after a killed run, cancel the jobs it submitted from here.
CLEANUP = """squeue --me -h -o '%i|%Z' | awk -F'|' -v d="$(pwd -P)" '$2 == d {print $1}' | xargs -r scancel"""


def _env() -> dict:
    # Slurm jobs inherit this environment (sbatch --export=ALL): the venv's `uvhmr` first on PATH.
    env = client_env()
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    return env


def _copy_workflow(dst: Path) -> Path:
    """The workflow (its code included: every rule depends on it) in a fresh git repo that shares
    the repository's body-model export, its code dated before that export as in the smoke run."""
    copy_declarations(dst)
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    (dst / "resources").symlink_to(REPO / "resources")
    for p in (dst / "src").rglob("*.py"):
        os.utime(p, (OLD_CODE_TIME, OLD_CODE_TIME))
    return dst


def _snakemake(d: Path, *args, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=d, capture_output=True, text=True, env=_env(),
                          timeout=timeout, **kw)


# ---------------------------------------------------------------- the profiles (no cluster needed)

def test_no_profile_sends_plain_runs_to_a_cluster():
    # Snakemake applies profiles/default or workflow/profiles/default to every run.
    for d in (REPO / "profiles/default", PROFILES / "default"):
        assert not d.exists(), d
    executors = {p.parent.name: yaml.safe_load(p.read_text())["executor"] for p in PROFILES.glob("*/config.yaml")}
    assert executors == {"slurm": "slurm", "cluster-generic": "cluster-generic"}
    assert CLEANUP in (REPO / "docs/workflow.md").read_text()
    slurm = yaml.safe_load((PROFILES / "slurm/config.yaml").read_text())
    assert slurm["slurm-status-command"] == "squeue"        # sacct hangs without slurmdbd
    for script in ("sbatch.sh", "status.sh"):
        assert os.access(PROFILES / "cluster-generic" / script, os.X_OK), script


def _dry_run_cluster_jobs(d: Path, profile: str) -> tuple[list[str], list[str]]:
    """(group jobs, ungrouped jobs) a run through the slurm profile would submit."""
    r = _snakemake(d, "-n", "--profile", "workflow/profiles/slurm", "--config", f"profile={profile}")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    out = r.stdout + r.stderr
    groups = re.findall(r"\] Group job (\w+) \(", out)
    # Jobs inside a group are indented; rule all runs on the submitting machine; body_model (shared
    # by every profile, built once) is its own job where it is not built yet.
    rules = [m for m in re.findall(r"^rule (\w+):", out, re.M) if m not in ("all", "body_model")]
    return groups, rules


def test_smoke_dag_is_four_cluster_jobs_and_paper_one_per_rule(workflow_copy):
    groups, rules = _dry_run_cluster_jobs(workflow_copy, "smoke")
    assert sorted(groups) == sorted(STAGES) and rules == [], (groups, rules)
    groups, rules = _dry_run_cluster_jobs(workflow_copy, "paper")
    assert groups == [] and len(rules) >= 38 and "train_uvi" in rules


class _Resources(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _Job:
    """What snakemake-executor-plugin-slurm reads from a job to build its sbatch call."""
    def __init__(self, name, threads, resources):
        self.name, self.threads, self.resources = name, threads, _Resources(resources)

    def is_group(self):
        return False


@pytest.mark.parametrize("profile", ["smoke", "paper"])
def test_rule_resources_become_sbatch_flags(profile):
    """params.yaml's resources -> the plugin's own sbatch call: GPUs only where gpus > 0."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra
    from uvhmr.config import load_params
    from uvhmr.workflow import RULES, Layout, Workflow

    params = load_params(REPO / "params.yaml", profile=profile)
    w = Workflow(params, Layout(profile, params.body_model.backend))
    gpu_rules = set()
    for rule in RULES:
        job = _Job(rule, w.threads(rule), w.resources(rule))
        validate_slurm_extra(job)
        call = get_submit_command(job, dict(run_uuid="uvhmr_x", slurm_logfile="log", comment_str=f"rule_{rule}",
                                            account="", partition="", workdir="/w")) + set_gres_string(job)
        r = job.resources
        assert f" -t {r.runtime} " in call and f" --mem {r.mem_mb} " in call, call
        assert f"--cpus-per-task={w.threads(rule)}" in call, call
        if "--gres=" in call:
            assert f"--gres=gpu:{r.gpus}" in call and r.gpus > 0
            gpu_rules.add(rule)
        assert (w.group(rule) is None) == (profile != "smoke" or rule == "body_model"), rule
    if profile == "paper":
        assert gpu_rules == {"train_dmp", "train_hmr", "train_ik", "train_uvi"}
    else:
        assert gpu_rules == set()


# ---------------------------------------------------------------- a real Slurm

@pytest.fixture(scope="module")
def slurm():
    try:
        cluster = LocalSlurm(log=print).start()
    except SlurmUnavailable as e:
        # A skip here would let CI pass without the cluster run: fail, and say how to opt out.
        pytest.fail(f"no local Slurm: {e}. Set UVHMR_SLURM_TEST=0 to skip the live cluster test.")
    try:
        yield cluster
    finally:
        cluster.stop()


def _wait(what, cond, timeout, proc=None, poll=0.5):
    t = time.monotonic()
    while not cond():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"snakemake exited ({proc.returncode}) before {what}")
        if time.monotonic() - t > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def _metrics(d: Path, names: list[str]) -> dict[str, bytes]:
    return {n: (d / n).read_bytes() for n in names}


def _first_difference(a: bytes, b: bytes) -> str:
    def walk(x, y, path=""):
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                if k not in x or k not in y:
                    return f"{path}/{k}: only in one run"
                if (d := walk(x[k], y[k], f"{path}/{k}")):
                    return d
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y)):
                if (d := walk(u, v, f"{path}[{i}]")):
                    return d
        elif x != y:
            return f"{path}: {x!r} (local) != {y!r} (slurm)"
        return ""
    return walk(json.loads(a), json.loads(b)) or "same JSON, different bytes"


# The whole smoke DAG costs about 3 s of Snakemake start-up per rule inside the cluster jobs on top
# of the local run's time: more than the 5 minutes this test may take on 2 cores. By default it
# runs the chain DMP-14 -> IK-14 -> UVI-14 of the smoke DAG (every stage, 14 of its 39 jobs, still
# 4 cluster jobs); UVHMR_SLURM_FULL_DAG=1 also runs the whole smoke DAG and compares every metrics file.
FULL_DAG = os.environ.get("UVHMR_SLURM_FULL_DAG") == "1"
CHAIN = ("dmp14", "ik14", "uvi14", "mean_pose")
# The live cluster run is part of the suite (and of CI). It installs and starts system daemons
# and owns /etc/slurm/slurm.conf: never run two suites at once on one machine (a second test
# cluster replacing slurm.conf stalled the first). UVHMR_SLURM_TEST=0 skips it.
LIVE = os.environ.get("UVHMR_SLURM_TEST", "1") != "0"


@pytest.mark.slow
@pytest.mark.skipif(not LIVE, reason="UVHMR_SLURM_TEST=0: the live Slurm run is skipped")
@pytest.mark.parametrize("dag", ["chain", pytest.param("full", marks=pytest.mark.skipif(
    not FULL_DAG, reason="the whole smoke DAG on Slurm takes over 5 minutes: UVHMR_SLURM_FULL_DAG=1"))])
def test_smoke_dag_on_slurm_survives_a_kill_and_equals_the_local_run(smoke_run, slurm, tmp_path, dag):
    local, r, _ = smoke_run
    assert r.returncode == 0, "the local smoke run failed: " + (r.stdout + r.stderr)[-2000:]
    d = _copy_workflow(tmp_path / "repo")
    if dag == "full":
        targets = []
        compared = [p.relative_to(local).as_posix() for p in sorted((local / "results/smoke/metrics").glob("*.json"))]
        compared.append("reports/smoke/metrics.json")
    else:
        targets = compared = [f"results/smoke/metrics/{t}.json" for t in CHAIN]
    run = [str(BIN / "snakemake"), "--profile", "workflow/profiles/slurm", "--config", "profile=smoke",
           "--cores", str(slurm.cpus), "--slurm-init-seconds-before-status-checks", "2", *targets]
    times = {}
    t0 = time.monotonic()

    # 1. Start the DAG and SIGKILL Snakemake once the first cluster job is done and the second runs.
    killed_log = d / "killed-run.log"
    with open(killed_log, "w") as out:
        p = subprocess.Popen(run, cwd=d, stdout=out, stderr=subprocess.STDOUT, env=_env())
    try:
        def stage1_running():
            return any("stage1" in j["comment"] and j["state"] == "RUNNING" for j in slurm.jobs())
        _wait("the stage1 cluster job to run", stage1_running, timeout=240, proc=p)
        time.sleep(3)
        p.kill()
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    times["killed after"] = time.monotonic() - t0
    prepared = {q: q.stat().st_mtime for q in (d / "results/smoke/data").iterdir()}
    assert len(prepared) == 3

    # 2. The clean-up docs/workflow.md prescribes: the killed run's jobs go on without it (cancel the
    #    jobs whose working directory is this one), and its lock stays (--unlock).
    orphans = slurm.active_jobs()
    assert orphans and all(j["name"].startswith("uvhmr_") for j in orphans), orphans
    run_id = re.search(r"SLURM run ID: (\S+)", killed_log.read_text()).group(1)
    assert {j["name"] for j in orphans} == {run_id}
    subprocess.run(["bash", "-c", CLEANUP], cwd=d, check=True, env=_env())
    _wait("the cancelled jobs to end", lambda: not slurm.active_jobs(), timeout=60)
    u = _snakemake(d, "--unlock")
    assert u.returncode == 0, (u.stdout + u.stderr)[-2000:]

    # 3. Rerun with the profile: it completes, and does not redo what the killed run finished.
    t1 = time.monotonic()
    r2 = subprocess.run(run, cwd=d, capture_output=True, text=True, env=_env(), timeout=600)
    times["rerun"] = time.monotonic() - t1
    times["total"] = time.monotonic() - t0
    log = r2.stdout + r2.stderr
    assert r2.returncode == 0, log[-4000:]
    assert {q: q.stat().st_mtime for q in (d / "results/smoke/data").iterdir()} == prepared
    submitted = re.findall(r"\] Group job (\w+) \(", log)
    assert "prepare" not in submitted and "evaluate" in submitted, submitted
    print(f"slurm smoke run ({dag}): " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))

    # 4. The same numbers as the local smoke run, byte for byte.
    ours, theirs = _metrics(local, compared), _metrics(d, compared)
    assert len(ours) == (16 if dag == "full" else len(CHAIN))
    diff = {k: _first_difference(ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    assert not diff, diff
