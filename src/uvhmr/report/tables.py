"""Write reports/<profile>/: ablation.md/.csv (Table 4's rows), comparison.md (stages, baselines,
floor and oracle rows, with the paper's published 3DOH numbers as labelled reference rows),
metrics.json (DVC metrics), per_joint_mpjpe.csv, and plots/ (the data of dvc.yaml's `plots:`:
training curves and per-joint errors). Every number comes from results/<profile>/metrics/*.json
and the per-epoch CSVs the training rules write beside their models (results/<profile>/models/).
The markdown files say which profile, data and commit produced them (report/provenance.py)."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from uvhmr.config import BASELINES, Pipeline, Variants
from uvhmr.evaluate.metrics import LSP14_NAMES
from uvhmr.io import write_text
from uvhmr.report.provenance import data_of, provenance, provenance_line
from uvhmr.report.stats import paired_difference
from uvhmr.workflow import per_joint_targets, report_files



@dataclass(frozen=True)
class Row:
    """One row of the ablation table: label, the target whose metrics it shows, which of them
    ("" its own, "visible" Table 4's Nonoccluded view), the full stage it is compared with (None:
    none) and the paper's numbers (MPVE, MPJPE, PA-MPJPE; None where the paper has none)."""
    label: str
    target: str
    view: str
    full: Optional[str]
    paper: tuple


def _paper(p) -> tuple:
    return (p.mpve, p.mpjpe, p.pa_mpjpe) if p is not None else (None, None, None)


def table4_rows(variants: Variants, pipeline: Pipeline) -> list[Row]:
    """The ablation table's rows from params.yaml's registry, stage by stage: each stage's other
    variants (compared with the pipeline's), then the pipeline's own (its Nonoccluded row first)."""
    rows = []
    for stage, vs in variants.stages().items():
        full = pipeline.of(stage)
        for name in [n for n in vs if n != full] + [full]:
            v = vs[name]
            if v.nonoccluded is not None:
                rows.append(Row(v.nonoccluded.label, name, "visible", None, _paper(v.nonoccluded.paper)))
            rows.append(Row(v.label, name, "", None if name == full else full, _paper(v.paper)))
    return rows


def _row_metrics(m: dict, view: str) -> tuple:
    """-> (MPVE, MPJPE, PA-MPJPE) of a metrics JSON; IK's MPVE is its posed mesh's."""
    s = "_visible" if view == "visible" else ""
    met = m["metrics"]
    mpve = met.get("mpve", met.get("mesh_mpve")) if not view else None
    return mpve, met.get(f"mpjpe{s}"), met.get(f"pa_mpjpe{s}")


def _mm(x) -> str:
    return f"{x:.1f} mm" if x is not None else "no number"


def ci_sign(lo: float, hi: float) -> int:
    """The sign a 95 % interval of (variant minus full) supports: 1 removing the part hurts, -1 it
    helps, 0 no measurable difference (the interval holds 0)."""
    return 1 if lo > 0 else -1 if hi < 0 else 0


