"""Per-rule time and memory of a DAG run, against the budget table in docs/time_budget.md.

    .venv/bin/python bench/dag_budget.py --profile default

Reads the `benchmark:` files Snakemake writes for every job (results/<profile>/benchmarks/*.tsv,
and resources/benchmarks/body_model.tsv, which every profile shares) and prints, per rule: jobs,
total and largest wall time, peak memory, and the rule's budget from docs/time_budget.md
"Time budget" table; then the whole DAG (sum of job times: an upper bound of the wall time when
jobs overlap) against the profile's target and limit. Exit 1 when a limit is exceeded.
"""
import argparse
import csv
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_budget(readme: Path, profile: str) -> dict[str, float]:
    """The table in docs/time_budget.md: `| rule | smoke (s) | default (s) | ... |`."""
    text = readme.read_text()
    m = re.search(r"^## Time budget\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        raise SystemExit(f"{readme}: no '## Time budget' section")
    rows = [l for l in m.group(1).splitlines() if l.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    col = next((i for i, h in enumerate(header) if h.split()[0] == profile), None)
    if col is None:
        raise SystemExit(f"{readme}: the Time budget table has no column for profile {profile!r} ({header})")
    budget = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        try:
            budget[cells[0].strip("`* ")] = float(cells[col].replace("*", ""))
        except ValueError:
            continue
    return budget


def read_benchmarks(profile: str, root: Path) -> dict[str, list[dict]]:
    files = sorted((root / f"results/{profile}/benchmarks").glob("*.tsv"))
    files += sorted((root / "resources/benchmarks").glob("*.tsv"))
    per_rule = defaultdict(list)
    for f in files:
        rule = f.stem.split("-")[0]
        with open(f) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows:
            per_rule[rule].append(rows[-1])
    return per_rule


def mb(x: str) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    ap.add_argument("--root", type=Path, default=ROOT)
    a = ap.parse_args()
    budget = read_budget(a.root / "docs/time_budget.md", a.profile)
    runs = read_benchmarks(a.profile, a.root)
    if not runs:
        print(f"no benchmark files for profile {a.profile}: run the DAG first "
              f"(snakemake --cores 2 --config profile={a.profile})")
        return 1
    print(f"profile {a.profile}: per-rule wall time and peak memory (Snakemake benchmark files)")
    print(f"{'rule':<12} {'jobs':>4} {'total s':>9} {'max s':>8} {'max RSS MB':>11} {'budget s':>9}  ok")
    total = 0.0
    over = False
    for rule in sorted(runs, key=lambda r: list(budget).index(r) if r in budget else 99):
        rows = runs[rule]
        secs = [float(r["s"]) for r in rows]
        rss = max(mb(r.get("max_rss")) for r in rows)
        b = budget.get(rule)
        ok = "-" if b is None else ("yes" if sum(secs) <= b else "NO")
        print(f"{rule:<12} {len(rows):>4} {sum(secs):>9.1f} {max(secs):>8.1f} {rss:>11.0f} "
              f"{'' if b is None else f'{b:.0f}':>9}  {ok}")
        if rule != "body_model":   # built once and shared by every profile
            total += sum(secs)
    target, limit = budget.get("whole DAG (target)"), budget.get("whole DAG (limit)")
    print(f"{'whole DAG':<12} {'':>4} {total:>9.1f}   (sum of job times, body_model excluded)")
    if target is not None:
        print(f"target {target:.0f} s: {'met' if total <= target else 'MISSED'}; "
              f"limit {limit:.0f} s: {'within' if limit is None or total <= limit else 'EXCEEDED'}")
        over = limit is not None and total > limit
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
