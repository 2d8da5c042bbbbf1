"""Write reports/<profile>/: ablation.md/.csv (Table 4's rows), comparison.md (stages, baselines,
floor and oracle rows, with the paper's published 3DOH numbers as labelled reference rows) and
metrics.json (DVC metrics). Every number comes from results/<profile>/metrics/*.json."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from uvhmr.io import atomic_dir

# (label, target, which metrics: "" = own, "visible" = the Nonoccluded view, full stage to compare with)
TABLE4 = [
    ("DMP-24", "dmp24", "", "dmp14"),
    ("DMP-14 w/o synthetic occlusion", "dmp14_nosynocc", "", "dmp14"),
    ("DMP-14-Nonoccluded", "dmp14", "visible", None),
    ("DMP-14", "dmp14", "", None),
    ("IK-14 w/o gaussian noise", "ik14_nonoise", "", "ik14"),
    ("IK-14 w/o random zero", "ik14_nozero", "", "ik14"),
    ("IK-14", "ik14", "", None),
    ("UVI-14 w/o IK-14", "uvi14_noik", "", "uvi14"),
    ("UVI-14 w/o DMP-14", "uvi14_nodmp", "", "uvi14"),
    ("UVI-14 w/o l_dismag", "uvi14_nodismag", "", "uvi14"),
    ("UVI-14", "uvi14", "", None),
]
# The paper's Table 4 (3DOH test set): MPVE, MPJPE, PA-MPJPE in mm (reference only: other data).
PAPER_TABLE4 = {
    "DMP-24": (None, 246.4, 208.5), "DMP-14 w/o synthetic occlusion": (None, 135.4, 115.7),
    "DMP-14-Nonoccluded": (None, 87.3, 64.7), "DMP-14": (None, 128.4, 109.8),
    "IK-14 w/o gaussian noise": (138.2, 115.7, 82.8), "IK-14 w/o random zero": (139.5, 116.8, 83.2),
    "IK-14": (133.5, 112.9, 80.8), "UVI-14 w/o IK-14": (82.9, 69.4, 58.1), "UVI-14 w/o DMP-14": (80.1, 67.8, 55.1),
    "UVI-14 w/o l_dismag": (75.5, 63.8, 47.3), "UVI-14": (72.3, 58.3, 44.6),
}
BASELINES = [("Mean pose (floor)", "mean_pose"), ("HMR-style regression", "hmr"),
             ("Iterative IK on J_initial", "iterative_ik"), ("IK on GT joints, 30 % zeroed (oracle)", "oracle_ik"),
             ("UVI on GT maps (oracle)", "oracle_uvi")]


def _row_metrics(m: dict, view: str) -> tuple:
    """-> (MPVE, MPJPE, PA-MPJPE) of a metrics JSON; IK's MPVE is its posed mesh's."""
    s = "_visible" if view == "visible" else ""
    met = m["metrics"]
    mpve = met.get("mpve", met.get("mesh_mpve")) if not view else None
    return mpve, met.get(f"mpjpe{s}"), met.get(f"pa_mpjpe{s}")


def paired_bootstrap(a, b, n_boot: int = 2000, seed: int = 0):
    """Mean of a - b (paired per sample, NaNs dropped) and its 95 % bootstrap interval."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    if len(d) == 0:
        return float("nan"), (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(1)
    return float(d.mean()), (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)))


def _fmt(x) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.1f}"


def build_tables(metrics: dict, profile: str) -> dict:
    """metrics: target -> metrics JSON. -> {file name: text}."""
    head = (f"Profile **{profile}**, written by `uvhmr report` from `results/{profile}/metrics/`; "
            f"synthetic test split (n = {next(iter(metrics.values()))['n'] if metrics else 0}). Errors in mm.\n\n")
    rows, lines = [], ["| | MPVE | MPJPE | PA-MPJPE | Δ MPJPE vs full stage (95 % CI) | seeds |", "|---|---|---|---|---|---|"]
    for label, target, view, full in TABLE4:
        if target not in metrics:
            continue
        m = metrics[target]
        mpve, mpjpe, pa = _row_metrics(m, view)
        delta = ""
        if full and full in metrics:
            key = "mpjpe"
            d, (lo, hi) = paired_bootstrap(m["per_sample"][key], metrics[full]["per_sample"][key])
            sig = "" if lo <= 0 <= hi else " *"
            delta = f"{d:+.1f} ({lo:+.1f}, {hi:+.1f}){sig}"
        sd = m.get("metrics_std_over_seeds", {}).get("mpjpe")
        seeds = f"{len(m['seeds'])}" + (f", MPJPE sd {sd:.1f}" if sd is not None else "")
        lines.append(f"| {label} | {_fmt(mpve)} | {_fmt(mpjpe)} | {_fmt(pa)} | {delta} | {seeds} |")
        rows.append({"row": label, "target": target, "mpve": mpve, "mpjpe": mpjpe, "pa_mpjpe": pa, "delta_vs_full": delta})
    ablation = ("# Ablations (the paper's Table 4, regenerated)\n\n" + head + "\n".join(lines) +
                "\n\n* : the 95 % paired-bootstrap interval of the difference excludes 0. Nonoccluded: Procrustes on all "
                "joints, error over the visible ones. IK rows: MPJPE of J_refine, MPVE of GIK-Net's posed mesh.\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["row", "target", "mpve", "mpjpe", "pa_mpjpe", "delta_vs_full"])
    w.writeheader()
    w.writerows(rows)

    comp = ["# Stages and baselines\n", head, "| | MPVE | MPJPE | PA-MPJPE |", "|---|---|---|---|"]
    for label, target in [("DMP-14 (J_initial)", "dmp14"), ("IK-14 (J_refine)", "ik14"), ("UVI-14 (final)", "uvi14")] + BASELINES:
        if target in metrics:
            mpve, mpjpe, pa = _row_metrics(metrics[target], "")
            comp.append(f"| {label} | {_fmt(mpve)} | {_fmt(mpjpe)} | {_fmt(pa)} |")
    comp += ["", "Reference only, not comparable (the paper's Table 4, 3DOH test set, SMPL, real images):", "",
             "| paper row | MPVE | MPJPE | PA-MPJPE |", "|---|---|---|---|"]
    for label, (a, b, c) in PAPER_TABLE4.items():
        comp.append(f"| {label} (paper) | {_fmt(a) if a else '-'} | {b:.1f} | {c:.1f} |")
    dvc = {t: {k: round(v, 2) for k, v in m["metrics"].items() if np.isfinite(v)} for t, m in sorted(metrics.items())}
    return {"ablation.md": ablation, "ablation.csv": buf.getvalue(), "comparison.md": "\n".join(comp) + "\n",
            "metrics.json": json.dumps({"profile": profile, **dvc}, indent=2) + "\n"}


def run_report(rp, metrics_dir: Path, out_dir: Path, log=print) -> None:
    files = sorted(Path(metrics_dir).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{metrics_dir}: no metrics JSON; run the workflow's evaluate rule first")
    metrics = {f.stem: json.loads(f.read_text()) for f in files}
    with atomic_dir(out_dir) as tmp:
        for name, text in build_tables(metrics, rp.profile).items():
            (tmp / name).write_text(text)
    log(f"wrote {out_dir}: ablation.md, ablation.csv, comparison.md, metrics.json ({len(metrics)} targets)")
