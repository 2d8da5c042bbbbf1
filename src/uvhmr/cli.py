"""`uvhmr`: one subcommand per DAG rule (what Snakefile and dvc.yaml call), plus `predict`.

Every rule subcommand takes `--params`, the rule's resolved parameter JSON (written by
`uvhmr resolve-params` / the Snakefile from params.yaml), explicit input and output paths, and
`--log`, a file that receives everything the command prints.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path

from uvhmr.code_deps import check_dvc_yaml, code_deps, write_dvc_yaml
from uvhmr.config import load_params, load_rule_params
from uvhmr.dvc_commit import dvc_commit_keeping_times
from uvhmr.errors import ConfigError
from uvhmr.faults import debug_enabled, one_line
from uvhmr.predict_cli import MAX_PIXELS, MAX_SIDE, MIN_SIDE
from uvhmr.predict_cli import main as predict_main
from uvhmr.workflow import SPLITS, resolve

log = logging.getLogger("uvhmr")


def _setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        handlers=handlers, force=True)


def _rule_params(a):
    """The rule's resolved parameters (--params), with torch's threads and seed set from them."""
    rp = load_rule_params(a.params)
    _threads_and_seed(rp)
    return rp


def _threads_and_seed(rp) -> None:
    """torch's thread count follows the rule's declared threads, so a result does not depend
    on the machine (or the Slurm node) a rule runs on."""
    import torch
    n = rp.resources.threads
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.manual_seed(rp.run.seed)
    if rp.run.deterministic:
        # torch.use_deterministic_algorithms also imports torch._inductor to set its compile
        # flag: 1.6 s of every job's start (measured, torch 2.14.1). Nothing here compiles, so
        # set ATen's flag alone; torch.are_deterministic_algorithms_enabled() reads it.
        torch._C._set_deterministic_algorithms(True, warn_only=True)


# ----------------------------------------------------------------------------- rule commands

def cmd_resolve_params(a) -> None:
    params = load_params(a.params_yaml, profile=a.profile)
    written = resolve(params, Path(a.root))
    log.info("profile %s: %d parameter file(s) changed", params.profile, len(written))


def cmd_dag_deps(a) -> int:
    if a.write:
        changed = write_dvc_yaml(Path(a.dvc_yaml))
        log.info("%s: code deps of %d stage(s) rewritten", a.dvc_yaml, len(changed))
        return 0
    if a.check:
        stale = check_dvc_yaml(Path(a.dvc_yaml))
        for name in stale:
            log.error("%s: stage %s: its code deps are not its import closure; run `uvhmr dag-deps --write`",
                      a.dvc_yaml, name)
        return 1 if stale else 0
    for sub in a.subcommands:
        print(f"{sub}:", *code_deps(sub), sep="\n  ")
    return 0


def cmd_dvc_commit(a) -> int:
    return dvc_commit_keeping_times(Path(a.root), a.targets, log=log.info)


def cmd_body_model(a) -> None:
    rp = _rule_params(a)
    bm = rp.body_model
    out = Path(a.out)
    if bm.backend == "anny":
        from uvhmr.body.anny import export_anny  # heavy: torch; only this subcommand needs it
        export_anny(bm.anny_rig, bm.anny_topology, (bm.adult_age_min, bm.adult_age_max), out,
                    Path(a.cache_dir), log=log.info)
    else:
        from uvhmr.body.smpl import export_smpl  # heavy: torch; only this subcommand needs it
        export_smpl(bm, out, log=log.info)


def cmd_uv_assets(a) -> None:
    rp = _rule_params(a)
    from uvhmr.body.model import load_body_model  # heavy: torch; only this subcommand needs it
    from uvhmr.uv.assets import build_uv_assets  # heavy: torch; only this subcommand needs it
    build_uv_assets(load_body_model(a.body), rp.section, Path(a.out), log=log.info)


def cmd_mocap(a) -> None:
    rp = _rule_params(a)
    from uvhmr.data.mocap import run_mocap  # heavy: torch; only this subcommand needs it
    run_mocap(rp, Path(a.body), Path(a.out), log=log.info)


def cmd_dataset(a) -> None:
    if a.split not in SPLITS:      # before anything loads: one line, not run_dataset's traceback
        raise ConfigError(f"uvhmr dataset: --split {a.split}: expected one of {', '.join(SPLITS)}")
    rp = _rule_params(a)
    from uvhmr.data.sources import run_dataset  # heavy: torch; only this subcommand needs it
    run_dataset(rp, Path(a.body), Path(a.uv), Path(a.mocap), a.split, Path(a.out), log=log.info)


def _checkpoints_root(params_path: str) -> Path:
    """results/<profile>: checkpoints go to its checkpoints/ folder, outside every declared output.
    A params file outside a results/<profile>/params tree (run by hand) keeps them beside it."""
    p = Path(params_path).resolve()
    root = next((q.parent for q in p.parents if q.name == "params"), p.parent)
    return root   # checkpoint_dir() adds checkpoints/<rule>-<variant>/<key>


def cmd_train_dmp(a) -> None:
    rp = _rule_params(a)
    from uvhmr.train.dmp import run_train_dmp  # heavy: torch; only this subcommand needs it
    run_train_dmp(rp, Path(a.data), Path(a.uv), Path(a.body), Path(a.out), _checkpoints_root(a.params), log=log.info)


def cmd_dmp_cache(a) -> None:
    rp = _rule_params(a)
    from uvhmr.cache.dmp import run_dmp_cache  # heavy: torch; only this subcommand needs it
    run_dmp_cache(rp, Path(a.model), {"stage2_train": Path(a.train_data), "test": Path(a.test_data)},
                  Path(a.uv), Path(a.out), log=log.info)


def cmd_train_hmr(a) -> None:
    rp = _rule_params(a)
    from uvhmr.train.hmr import run_train_hmr  # heavy: torch; only this subcommand needs it
    run_train_hmr(rp, Path(a.data), Path(a.body), Path(a.out), _checkpoints_root(a.params), log=log.info)


def cmd_train_ik(a) -> None:
    rp = _rule_params(a)
    from uvhmr.train.ik import run_train_ik  # heavy: torch; only this subcommand needs it
    run_train_ik(rp, Path(a.mocap), Path(a.dmp_cache), Path(a.data), Path(a.body), Path(a.out),
                 _checkpoints_root(a.params), log=log.info)


def cmd_ik_cache(a) -> None:
    rp = _rule_params(a)
    from uvhmr.cache.ik import run_ik_cache  # heavy: torch; only this subcommand needs it
    run_ik_cache(rp, Path(a.model), Path(a.dmp_cache), Path(a.body), Path(a.uv), Path(a.out), log=log.info)


def cmd_train_uvi(a) -> None:
    rp = _rule_params(a)
    from uvhmr.train.uvi import run_train_uvi  # heavy: torch; only this subcommand needs it
    run_train_uvi(rp, Path(a.dmp_cache), Path(a.ik_cache), Path(a.data), Path(a.uv), Path(a.body), Path(a.out),
                  _checkpoints_root(a.params), log=log.info)


def cmd_evaluate(a) -> None:
    rp = _rule_params(a)
    from uvhmr.evaluate.run import run_evaluate, target_kind  # heavy: torch; only this subcommand needs it
    inputs = {k: getattr(a, k) for k in ("data", "uv", "body", "model", "dmp_cache", "ik_cache", "mocap")
              if getattr(a, k) is not None}
    run_evaluate(rp, a.target, target_kind(rp, a.target), inputs, Path(a.out), log=log.info)


def cmd_report(a) -> None:
    rp = load_rule_params(a.params)
    from uvhmr.report.tables import run_report  # heavy: torch; only this subcommand needs it
    run_report(rp, Path(a.metrics), Path(a.out), log=log.info, models_dir=Path(a.models) if a.models else None)


def cmd_figures(a) -> None:
    rp = _rule_params(a)
    from uvhmr.report.figures import run_figures  # heavy: torch; only this subcommand needs it
    inputs = {k: getattr(a, k) for k in ("data", "uv", "mocap", "body", "dmp_cache", "ik_model", "ik_cache", "uvi_model")}
    missing = [f"--{k.replace('_', '-')}" for k, v in inputs.items() if v is None]
    if missing:
        raise ConfigError(f"uvhmr figures: missing {', '.join(missing)}")
    run_figures(rp, inputs, Path(a.out), log=log.info)


def cmd_predict(a) -> int:
    return predict_main(a)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", required=True, help="the rule's resolved parameter JSON (results/<profile>/params/...)")
    p.add_argument("--log", help="also write everything this command prints to this file")


RULE_COMMANDS = [
    # name, help, [(flag, help)]
    ("uv-assets", "UV layout, texel lookups at 64/128, A_uv (14/24 parts) and the UV flip map",
     [("--body", "body-model export"), ("--out", "output folder")]),
    ("mocap", "pose + shape + joints for GIK-Net, with the paper's augmentation switches",
     [("--body", "body-model export"), ("--out", "output folder")]),
    ("dataset", "render (or adapt) one split with every dense ground-truth map",
     [("--body", "body-model export"), ("--uv", "uv_assets folder"), ("--mocap", "mocap folder"),
      ("--split", "dmp_train | stage2_train | test"), ("--out", "output folder")]),
    ("train-dmp", "train the dense map prediction module (one variant)",
     [("--data", "dmp_train split"), ("--uv", "uv_assets folder"), ("--body", "body-model export"), ("--out", "model file")]),
    ("train-hmr", "train the HMR-style direct regression baseline",
     [("--data", "dmp_train split"), ("--body", "body-model export"), ("--out", "model file")]),
    ("dmp-cache", "run a DMP variant on stage2_train and test; warp its maps to UV; J_initial",
     [("--model", "DMP model"), ("--train-data", "stage2_train split"), ("--test-data", "test split"),
      ("--uv", "uv_assets folder"), ("--out", "cache folder")]),
    ("train-ik", "train JointRefineNet + GIK-Net (one variant, every seed)",
     [("--mocap", "mocap folder"), ("--dmp-cache", "DMP cache"), ("--data", "stage2_train split (ground truth of the DMP cache)"),
      ("--body", "body-model export"),
      ("--uv", "uv_assets folder"), ("--out", "model folder")]),
    ("ik-cache", "J_refine, the posed mesh's UV_l and UV_j on stage2_train and test",
     [("--model", "IK model folder"), ("--dmp-cache", "DMP cache"), ("--body", "body-model export"),
      ("--uv", "uv_assets folder"), ("--out", "cache folder")]),
    ("train-uvi", "train the UV inpainting module (one variant, every seed)",
     [("--dmp-cache", "DMP cache"), ("--ik-cache", "IK cache"), ("--data", "stage2_train split"),
      ("--uv", "uv_assets folder"), ("--body", "body-model export"), ("--out", "model folder")]),
    ("evaluate", "score one variant, baseline, floor or oracle row on the test split",
     [("--target", "what to score"), ("--data", "test split"), ("--uv", "uv_assets folder"),
      ("--body", "body-model export"), ("--model", "model file or folder"), ("--dmp-cache", "DMP cache"),
      ("--ik-cache", "IK cache"), ("--mocap", "mocap folder"), ("--out", "metrics JSON")]),
    ("report", "ablation tables, DVC metrics, and the data of the DVC plots (training curves, per-joint errors)",
     [("--metrics", "folder of metrics JSONs"),
      ("--models", "models folder: the per-epoch training CSVs beside each model"), ("--out", "reports folder")]),
    ("figures", "the paper's Fig. 3/4/5 analogues from their rules and Fig. 8 (DMP, IK, UVI on test images)",
     [("--data", "test split"), ("--uv", "uv_assets folder"), ("--mocap", "mocap folder"), ("--body", "body-model export"),
      ("--dmp-cache", "DMP-14 cache"), ("--ik-model", "IK-14 model folder"), ("--ik-cache", "IK-14 cache"),
      ("--uvi-model", "UVI-14 model folder"), ("--out", "figures folder (reports/<profile>/figures)")]),
    ("predict", "mesh (.obj), joints (.json) and an overlay (.png) for your own images", []),
]


COMMANDS = {"uv-assets": cmd_uv_assets, "mocap": cmd_mocap, "dataset": cmd_dataset, "train-dmp": cmd_train_dmp,
            "train-hmr": cmd_train_hmr, "dmp-cache": cmd_dmp_cache, "train-ik": cmd_train_ik, "ik-cache": cmd_ik_cache,
            "train-uvi": cmd_train_uvi, "evaluate": cmd_evaluate, "report": cmd_report, "figures": cmd_figures,
            "predict": cmd_predict}


PREDICT_DESCRIPTION = """\
Run the trained DMP -> IK -> UVI pipeline on your own images. Needs the profile's trained models
of params.yaml's `pipeline:` (by default results/<profile>/models/dmp/dmp14.pt, models/ik/ik14/seed0.pt,
models/uvi/uvi14/seed0.pt) and results/<profile>/uv: run the main job (`snakemake --cores 2`) first.

