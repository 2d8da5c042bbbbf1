# uvhmr: the whole DAG (docs/design.md, "The DAG"). Rules only declare files, parameters and resources and call
# one `uvhmr` subcommand each; all logic lives in the package (src/uvhmr). dvc.yaml runs the very
# same commands (tests/test_workflow.py checks it).
#
#   snakemake --cores 2                          # default profile (params.yaml `profile:`)
#   snakemake --cores 2 --config profile=smoke   # a few minutes: what the tests run
#   snakemake --profile workflow/profiles/slurm  # on a Slurm cluster
import os

from uvhmr.workflow import (SPLITS, evaluate_inputs, evaluate_targets, flags, report_files, report_plots,
                            snakemake_setup, trained_models)

# Validates params.yaml (one line and exit 2 on a bad key) and writes each rule's resolved
# parameters to results/<profile>/params/ (only those that changed). Every rule's inputs include
# W.code(rule): the package files its `uvhmr` subcommand runs (uvhmr.code_deps).
W = snakemake_setup(config)
P = W.params
L = W.lay
V = W.pipeline   # the variants the stages chain (params.yaml `pipeline:`)
ENV = "../envs/uvhmr.yaml"   # relative to workflow/rules/; for --lint and --sdm conda only

# `snakemake --report report.html` (after a run): the tables, training curves and figures marked
# with report() in workflow/rules/report.smk, under this front page.
report: "workflow/report/workflow.rst"


wildcard_constraints:
    split="|".join(SPLITS),
    dmp="|".join(P.variants.train_dmp),
    ik="|".join(P.variants.train_ik),
    uvi="|".join(P.variants.train_uvi),
    target="|".join(evaluate_targets(P)),


include: "workflow/rules/body.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        [L.report(f) for f in report_files(V)],
        L.figures,
