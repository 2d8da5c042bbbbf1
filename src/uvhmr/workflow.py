"""The DAG's file layout and parameter resolution, shared by the Snakefile and `uvhmr`.

Every path a rule reads or writes is named here, once; `dvc.yaml` spells the same paths with
`${profile}` (a test checks both tools would run identical commands).

Parameters reach rules as one resolved JSON per rule (and variant): `results/<profile>/params/`.
They are rewritten only when their content changes, so editing one key of params.yaml reruns only
the rules that use it, in Snakemake (by mtime) and in DVC (by hash).
"""
from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from uvhmr.code_deps import code_deps
from uvhmr.config import BASELINES, TOP_KEYS, ConfigError, Params, Pipeline, load_params, rule_params, rule_params_dict
from uvhmr.io import write_if_changed

RULES = ("body_model", "uv_assets", "mocap", "dataset", "train_dmp", "train_hmr", "dmp_cache",
         "train_ik", "ik_cache", "train_uvi", "evaluate", "report", "figures")
SPLITS = ("dmp_train", "stage2_train", "test")
# Variants and baselines: params.yaml's registry (uvhmr.config.Variants, Pipeline, BASELINES).
# reports/<profile>/: the report rule's files (uvhmr.report.tables); the plots/ ones are the data of
# dvc.yaml's top-level `plots:` (training curves, columns = variant names; per-joint errors of the
# pipeline's three variants). The figures rule writes reports/<profile>/figures/.
REPORT_TABLES = ("ablation.md", "ablation.csv", "comparison.md", "metrics.json", "per_joint_mpjpe.csv")
TRAINING_PLOTS = ("train_dmp", "train_dmp_val", "train_hmr", "train_ik", "train_uvi")


def per_joint_targets(pipe: Pipeline) -> tuple[str, str, str]:
    """The targets whose per-joint errors are plotted: the pipeline's DMP, IK and UVI."""
    return (pipe.dmp, pipe.ik, pipe.uvi)


def report_plots(pipe: Pipeline) -> tuple[str, ...]:
    """The report rule's plot-data files, relative to reports/<profile>/."""
    return (*(f"plots/{p}.csv" for p in TRAINING_PLOTS), *(f"plots/per_joint/{t}.csv" for t in per_joint_targets(pipe)))


def report_files(pipe: Pipeline) -> tuple[str, ...]:
    return (*REPORT_TABLES, *report_plots(pipe))

# Cluster job groups (Snakemake `group:`, read only by cluster executors). Each Slurm job costs
# seconds of scheduling and status polling, so on the smoke profile, whose jobs last seconds, every
# stage below is one cluster job (the slurm profile's group-components merges a stage's unconnected
# parts): 4 jobs instead of 39. On the default and paper profiles every job is its own
# cluster job, so the variants and seeds train in parallel, each with its own resources (GPU).
STAGE_GROUPS = {"uv_assets": "prepare", "mocap": "prepare", "dataset": "prepare",
                "train_dmp": "stage1", "train_hmr": "stage1", "dmp_cache": "stage1",
                "train_ik": "stage2", "ik_cache": "stage2", "train_uvi": "stage2",
                "evaluate": "evaluate", "report": "evaluate", "figures": "evaluate"}
GROUPED_PROFILES = ("smoke",)


@dataclass(frozen=True)
class Layout:
    """Paths of one profile's run, relative to the repository root."""
    profile: str
    backend: str

    @property
    def root(self) -> str:
        return f"results/{self.profile}"

    @property
    def body(self) -> str:
        return f"resources/body/{self.backend}"

    def params(self, rule: str, variant: Optional[str] = None) -> str:
        if rule == "body_model":
            return f"resources/params/body_model-{self.backend}.json"
        return f"{self.root}/params/{rule}" + (f"/{variant}.json" if variant else ".json")

    def log(self, rule: str, variant: Optional[str] = None) -> str:
        base = "resources" if rule == "body_model" else self.root
        return f"{base}/logs/{rule}" + (f"-{variant}" if variant else "") + ".log"

    def benchmark(self, rule: str, variant: Optional[str] = None) -> str:
        base = "resources" if rule == "body_model" else self.root
        return f"{base}/benchmarks/{rule}" + (f"-{variant}" if variant else "") + ".tsv"

    @property
    def uv(self) -> str:
        return f"{self.root}/uv"

    @property
    def mocap(self) -> str:
        return f"{self.root}/mocap"

    def data(self, split: str) -> str:
        return f"{self.root}/data/{split}"

    def dmp_model(self, v: str) -> str:
        return f"{self.root}/models/dmp/{v}.pt"

    @property
    def hmr_model(self) -> str:
        return f"{self.root}/models/hmr.pt"

    def ik_model(self, v: str) -> str:
        return f"{self.root}/models/ik/{v}"

    def uvi_model(self, v: str) -> str:
        return f"{self.root}/models/uvi/{v}"

    def dmp_cache(self, v: str) -> str:
        return f"{self.root}/cache/dmp/{v}"

    def ik_cache(self, v: str) -> str:
        return f"{self.root}/cache/ik/{v}"

    def metrics(self, target: str) -> str:
        return f"{self.root}/metrics/{target}.json"

    @property
    def reports(self) -> str:
        return f"reports/{self.profile}"

    def report(self, name: str) -> str:
        return f"{self.reports}/{name}"

    @property
    def figures(self) -> str:
        return f"{self.reports}/figures"


def evaluate_targets(params: Params) -> list[str]:
    return [*params.variants.names(), *BASELINES]