def reading(metrics: dict, deltas: dict, rows: list[Row]) -> str:
    """The ablation table read against the paper's, in words, from the numbers alone: whether the
    stages beat the mean-pose floor, whether each stage improves on the one before, and per
    ablation whether removing the part hurts, helps or makes no difference, each set against the
    paper's Table 4 where it has the rows. deltas: row label -> (mean Δ MPJPE vs the full stage,
    CI low, CI high)."""
    out = ["", "## How this reads against the paper", ""]
    floor = metrics.get("mean_pose", {}).get("metrics", {}).get("mpjpe")
    by_label = {r.label: r for r in rows}
    full_rows = [r for r in rows if r.full is None and not r.view]          # the pipeline's, in stage order
    stages = [(r, metrics[r.target]["metrics"]["mpjpe"]) for r in full_rows if r.target in metrics]
    if floor is not None:
        for r, v in stages:
            if v >= floor:
                out.append(f"- **{r.label} does not beat the mean pose** ({v:.1f} mm vs {floor:.1f} mm MPJPE): its "
                           "predictions carry no usable pose information on this profile, so the ablations that "
                           "depend on it measure noise, not the effect the paper reports.")
    for (a, va), (b, vb) in zip(stages, stages[1:]):
        pa, pb = a.paper[1], b.paper[1]
        line = f"- {b.label} {'improves' if vb < va else 'does not improve'} on {a.label} ({vb:.1f} vs {va:.1f} mm)"
        if pa is not None and pb is not None:
            line += f", {'as in' if (vb < va) == (pb < pa) else 'unlike'} the paper ({pb:.1f} vs {pa:.1f} mm)"
        out.append(line + ".")
    for label, (d, lo, hi) in deltas.items():
        r = by_label[label]
        full = next(f for f in full_rows if f.target == r.full)
        ours = ci_sign(lo, hi)
        verdict = {1: "hurts", -1: "helps", 0: "makes no measurable difference"}[ours]
        if r.paper[1] is not None and full.paper[1] is not None:
            paper_d = r.paper[1] - full.paper[1]
            same = "as in" if ours == int(np.sign(paper_d)) else "unlike"
            out.append(f"- {label}: {verdict} here, {same} the paper (Δ {d:+.1f} mm, 95 % CI {lo:+.1f} to {hi:+.1f}; "
                       f"the paper: {paper_d:+.1f} mm).")
        else:
            out.append(f"- {label}: {verdict} here (Δ {d:+.1f} mm, 95 % CI {lo:+.1f} to {hi:+.1f}; not in the paper).")
    return "\n".join(out) + "\n"


def _ci(d: float, lo: float, hi: float) -> dict:
    return {"delta": round(d, 2), "ci_low": round(lo, 2), "ci_high": round(hi, 2), "excludes_zero": ci_sign(lo, hi) != 0}


# Held-out mocap conditions of evaluate's IK rows: the `heldout_mocap.per_sample` key of J_refine's
# errors -> (the condition's name in `differences`, its description from evaluate's record).
HELDOUT_CONDITIONS = {
    "noise_j_refine_mpjpe": ("noise", lambda h: f"every joint with Gaussian noise of {h.get('noise_sigma_m', '?')} m"),
    "j_refine_mpjpe": ("zeroed", lambda h: f"{100 * h.get('zeroed_fraction', float('nan')):.0f} % of the joints zeroed"),
}


def differences(metrics: dict, variants: Variants, pipeline: Pipeline) -> dict:
    """Paired differences (report.stats.paired_difference, mm, 95 % interval over samples and
    seeds) beyond Table 4's: each pipeline stage's MPJPE minus the stage before it on the test
    split (`ik14_minus_dmp14`: J_refine minus J_initial, `uvi14_minus_ik14`: the final joints
    minus J_refine), and each other IK variant's J_refine minus the pipeline IK's on evaluate's
    held-out mocap poses, in both conditions (HELDOUT_CONDITIONS). -> name -> _ci's dict plus
    "what" (a phrase) and, for IK variants, "variant" and "condition"."""
    out = {}
    chain = [pipeline.dmp, pipeline.ik, pipeline.uvi]
    for a, b in zip(chain, chain[1:]):
        if a in metrics and b in metrics:
            d, (lo, hi) = paired_difference(metrics[b]["per_sample"]["mpjpe"], metrics[a]["per_sample"]["mpjpe"])
            out[f"{b}_minus_{a}"] = {**_ci(d, lo, hi), "what": f"test split MPJPE, {b} minus {a}"}
    full = metrics.get(pipeline.ik, {}).get("heldout_mocap", {})
    for name in variants.stages().get("train_ik", {}):
        held = metrics.get(name, {}).get("heldout_mocap", {})
        if name == pipeline.ik or "per_sample" not in held or "per_sample" not in full:
            continue
        for key, (short, describe) in HELDOUT_CONDITIONS.items():
            if key in held["per_sample"] and key in full["per_sample"]:
                d, (lo, hi) = paired_difference(held["per_sample"][key], full["per_sample"][key])
                out[f"{name}_minus_{pipeline.ik}_{short}"] = {
                    **_ci(d, lo, hi), "variant": name, "condition": key,
                    "what": f"held-out mocap poses, {describe(held)}: J_refine MPJPE, {name} minus {pipeline.ik}"}
    return out


