"""What produced a report: the profile, the data the metrics were scored on, and the code's git
commit. Every file the report and figures rules write says it (issue #9)."""
from __future__ import annotations

import subprocess
from pathlib import Path


# Files the DAG itself rewrites while it runs: `dvc repro` updates dvc.lock after every stage and
# the report and figures rules write reports/, so changes there say nothing about the code.
WORKFLOW_OUTPUTS = ("dvc.lock", "reports")


def git_commit(cwd: str | Path = ".") -> str:
    """The repository's HEAD commit, with "+ uncommitted changes" when tracked files other than
    WORKFLOW_OUTPUTS differ from it; "unknown" outside a git checkout (or one without commits)."""
    def git(*args) -> str:
        r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        return r.stdout.strip()
    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                    *(f":(top,exclude){p}" for p in WORKFLOW_OUTPUTS))
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def data_of(metrics: dict) -> dict:
    """The test data of a set of metrics JSONs (evaluate records it in each; they share it)."""
    for m in metrics.values():
        if m.get("data"):
            return m["data"]
    return {}


def describe_data(data: dict) -> str:
    """One phrase: `synthetic test split results/default/data/test (500 images, 64 px, anny
    bodies, occluders of the test families)`; "unknown" when nothing was recorded."""
    if not data:
        return "unknown"
    bits = [f"{data['samples']} images" if data.get("samples") is not None else None,
            f"{data['image_size']} px" if data.get("image_size") else None,
            f"{data['body_model']} bodies" if data.get("body_model") else None,
            f"occluders of the {data['occluder_families']} families" if data.get("occluder_families") else None]
    bits = [b for b in bits if b]
    return (f"{data.get('source') or 'unknown'} {data.get('split') or ''} split `{data.get('path', '?')}`"
            + (f" ({', '.join(bits)})" if bits else ""))


def provenance(profile: str, metrics: dict, cwd: str | Path = ".") -> dict:
    return {"profile": profile, "data": data_of(metrics), "commit": git_commit(cwd)}


def provenance_line(prov: dict) -> str:
    """The markdown line every report file starts with."""
    return (f"Profile **{prov['profile']}**; data: {describe_data(prov['data'])}; "
            f"commit `{prov['commit']}`.")
