"""What one real smoke run of the DAG shows (the run is shared: conftest.smoke_run)."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, venv_env


def test_smoke_run_completes(smoke_run):
    d, r, _ = smoke_run
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert (d / "resources/body/anny/assets.npz").is_file()
    assert (d / "results/smoke/params/train_dmp/dmp14.json").is_file()


def _dry_run_jobs(d: Path) -> dict:
    """`snakemake -n` in the run's folder -> {rule: job count} of what it would run."""
    env = venv_env()
    r = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--cores", "2", "--config", "profile=smoke"],
                       cwd=d, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    jobs = {}
    for line in (r.stdout + r.stderr).splitlines():
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if m and m.group(1) not in ("total", "count"):
            jobs[m.group(1)] = int(m.group(2))
    return jobs


def test_a_second_run_does_nothing_and_a_uvi_change_reruns_only_uvi_evaluate_report(smoke_run, tmp_path):
    d, r, _ = smoke_run
    assert r.returncode == 0
    # In a copy (timestamps kept): a dry run rewrites the resolved parameters it reads.
    d = Path(shutil.copytree(d, tmp_path / "repo", symlinks=True))
    assert _dry_run_jobs(d) == {}
    params = d / "params.yaml"
    text = params.read_text()
    params.write_text(text.replace("    train_uvi: {epochs: 1, batch_size: 16, seeds: [0],",
                                   "    train_uvi: {epochs: 1, batch_size: 16, seeds: [0], lr: 0.0005,"))
    assert params.read_text() != text
    jobs = _dry_run_jobs(d)
    assert set(jobs) == {"train_uvi", "evaluate", "figures", "report", "all"}, jobs
    assert jobs["train_uvi"] == 4 and jobs["evaluate"] == 5          # four UVI variants and the UVI oracle


