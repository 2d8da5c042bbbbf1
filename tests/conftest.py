"""Shared fixtures: the body-model export (built once, reused) and one smoke DAG run."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# src/uvhmr too: every rule depends on the package files its command runs (uvhmr.code_deps).
WORKFLOW_FILES = ("Snakefile", "workflow", "dvc.yaml", "params.yaml", ".dvc/config", ".dvc/.gitignore", ".dvcignore",
                  "src/uvhmr")


OLD_CODE_TIME = 946684800     # 2000-01-01


def _copy_workflow(dst: Path) -> Path:
    for name in WORKFLOW_FILES:
        src = REPO / name
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    return dst


def venv_env() -> dict:
    """This process's environment with the test's virtualenv first on PATH, so subprocesses find
    `uvhmr`, `snakemake` and `dvc` as the workflow's shell commands do."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture
def workflow_copy(tmp_path) -> Path:
    """The workflow's declarations in a fresh folder (a git + DVC repo), nothing else."""
    d = _copy_workflow(tmp_path / "repo with space")
    subprocess.run(["git", "init", "-q"], cwd=d, check=True)
    return d


@pytest.fixture(scope="session")
def anny_dir() -> Path:
    """resources/body/anny, built through the real CLI once (about 70 s) and then reused, by the
    tests and by the README's main job alike."""
    from uvhmr.body.base import EXPORT_VERSION
    out = REPO / "resources/body/anny"
    try:
        import numpy as np
        with np.load(out / "assets.npz") as z:
            if int(z["export_version"]) == EXPORT_VERSION:
                return out
    except (OSError, KeyError):
        pass
    env = dict(os.environ)
    subprocess.run([sys.executable, "-m", "uvhmr.cli", "resolve-params", "--profile", "smoke"], cwd=REPO, check=True, env=env)
    subprocess.run([sys.executable, "-m", "uvhmr.cli", "body-model", "--params", "resources/params/body_model-anny.json",
                    "--out", "resources/body/anny", "--log", "resources/logs/body_model.log"], cwd=REPO, check=True, env=env)
    return out


@pytest.fixture(scope="session")
def anny(anny_dir):
    from uvhmr.body.model import load_body_model
    return load_body_model(anny_dir)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, anny_dir):
    """One smoke run of the whole DAG (`snakemake --cores 2 --config profile=smoke`) in a copy of
    the workflow that shares the repository's body-model export; every DAG test reads this one run.
    Its folder's path has spaces, so every rule is run on paths with spaces (issue #12).
    -> (folder, CompletedProcess, files present before the run)."""
    d = _copy_workflow(tmp_path_factory.mktemp("smoke run") / "repo with space")
    subprocess.run(["git", "init", "-q"], cwd=d, check=True)
    (d / "resources").symlink_to(REPO / "resources")
    # The shared export is current (anny_dir checks its version): the copy's code is dated before
    # it, so the rules' code inputs (uvhmr.code_deps) do not make Snakemake rebuild it.
    for p in (d / "src").rglob("*.py"):
        os.utime(p, (OLD_CODE_TIME, OLD_CODE_TIME))
    before = {p.relative_to(d).as_posix() for p in d.rglob("*") if ".git" not in p.parts}
    env = venv_env()
    r = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--cores", "2", "--config", "profile=smoke"],
                       cwd=d, capture_output=True, text=True, env=env, timeout=1200)
    return d, r, before


@pytest.fixture(scope="session")
def tiny_uv_dir(anny, tmp_path_factory) -> Path:
    """UV assets at 64x64 and 128x128 for the Anny export."""
    from uvhmr.config import UvAssetsParams
    from uvhmr.uv.assets import build_uv_assets
    d = tmp_path_factory.mktemp("tiny-uv") / "uv"
    build_uv_assets(anny, UvAssetsParams(), d, log=lambda *_: None)
    return d


@pytest.fixture(scope="session")
def tiny_split(anny_dir, tiny_uv_dir, tmp_path_factory) -> Path:
    """A 12-sample dmp_train split of 48 px renders (tests/tiny_data.py)."""
    from tiny_data import build
    return build(anny_dir, tiny_uv_dir, tmp_path_factory.mktemp("tiny-data") / "dmp_train")