def differences_md(diffs: dict, variants: Variants, pipeline: Pipeline) -> str:
    """The ablation file's section on `differences`: the stage ordering and the IK ablations on
    held-out mocap, each read against the sign of the paper's Table 4 difference."""
    ik = variants.stages().get("train_ik", {})
    lines = ["", "## Stage ordering and the IK ablations on held-out poses", "",
             "Paired differences in mm (95 % interval over samples and seeds; * : it excludes 0).", "",
             "| difference | Δ MPJPE (95 % CI) | the paper's sign |", "|---|---|---|"]
    for name, v in diffs.items():
        star = " *" if v["excludes_zero"] else ""
        paper = "-"
        if "variant" in v:
            pv, pf = ik[v["variant"]].paper, ik[pipeline.ik].paper
            if pv is not None and pf is not None and pv.mpjpe is not None and pf.mpjpe is not None:
                pd = pv.mpjpe - pf.mpjpe
                paper = f"{pd:+.1f} mm: {'agrees' if ci_sign(v['ci_low'], v['ci_high']) == int(np.sign(pd)) else 'disagrees'}"
        lines.append(f"| {v['what']} | {v['delta']:+.1f} ({v['ci_low']:+.1f}, {v['ci_high']:+.1f}){star} | {paper} |")
    return "\n".join(lines) + "\n"


def _fmt(x) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.1f}"