def _as_dvc_repo(d: Path, tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the smoke run set up for DVC: params.yaml's profile is smoke, resources/ a real
    copy (DVC does not follow the run's link into the repository), body_model frozen (not rebuilt).
    -> (folder, environment with the venv on PATH)."""
    d = Path(shutil.copytree(d, tmp_path / "repo", symlinks=True))
    (d / "resources").unlink()
    shutil.copytree(REPO / "resources", d / "resources", ignore=shutil.ignore_patterns(".anny-cache"))
    params = d / "params.yaml"
    params.write_text(re.sub(r"(?m)^profile: \w+", "profile: smoke", params.read_text()))
    env = venv_env()
    # `dvc freeze` cannot rewrite templated stages: mark it in the copy's dvc.yaml instead.
    dvc_yaml = d / "dvc.yaml"
    text = dvc_yaml.read_text()
    assert "\n  body_model:\n" in text
    dvc_yaml.write_text(text.replace("\n  body_model:\n", "\n  body_model:\n    frozen: true\n", 1))
    return d, env


def _dvc_commit(d: Path, env: dict) -> subprocess.CompletedProcess:
    """`uvhmr dvc-commit` in d (it must succeed) -> the finished process."""
    c = subprocess.run(["uvhmr", "dvc-commit"], cwd=d, capture_output=True, text=True, env=env, timeout=600)
    assert c.returncode == 0, (c.stdout + c.stderr)[-3000:]
    return c


def _data_out_hashes(lock: Path) -> dict:
    """{output path: md5} in a dvc.lock for the deterministic directory outputs (no wall times
    inside, unlike the training logs that travel with the models)."""
    import yaml
    stages = yaml.safe_load(lock.read_text())["stages"].values()
    keep = ("results/smoke/data/", "results/smoke/uv", "results/smoke/mocap", "results/smoke/cache/")
    return {o["path"]: o["md5"] for st in stages for o in st.get("outs", []) if o["path"].startswith(keep)}


def test_dvc_commit_after_snakemake_keeps_the_next_snakemake_a_no_op(smoke_run, tmp_path):
    d, r, _ = smoke_run
    assert r.returncode == 0
    d, env = _as_dvc_repo(d, tmp_path)
    model = d / "results/smoke/models/dmp/dmp14.pt"
    before = model.stat().st_mtime_ns
    c = _dvc_commit(d, env)
    assert "dmp14.pt" in (d / "dvc.lock").read_text()
    # dvc relinked the single-file outputs (the models) and gave them new times; they are back
    relinked = re.search(r"modification times of (\d+) relinked", c.stdout + c.stderr)
    assert relinked and int(relinked.group(1)) >= 4, c.stdout + c.stderr
    assert model.stat().st_mtime_ns == before
    assert _dry_run_jobs(d) == {}
    s = subprocess.run(["dvc", "status"], cwd=d, capture_output=True, text=True, env=env)
    assert s.returncode == 0 and "up to date" in s.stdout, s.stdout + s.stderr


def test_dvc_repro_force_of_the_dmp_ik_uvi_chain_gives_the_snakemake_metrics_and_a_second_repro_does_nothing(smoke_run, tmp_path):
    # DVC reruns, forced, the paper's chain (DMP -> IK -> UVI, their caches and evaluations) on the
    # data, UV assets and mocap the Snakemake run made: each kind of trained or evaluated stage but
    # HMR, the baselines, the report and the figures, which the Snakemake run and the DVC dry-run
    # parity test (test_workflow) cover. Rebuilding the data stages too cost another minute of the
    # suite (issue #22's 20 minutes); that the data are the same bytes whichever process builds them
    # is tests/data/test_dataset_synthetic.py's and test_mocap.py's.
    import json
    import yaml
    d, r, _ = smoke_run
    assert r.returncode == 0
    d, env = _as_dvc_repo(d, tmp_path)
    pipe = yaml.safe_load((d / "params.yaml").read_text())["pipeline"]
    targets = [f"evaluate_dmp@{pipe['dmp']}", f"evaluate_ik@{pipe['ik']}", f"evaluate_uvi@{pipe['uvi']}"]
    metrics = d / "results/smoke/metrics"
    by_snakemake = {p.name: json.loads(p.read_text()) for p in sorted(metrics.glob("*.json"))}
    assert len(by_snakemake) >= 15
    _dvc_commit(d, env)
    snakemake_hashes = _data_out_hashes(d / "dvc.lock")
    assert len(snakemake_hashes) >= 10
    for p in metrics.glob("*.json"):                       # what DVC must write again
        p.unlink()
    chain = [f"train_dmp@{pipe['dmp']}", f"dmp_cache@{pipe['dmp']}", f"train_ik@{pipe['ik']}",
             f"ik_cache@{pipe['ik']}", f"train_uvi@{pipe['uvi']}", *targets]      # in the DAG's order
    f = subprocess.run(["dvc", "repro", "--force", "--single-item", *chain], cwd=d, capture_output=True, text=True,
                       env=env, timeout=1200)
    assert f.returncode == 0, (f.stdout + f.stderr)[-3000:]
    ran = re.findall(r"Running stage '([^']+)'", f.stdout)
    assert ran == chain, ran
    by_dvc = {p.name: json.loads(p.read_text()) for p in sorted(metrics.glob("*.json"))}
    assert set(by_dvc) == {f"{pipe[k]}.json" for k in ("dmp", "ik", "uvi")}, sorted(by_dvc)
    assert by_dvc == {k: by_snakemake[k] for k in by_dvc}
    # The caches DVC rebuilt are the same bytes as Snakemake's, so every stage that did not run (the
    # other variants, the report) is still up to date.
    rebuilt = [p for p in snakemake_hashes if p.startswith("results/smoke/cache/")]
    assert len(rebuilt) >= 2, sorted(snakemake_hashes)                  # DMP's and IK's caches
    assert _data_out_hashes(d / "dvc.lock") == snakemake_hashes
    again = subprocess.run(["dvc", "repro", *targets], cwd=d, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and "Running stage" not in again.stdout, again.stdout[-3000:]


def _git(d: Path, *args: str) -> None:
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    r = subprocess.run([*git, *args], cwd=d, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dvc_push_then_pull_into_a_fresh_clone_restores_the_models_and_its_metrics_show(smoke_run, tmp_path):
    """Issue #23: `dvc push` to a local-folder remote, `dvc pull` in a fresh clone gives back the
    smoke run's models byte for byte; before any pull the clone's `dvc metrics show` and
    `dvc metrics diff HEAD~1` list the committed metrics (the report's metrics.json), none failing."""
    import json
    d, r, _ = smoke_run
    assert r.returncode == 0
    d, env = _as_dvc_repo(d, tmp_path)
    _dvc_commit(d, env)
    remote = tmp_path / "remote store"
    run = lambda cwd, *a: subprocess.run(list(a), cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
    for cmd in (["dvc", "remote", "add", "-d", "local", str(remote)], ["dvc", "push"]):
        p = run(d, *cmd)
        assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    # What a researcher commits: the repository's .gitignore, with the smoke reports kept (the
    # repository ignores them only so that the smoke profile's reports are not committed there).
    (d / ".gitignore").write_text((REPO / ".gitignore").read_text().replace("/reports/smoke/\n", ""))
    _git(d, "add", "-A")
    _git(d, "commit", "-q", "-m", "smoke run")
    _git(d, "commit", "-q", "--allow-empty", "-m", "next")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(d), str(clone))
    assert not (clone / "results").exists()
    shown = run(clone, "dvc", "metrics", "show", "--json")
    assert shown.returncode == 0 and "failed" not in (shown.stdout + shown.stderr).lower(), shown.stdout + shown.stderr
    committed = json.loads((d / "reports/smoke/metrics.json").read_text())
    assert f'{committed["dmp14"]["mpjpe"]}' in shown.stdout and "reports/smoke/metrics.json" in shown.stdout
    diff = run(clone, "dvc", "metrics", "diff", "HEAD~1", "--all")
    assert diff.returncode == 0 and "dmp14.mpjpe" in diff.stdout and "failed" not in (diff.stdout + diff.stderr).lower(), \
        diff.stdout + diff.stderr
    pulled = run(clone, "dvc", "pull")
    assert pulled.returncode == 0, (pulled.stdout + pulled.stderr)[-3000:]
    # The trained networks (DVC's outputs; not the training CSVs beside the DMP files, which are
    # not outputs, nor the .gitignore files DVC writes)
    models = sorted(p.relative_to(d) for p in (d / "results/smoke/models").rglob("*.pt"))
    assert len(models) >= 10
    for rel in models:
        assert (clone / rel).read_bytes() == (d / rel).read_bytes(), rel


def _dry_run_reasons(d: Path) -> list[tuple[str, str]]:
    """`snakemake -n` in d -> [(rule, reason)] of every job it would run."""
    r = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "--cores", "2", "--config", "profile=smoke"],
                       cwd=d, capture_output=True, text=True, env=venv_env(), timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    jobs, rule = [], None
    for line in r.stdout.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if m:
            rule = m.group(1)
        elif rule and line.strip().startswith("reason: "):
            jobs.append((rule, line.strip()[len("reason: "):]))
            rule = None
    return jobs


def test_a_change_to_a_models_file_reruns_the_stages_whose_code_holds_it(smoke_run, tmp_path):
    """Issue #21: after a change to a file under src/uvhmr/models/, `dvc status` lists exactly the
    stages whose import closure holds it, and `snakemake -n` those and their downstream jobs."""
    import json
    from uvhmr.code_deps import code_deps
    d, r, _ = smoke_run
    assert r.returncode == 0
    d, env = _as_dvc_repo(d, tmp_path)
    _dvc_commit(d, env)
    changed = "src/uvhmr/models/uvi.py"
    f = d / changed
    f.write_text(f.read_text() + "\n# a change\n")
    import yaml
    from uvhmr.code_deps import stage_subcommand
    yaml_stages = yaml.safe_load((d / "dvc.yaml").read_text())["stages"]
    holding = {name for name, st in yaml_stages.items() if changed in code_deps(stage_subcommand(st.get("do", st)["cmd"]))}
    assert holding and "body_model" not in holding and "train_dmp" not in holding, holding
    s = subprocess.run(["dvc", "status", "--json"], cwd=d, capture_output=True, text=True, env=env, timeout=300)
    assert s.returncode == 0, s.stderr
    status = json.loads(s.stdout)
    assert {k.split("@")[0] for k in status} == holding, status
    for k, v in status.items():
        assert v == [{"changed deps": {changed: "modified"}}], (k, v)
    # Snakemake: the jobs of the rules whose code holds the file rerun for that reason (or, when
    # Snakemake names only one, because an upstream job reruns); every other job because of them.
    rules = {name.split("_")[0] if name.startswith("evaluate") else name for name in holding}
    jobs = _dry_run_reasons(d)
    direct = {rule for rule, reason in jobs if f"Updated input files: {changed}" in reason}
    for rule, reason in jobs:
        assert rule in direct or "Input files updated by another job" in reason, (rule, reason)
    assert {"train_uvi", "evaluate"} <= direct <= rules, (direct, rules)
    assert {rule for rule, _ in jobs} == rules | {"report", "all"}, jobs
    upstream = {"body_model", "uv_assets", "mocap", "dataset", "train_dmp", "train_hmr", "dmp_cache", "train_ik", "ik_cache"}
    assert not {rule for rule, _ in jobs} & upstream


def test_a_variant_added_to_params_yaml_runs_end_to_end(smoke_run, tmp_path):
    """Issue #21: a variant added to the registry under an existing stage, no other file edited, is
    trained, cached, evaluated and reported; nothing else reruns."""
    import json
    d, r, _ = smoke_run
    assert r.returncode == 0
    d = Path(shutil.copytree(d, tmp_path / "repo", symlinks=True))
    params = d / "params.yaml"
    text = params.read_text()
    assert "\n  train_ik:\n    ik14:\n" in text
    params.write_text(text.replace("\n  train_ik:\n    ik14:\n", "\n  train_ik:\n"
                                   "    ik_sigma5:\n      label: IK-14 sigma 5 cm\n      overrides: {noise_sigma: 0.05}\n"
                                   "    ik14:\n", 1))
    assert _dry_run_jobs(d) == {"train_ik": 1, "ik_cache": 1, "evaluate": 1, "report": 1, "all": 1}
    env = venv_env()
    stages = subprocess.run(["dvc", "stage", "list"], cwd=d, capture_output=True, text=True, env=env, timeout=300)
    assert stages.returncode == 0, stages.stderr
    names = {l.split()[0] for l in stages.stdout.splitlines() if l.strip()}
    assert {"train_ik@ik_sigma5", "ik_cache@ik_sigma5", "evaluate_ik@ik_sigma5"} <= names
    run = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--cores", "2", "--config", "profile=smoke"],
                         cwd=d, capture_output=True, text=True, env=env, timeout=1200)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    rp = json.loads((d / "results/smoke/params/evaluate/ik_sigma5.json").read_text())
    assert rp["stage"] == "train_ik"
    m = json.loads((d / "results/smoke/metrics/ik_sigma5.json").read_text())
    assert m["metrics"]["mpjpe"] > 0
    ablation = (d / "reports/smoke/ablation.md").read_text()
    assert "| IK-14 sigma 5 cm |" in ablation and "- IK-14 sigma 5 cm: " in ablation
    assert "ik_sigma5" in (d / "reports/smoke/plots/train_ik.csv").read_text().splitlines()[0]
    assert _dry_run_jobs(d) == {}


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


def test_smoke_run_writes_the_figures_and_plot_data(smoke_run):
    d, r, _ = smoke_run
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    rep = d / "reports/smoke"
    for name in ("fig3_dense_maps.png", "fig4_uv_layout_auv.png", "fig5_uv_maps.png", "fig8_qualitative.png"):
        assert (rep / "figures" / name).stat().st_size > 10_000, name
    readme = (rep / "figures/README.md").read_text()
    assert "Profile **smoke**" in readme and "commit `" in readme and "synthetic test split" in readme
    assert "commit `" in (rep / "ablation.md").read_text()
    for name in ("train_dmp.csv", "train_ik.csv", "train_uvi.csv", "per_joint/uvi14.csv"):   # uvi14: params.yaml's pipeline.uvi
        assert len((rep / "plots" / name).read_text().splitlines()) >= 2, name


def test_snakemake_report_after_the_smoke_run(smoke_run, tmp_path):
    """`snakemake --report` (targets before --config) builds one self-contained HTML page."""
    d, r, _ = smoke_run
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    bin_ = Path(sys.executable).parent
    env = venv_env()
    out = tmp_path / "report.html"
    p = subprocess.run([str(bin_ / "snakemake"), "--report", str(out), "--config", "profile=smoke"], cwd=d,
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    html = out.read_text(encoding="utf8", errors="replace")
    assert "fig8_qualitative.png" in html and "ablation.csv" in html
    assert not re.search(r"<script[^>]*\ssrc=[\"']?https?:", html)