Per image the person is found by --bbox if given, else by OpenCV's HOG people detector (images of
at least 160 px), else the whole image is used (with a warning). A square crop is cut around the
person's box (the box fills 75 % of it, as in the training crops; black outside the image), and
the outputs go to --out:
  <stem>.obj   the mesh in the image's camera frame (metres; x right, y down, z forward), with the
               UV layout as texture coordinates
  <stem>.json  the LSP-14 joints in 3-D (metres) and 2-D (pixels of the original image), the box and
               how it was found, the crop and the cameras
  <stem>.png   the mesh drawn over the image, and a side view
Folders are read one level deep; files that are not readable images are reported and skipped, the
others still processed. Every input is checked before a model loads: images need at least
{min_side} px on each side, at least half of --bbox must lie inside the image, and images above
{max_mp} megapixels are refused. Images larger than {max_side} px on their longer side are
downscaled to {max_side} px when read (bounded memory); the outputs stay in the original's pixels.

predict never replaces a file it did not write: --out must not hold the inputs, and an existing
<stem>.obj/.json/.png there is replaced only if predict wrote it (listed, with its hash, in
--out/.uvhmr-predict.json) or with --overwrite.
Exit code: 0 when every input worked, 1 when some failed, 2 when the models are missing or an
argument is wrong.