def build_tables(metrics: dict, profile: str, variants: Variants, pipeline: Pipeline, prov: dict | None = None) -> dict:
    """metrics: target -> metrics JSON; variants, pipeline: params.yaml's registry (the rows, their
    labels and the paper's numbers); prov: report.provenance's dict (commit "unknown" if not
    given). -> {file name: text}."""
    table4 = table4_rows(variants, pipeline)
    prov = prov or {"profile": profile, "data": data_of(metrics), "commit": "unknown"}
    head = (provenance_line(prov) + f" Written by `uvhmr report` from `results/{profile}/metrics/` "
            f"(n = {next(iter(metrics.values()))['n'] if metrics else 0} test samples). Errors in mm.\n\n")
    rows, lines = [], ["| | MPVE | MPJPE | PA-MPJPE | Δ MPJPE vs full stage (95 % CI) | seeds |", "|---|---|---|---|---|---|"]
    deltas = {}
    for r in table4:
        label, target, view, full = r.label, r.target, r.view, r.full
        if target not in metrics:
            continue
        m = metrics[target]
        mpve, mpjpe, pa = _row_metrics(m, view)
        delta = ""
        if full and full in metrics:
            key = "mpjpe"
            d, (lo, hi) = paired_difference(m["per_sample"][key], metrics[full]["per_sample"][key])
            sig = "" if lo <= 0 <= hi else " *"
            delta = f"{d:+.1f} ({lo:+.1f}, {hi:+.1f}){sig}"
            deltas[label] = (d, lo, hi)
        sd = m.get("metrics_std_over_seeds", {}).get("mpjpe")
        seeds = f"{len(m['seeds'])}" + (f", MPJPE sd {sd:.1f}" if sd is not None else "")
        lines.append(f"| {label} | {_fmt(mpve)} | {_fmt(mpjpe)} | {_fmt(pa)} | {delta} | {seeds} |")
        rows.append({"row": label, "target": target, "mpve": mpve, "mpjpe": mpjpe, "pa_mpjpe": pa, "delta_vs_full": delta})
    diffs = differences(metrics, variants, pipeline)
    ablation = ("# Ablations (the paper's Table 4, regenerated)\n\n" + head + "\n".join(lines) +
                "\n\n* : the 95 % interval of the difference excludes 0 (bootstrap over test samples, paired, and over each variant's seeds). Nonoccluded: Procrustes on all "
                "joints, error over the visible ones. IK rows: MPJPE of J_refine, MPVE of GIK-Net's posed mesh.\n"
                + reading(metrics, deltas, table4) + differences_md(diffs, variants, pipeline))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["row", "target", "mpve", "mpjpe", "pa_mpjpe", "delta_vs_full"])
    w.writeheader()
    w.writerows(rows)

    comp = ["# Stages and baselines\n", head, "| | MPVE | MPJPE | PA-MPJPE |", "|---|---|---|---|"]
    labels = {r.target: r.label for r in table4 if not r.view}
    stage_rows = [(f"{labels[pipeline.dmp]} (J_initial)", pipeline.dmp), (f"{labels[pipeline.ik]} (J_refine)", pipeline.ik),
                  (f"{labels[pipeline.uvi]} (final)", pipeline.uvi)]
    for label, target in stage_rows + [(lab, t) for t, lab in BASELINES.items()]:
        if target in metrics:
            mpve, mpjpe, pa = _row_metrics(metrics[target], "")
            comp.append(f"| {label} | {_fmt(mpve)} | {_fmt(mpjpe)} | {_fmt(pa)} |")
    comp += ["", "Reference only, not comparable (the paper's Table 4, 3DOH test set, SMPL, real images):", "",
             "| paper row | MPVE | MPJPE | PA-MPJPE |", "|---|---|---|---|"]
    for r in table4:
        if any(x is not None for x in r.paper):
            comp.append(f"| {r.label} (paper) | " + " | ".join(_fmt(x) for x in r.paper) + " |")
    dvc = {t: {k: round(v, 2) for k, v in m["metrics"].items() if np.isfinite(v)} for t, m in sorted(metrics.items())}
    return {"ablation.md": ablation, "ablation.csv": buf.getvalue(), "comparison.md": "\n".join(comp) + "\n",
            "metrics.json": json.dumps({"profile": profile, **dvc, "differences": {
                k: {f: x for f, x in v.items() if f in ("delta", "ci_low", "ci_high")} for k, v in diffs.items()}},
                indent=2) + "\n",
            "per_joint_mpjpe.csv": per_joint_table(metrics)}


# ----------------------------------------------------------------------------- DVC plots data
# Files under reports/<profile>/plots/, each named in dvc.yaml's top-level `plots:` with its
# columns. Columns are the variant names of params.yaml's `variants` (fixed names) so dvc.yaml
# can list them; seeds are averaged (per epoch) because their number differs between profiles.
TRAINING_PLOTS = {   # file (uvhmr.workflow.TRAINING_PLOTS) -> (models subfolder, CSV column plotted)
    "plots/train_dmp.csv": ("dmp", "loss_total"),
    "plots/train_dmp_val.csv": ("dmp", "val_j_initial_mpjpe_mm"),
    "plots/train_hmr.csv": ("", "loss_total"),
    "plots/train_ik.csv": ("ik", "loss_total"),
    "plots/train_uvi.csv": ("uvi", "loss_total"),
}


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def training_curves(models_dir: Path, pipeline: Pipeline) -> dict[str, dict[str, dict[int, float]]]:
    """results/<profile>/models -> {plot file: {series: {epoch: value}}} from the per-epoch CSVs
    (models/dmp/<v>.csv, models/hmr.csv, models/{ik,uvi}/<v>/seed<k>.csv, seeds averaged); the
    mean-pose floor from the pipeline's DMP's CSV."""
    models_dir = Path(models_dir)
    out: dict[str, dict[str, dict[int, float]]] = {}
    for name, (sub, column) in TRAINING_PLOTS.items():
        if sub == "dmp":
            groups = {f.stem: [f] for f in sorted((models_dir / "dmp").glob("*.csv"))}
        elif sub == "":
            groups = {"hmr": [models_dir / "hmr.csv"]} if (models_dir / "hmr.csv").is_file() else {}
        else:
            groups = {d.name: sorted(d.glob("seed*.csv")) for d in sorted((models_dir / sub).glob("*")) if d.is_dir()}
        series: dict[str, dict[int, float]] = {}
        for label, files in groups.items():
            per_epoch: dict[int, list[float]] = {}
            for f in files:
                for row in _read_csv(f):
                    if column in row and row.get("epoch"):
                        per_epoch.setdefault(int(float(row["epoch"])), []).append(_num(row[column]))
            if per_epoch:
                series[label] = {e: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                                 for e, v in sorted(per_epoch.items())}
        if column == "val_j_initial_mpjpe_mm":          # the mean pose: the floor DMP must beat
            f = models_dir / "dmp" / f"{pipeline.dmp}.csv"
            rows = _read_csv(f) if f.is_file() else []
            if rows and "val_mean_pose_mpjpe_mm" in rows[0]:
                series["mean_pose"] = {int(float(r["epoch"])): _num(r["val_mean_pose_mpjpe_mm"]) for r in rows}
        out[name] = series
    return out


