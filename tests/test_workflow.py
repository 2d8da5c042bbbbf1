"""The DAG skeleton: Snakemake and DVC declare the same graph and run the same commands."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from uvhmr.cli import build_parser
from uvhmr.workflow import RULES

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TABLE4 = ("dmp14", "dmp24", "dmp14_nosynocc", "ik14", "ik14_nonoise", "ik14_nozero",
          "uvi14", "uvi14_noik", "uvi14_nodmp", "uvi14_nodismag")


def _env():
    # Both tools call `uvhmr` from PATH, as they do when the README's .venv is active.
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def _set_profile(repo: Path, profile: str):
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["profile"] = profile
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def snakemake_commands(repo: Path) -> list[str]:
    r = subprocess.run([str(BIN / "snakemake"), "-n", "-p", "--forceall", "--cores", "1"],
                       cwd=repo, capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    cmds = [l[len("Shell command: "):] for l in r.stdout.splitlines() if l.startswith("Shell command: ")]
    return sorted(c for c in cmds if c != "None")  # rule all has no command


def dvc_commands(repo: Path) -> list[str]:
    r = subprocess.run([str(BIN / "dvc"), "repro", "--dry", "--force"], cwd=repo, capture_output=True,
                       text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    cmds = [l[2:] for l in r.stdout.splitlines() if l.startswith("> ")]
    # resolve_params is DVC's way to see per-rule parameter files; the Snakefile resolves them
    # while it parses (uvhmr.workflow.snakemake_setup), so it has no rule for it.
    return sorted(c for c in cmds if not c.startswith("uvhmr resolve-params"))


@pytest.mark.parametrize("profile", ["smoke", "paper"])
def test_snakemake_and_dvc_run_identical_commands(workflow_copy, profile):
    _set_profile(workflow_copy, profile)
    sm, dv = snakemake_commands(workflow_copy), dvc_commands(workflow_copy)
    assert sm == dv, "\n".join(sorted(set(sm) ^ set(dv)))
    # Every rule of docs/design.md ("The DAG") and every Table 4 variant is in the graph.
    subcommands = {c.split()[1] for c in sm}
    assert subcommands == {r.replace("_", "-") for r in RULES}
    for v in TABLE4:
        assert any(f"--target {v} " in c for c in sm), v
        assert any(re.search(rf"/{v}(\.pt|\.json)?( |$)", c) and "--target" not in c for c in sm), v
    # Outputs are namespaced by profile: nothing writes into another profile's folders.
    others = {"smoke", "default", "paper"} - {profile}
    for c in sm:
        for o in others:
            assert f"results/{o}/" not in c and f"reports/{o}" not in c, c


def test_cli_help_lists_every_rule_subcommand():
    r = subprocess.run([str(BIN / "uvhmr"), "--help"], capture_output=True, text=True, check=True)
    for rule in RULES:
        assert rule.replace("_", "-") in r.stdout, rule
    assert "predict" in r.stdout and "resolve-params" in r.stdout
    # Every subcommand explains itself.
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert p.description, name


def test_predict_without_trained_models_says_run_the_main_job(tmp_path):
    from PIL import Image
    Image.new("RGB", (96, 128), (120, 90, 60)).save(tmp_path / "photo.jpg")     # a valid image: the models are what is missing
    r = subprocess.run([str(BIN / "uvhmr"), "predict", str(tmp_path / "photo.jpg"), "--out", str(tmp_path / "out"),
                        "--results", str(tmp_path / "results")], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2
    assert "run the main job first" in r.stderr and "dmp14.pt" in r.stderr
    assert not (tmp_path / "out").exists()


def test_every_rule_declares_threads_resources_log_benchmark():
    text = "\n".join(p.read_text() for p in sorted((REPO / "workflow/rules").glob("*.smk")))
    blocks = re.split(r"\n(?=rule )", text)
    names = [re.match(r"rule (\w+):", b).group(1) for b in blocks if b.startswith("rule ")]
    assert sorted(names) == sorted(RULES)
    for b in blocks:
        for directive in ("threads:", "resources:", "log:", "benchmark:", "conda:", "shell:"):
            assert directive in b, (b.split(":")[0], directive)


def test_snakemake_lint_is_clean(workflow_copy):
    r = subprocess.run([str(BIN / "snakemake"), "--lint", "--config", "profile=smoke"], cwd=workflow_copy,
                       capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0 and "good condition" in r.stdout + r.stderr, (r.stdout + r.stderr)[-2000:]


def test_dvc_hashes_ignore_snakemake_directory_markers():
    # Snakemake leaves .snakemake_timestamp in each directory output; DVC must not hash it, or the
    # same outputs built by `snakemake` and by `dvc repro` get different hashes in dvc.lock.
    def ignored(path: str) -> bool:
        r = subprocess.run([str(BIN / "dvc"), "check-ignore", path], cwd=REPO, capture_output=True,
                           text=True, env=_env(), timeout=120)
        assert r.returncode in (0, 1), r.stderr
        return r.returncode == 0
    assert ignored("results/default/uv/.snakemake_timestamp")
    assert ignored("resources/body/anny/.snakemake_timestamp")
    assert not ignored("results/default/uv/uv_assets.npz")