The models were trained on synthetic renders of one body model; expect rough fits on real photos."""


def _predict_args(c: argparse.ArgumentParser) -> None:
    c.formatter_class = argparse.RawDescriptionHelpFormatter
    c.description = PREDICT_DESCRIPTION.format(min_side=MIN_SIDE, max_side=MAX_SIDE, max_mp=MAX_PIXELS // 10 ** 6)
    c.add_argument("images", nargs="*", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    c.add_argument("--out", required=True, help="output folder (created if needed)")
    c.add_argument("--profile", default="default", choices=("smoke", "default", "paper"),
                   help="whose trained models to use: results/<profile>/ (default: default)")
    c.add_argument("--results", default="results", help="the DAG's results folder (default: results)")
    c.add_argument("--body", help="body-model export (default: resources/body/<backend of params.yaml>)")
    c.add_argument("--bbox", metavar="x0,y0,x1,y1",
                   help="the person's box in pixels, for every image (skips detection); "
                        "write --bbox=-10,20,200,400 when x0 is negative")
    c.add_argument("--detector", choices=("auto", "hog", "none"), default="auto",
                   help="auto: HOG on images of at least 160 px, the whole image on smaller ones; "
                        "hog: always HOG; none: always the whole image (default: auto)")
    c.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="auto: CUDA when available, else CPU (default: auto)")
    c.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: 16)")
    c.add_argument("--overwrite", action="store_true",
                   help="replace existing output files in --out even if predict did not write them")


DEBUG_HELP = "show the traceback of an error instead of its one-line message (also: UVHMR_DEBUG=1)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("uvhmr")
    except PackageNotFoundError:       # run from a source tree that was never installed
        return "unknown (not installed)"


def _add_debug(c: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand without --debug keeps what `uvhmr --debug COMMAND` set.
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="uvhmr",
        description="Reimplementation of 'The Best of Both Worlds' (DMP -> IK -> UVI) as a reproducible "
                    "Snakemake/DVC workflow. Each subcommand is one rule of the DAG; run the DAG with "
                    "`snakemake --cores 2` or `dvc repro` rather than by hand.")
    p.add_argument("--version", action="version", version=f"uvhmr {_version()}")
    p.add_argument("--debug", action="store_true", default=False, help=DEBUG_HELP)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("resolve-params", help="validate params.yaml and write each rule's resolved parameters",
                       description="Validate params.yaml and write results/<profile>/params/*.json, rewriting only "
                                   "files whose content changes (so only the affected rules rerun).")
    r.add_argument("--params-yaml", default="params.yaml")
    r.add_argument("--profile", choices=("smoke", "default", "paper"), help="overrides params.yaml's `profile`")
    r.add_argument("--root", default=".", help="repository root to write under")
    r.add_argument("--log")
    _add_debug(r)
    r.set_defaults(fn=cmd_resolve_params)

    d = sub.add_parser("dvc-commit", help="record a finished Snakemake run in DVC (dvc commit -f) without "
                                          "making the next snakemake rerun it",
                       description="Run `dvc commit -f [TARGETS]`, then put back the modification time every file "
                                   "under results/, reports/ and resources/ had before: dvc commit relinks outputs "
                                   "from its cache, and Snakemake would take the new times for changed inputs.")
    d.add_argument("targets", nargs="*", help="dvc.yaml stages or outputs to commit (default: all)")
    d.add_argument("--root", default=".", help="repository root (default: .)")
    d.add_argument("--log")
    _add_debug(d)
    d.set_defaults(fn=cmd_dvc_commit)

    g = sub.add_parser("dag-deps", help="the package files each subcommand runs: dvc.yaml's code deps",
                       description="Print the package files (src/uvhmr/...) each `uvhmr` subcommand runs, its import "
                                   "closure computed with ast (uvhmr.code_deps); --write rewrites dvc.yaml's code deps "
                                   "to them, --check exits 1 where they are stale. The Snakemake rules compute the "
                                   "same lists while the Snakefile is parsed.")
    g.add_argument("subcommands", nargs="*", metavar="SUBCOMMAND", help="subcommands to print (e.g. train-uvi)")
    g.add_argument("--dvc-yaml", default="dvc.yaml", help="the DVC pipeline file (default: dvc.yaml)")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps")
    mode.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml's code deps are stale")
    g.add_argument("--log")
    _add_debug(g)
    g.set_defaults(fn=cmd_dag_deps)

    b = sub.add_parser("body-model", help="build the body model once and export its compact data + assets",
                       description="Anny: build once (about 70 s, 2 GB RAM), export model data and assets (mesh, "
                                   "per-corner UVs, mirror maps, LSP-14 and 24-joint sets) and delete anny's "
                                   "0.8 GB build cache. SMPL: read your SMPL files and UV OBJ.")
    _add_common(b)
    b.add_argument("--out", required=True, help="export folder (resources/body/<backend>)")
    b.add_argument("--cache-dir", default="resources/body/.anny-cache", help="anny's temporary build cache")
    _add_debug(b)
    b.set_defaults(fn=cmd_body_model)

    for name, text, args in RULE_COMMANDS:
        c = sub.add_parser(name, help=text, description=text)
        if name == "predict":
            _predict_args(c)
        else:
            _add_common(c)
            for flag, h in args:
                c.add_argument(flag, help=h)
        _add_debug(c)
        c.set_defaults(fn=COMMANDS[name])
    return p


def _is_input_fault(e: BaseException) -> bool:
    """Whether `e` is reported as one line (uvhmr.errors decides, by type)."""
    return one_line(e) is not None


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    _setup_logging(getattr(a, "log", None))
    t0 = time.time()
    try:
        code = a.fn(a) or 0
    except Exception as e:  # noqa: BLE001 - sorted by uvhmr.errors: known faults get one line, bugs a traceback
        fault = None if debug_enabled(getattr(a, "debug", False)) else one_line(e)
        if fault is None:
            raise
        # A corrupt input file, a bad parameter, a full disk: one line naming the culprit (also in --log).
        line, code = fault
        log.error("%s", line)
        return code
    log.info("%s done in %.1f s%s", a.command, time.time() - t0, f" (exit code {code})" if code else "")
    return int(code)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