def _wide_csv(first: str, series: dict[str, dict]) -> str:
    """{series: {key: value}} -> CSV with column `first` and one column per series (blank where
    a series has no value for a key)."""
    keys = sorted({k for s in series.values() for k in s})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([first, *series])
    for k in keys:
        w.writerow([k, *("" if k not in s or not np.isfinite(s[k]) else f"{s[k]:.6g}" for s in series.values())])
    return buf.getvalue()


def per_joint_table(metrics: dict) -> str:
    """Per-joint MPJPE (mm) of every target that records it: one row per LSP-14 joint."""
    series = {t: m["per_joint_mpjpe_mm"] for t, m in sorted(metrics.items()) if m.get("per_joint_mpjpe_mm")}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["joint", *series])
    for j in LSP14_NAMES:
        w.writerow([j, *("" if s.get(j) is None else f"{s[j]:.1f}" for s in series.values())])
    return buf.getvalue()


def build_plots(metrics: dict, models_dir: Path | None, pipeline: Pipeline) -> dict:
    """-> {path under reports/<profile>/: CSV text}: training curves and per-joint errors."""
    out = {name: _wide_csv("epoch", series) for name, series in
           (training_curves(models_dir, pipeline) if models_dir else {n: {} for n in TRAINING_PLOTS}).items()}
    for t in per_joint_targets(pipeline):
        pj = (metrics.get(t) or {}).get("per_joint_mpjpe_mm") or {}
        out[f"plots/per_joint/{t}.csv"] = "joint,mpjpe_mm\n" + "".join(
            f"{j},{pj[j]:.1f}\n" for j in LSP14_NAMES if pj.get(j) is not None)
    return out


def run_report(rp, metrics_dir: Path, out_dir: Path, log=print, models_dir: Path | None = None) -> None:
    """Write every file of uvhmr.workflow.report_files under out_dir (reports/<profile>; its
    figures/ folder is the figures rule's and stays untouched). rp: the report rule's resolved
    parameters, which carry params.yaml's variant registry and pipeline."""
    files = sorted(Path(metrics_dir).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{metrics_dir}: no metrics JSON; run the workflow's evaluate rule first")
    metrics = {f.stem: json.loads(f.read_text()) for f in files}
    prov = provenance(rp.profile, metrics)
    written = {**build_tables(metrics, rp.profile, rp.variants, rp.pipeline, prov),
               **build_plots(metrics, models_dir, rp.pipeline)}
    expected = set(report_files(rp.pipeline))
    assert set(written) == expected, sorted(set(written) ^ expected)
    for name, text in written.items():
        write_text(Path(out_dir) / name, text)
    log(f"wrote {out_dir}: {len(written)} files ({len(metrics)} targets); commit {prov['commit']}")