def evaluate_inputs(lay: Layout, params: Params, target: str) -> dict[str, str]:
    """The inputs of `uvhmr evaluate --target <target>`, in the order of its flags."""
    pipe, stage = params.pipeline, params.variants.stage_of(target)
    common = {"data": lay.data("test"), "uv": lay.uv, "body": lay.body}
    if stage == "train_dmp":
        own = {"model": lay.dmp_model(target), "dmp_cache": lay.dmp_cache(target)}
    elif stage == "train_ik":
        own = {"model": lay.ik_model(target), "dmp_cache": lay.dmp_cache(pipe.dmp), "ik_cache": lay.ik_cache(target),
               "mocap": lay.mocap}
    elif stage == "train_uvi":
        own = {"model": lay.uvi_model(target), "dmp_cache": lay.dmp_cache(pipe.dmp), "ik_cache": lay.ik_cache(pipe.ik)}
    elif target == "hmr":
        own = {"model": lay.hmr_model}
    elif target == "iterative_ik":
        own = {"dmp_cache": lay.dmp_cache(pipe.dmp)}
    elif target == "mean_pose":
        own = {"mocap": lay.mocap}
    elif target == "oracle_ik":
        own = {"model": lay.ik_model(pipe.ik)}
    elif target == "oracle_uvi":
        own = {"model": lay.uvi_model(pipe.uvi)}
    else:
        raise ValueError(f"unknown evaluation target {target!r} (known: {', '.join(evaluate_targets(params))})")
    return {**common, **own}


def trained_models(lay: Layout, params: Params) -> list[str]:
    """Every trained model: the report reads the per-epoch CSVs the training rules write beside them."""
    v = params.variants
    return [*(lay.dmp_model(x) for x in v.train_dmp), lay.hmr_model,
            *(lay.ik_model(x) for x in v.train_ik), *(lay.uvi_model(x) for x in v.train_uvi)]


def flags(inputs: dict[str, str]) -> str:
    """`--data 'a' --model 'b'`: shell-quoted, in a fixed order, for the Snakefile."""
    return " ".join(f"--{k.replace('_', '-')} {shlex.quote(p)}" for k, p in inputs.items())


def rule_variants(params: Params) -> dict[str, list[Optional[str]]]:
    out: dict[str, list[Optional[str]]] = {r: [None] for r in RULES}
    out.update({rule: list(vs) for rule, vs in params.variants.stages().items()})
    out["evaluate"] = evaluate_targets(params)      # evaluate/<target>.json: the target's stage
    return out


def resolve(params: Params, root: Path = Path(".")) -> list[str]:
    """Write every rule's resolved parameters (only where they changed). -> paths written."""
    lay = Layout(params.profile, params.body_model.backend)
    written = []
    for rule, variants in rule_variants(params).items():
        for variant in variants:
            rp = rule_params(params, rule, variant)
            path = root / lay.params(rule, variant)
            if write_if_changed(path, json.dumps(rule_params_dict(rp), indent=2, sort_keys=True) + "\n"):
                written.append(str(path))
    return written


@dataclass(frozen=True)
class Workflow:
    """What the Snakefile needs, computed by the package: no logic lives in the Snakefile."""
    params: Params
    lay: Layout

    def _resources(self, rule: str):
        section = self.params.body_model if rule == "body_model" else getattr(self.params.rules, rule)
        return section.resources

    def resources(self, rule: str) -> dict:
        """A rule's `resources:` from params.yaml. mem_mb and runtime (minutes) become sbatch --mem
        and -t; `gpus` (0 or more) is what the cluster-generic profile and the Slurm job step read;
        `gres` (only where gpus > 0) is snakemake-executor-plugin-slurm's sbatch --gres=gpu:N."""
        r = self._resources(rule)
        gpu = {"gres": f"gpu:{r.gpus}"} if r.gpus else {}
        return {"mem_mb": r.mem_mb, "runtime": r.runtime, "gpus": r.gpus, **gpu}

    def threads(self, rule: str) -> int:
        return self._resources(rule).threads

    @property
    def pipeline(self) -> Pipeline:
        return self.params.pipeline

    def code(self, rule: str) -> list[str]:
        """The package files the rule's `uvhmr` subcommand runs (uvhmr.code_deps): inputs of the
        rule, so a change to one reruns the rule and what follows (docs/design.md)."""
        return code_deps(rule.replace("_", "-"))

    def group(self, rule: str) -> Optional[str]:
        """The rule's cluster job group (Snakemake `group:`; local runs ignore groups)."""
        return STAGE_GROUPS.get(rule) if self.params.profile in GROUPED_PROFILES else None


def snakemake_setup(config: dict, params_file: str = "params.yaml") -> Workflow:
    """Validate params.yaml (with Snakemake's --config overrides of `profile`) and resolve the
    per-rule parameter files. On a bad parameter, print one line and exit before any job runs."""
    unknown = set(config) - {"profile"}
    try:
        if any(a.startswith("--configfile") for a in sys.argv) or unknown & set(TOP_KEYS):
            # A whole params file: refused rather than half-supported (its results would share
            # results/<profile>/ with params.yaml's, and DVC reads params.yaml only).
            raise ConfigError("--configfile: not supported; the workflow reads params.yaml only: put your parameters "
                              "in params.yaml (keep a copy of the old one) and pick a profile with --config profile=NAME")
        if unknown:
            raise ConfigError(f"--config: {sorted(unknown)[0]}: unknown key (only profile=smoke|default|paper is read "
                              "from --config; set every other parameter in params.yaml)")
        params = load_params(params_file, profile=config.get("profile"))
        resolve(params)
    except ConfigError as e:
        print(f"uvhmr: {e}", file=sys.stderr)
        sys.stderr.flush()
        raise SystemExit(2)
    return Workflow(params, Layout(params.profile, params.body_model.backend))
