"""kill -9 of single rule commands at exact moments, then a plain rerun (issue #12).

Each test SIGKILLs a real `uvhmr` rule command (sigkill_at.py: no cleanup code runs) and checks
that (1) the declared output does not exist at all: no half-written file or folder under its name;
(2) rerunning the same command completes; (3) the result equals the uninterrupted one byte for byte
(the shared smoke run's output, or a reference run beside it), and a killed training run resumed
from its last checkpoint. (3) also shows the rules are deterministic on the CPU: a rule rerun from
scratch in another folder gives the smoke run's bytes (seeds from `run.seed`, torch threads =
the rule's `resources.threads`, deterministic kernels when `run.deterministic`).
"""
import csv
import json
import shlex
import subprocess
import sys

import pytest
import torch

from reliability_tools import LAY, assert_same_tree, copy_of_smoke_run, temporaries, uvhmr
from uvhmr.config import BodyModelParams, DmpTrainParams, Resources, RuleParams, RunParams, rule_params_dict
from uvhmr.workflow import evaluate_inputs, flags

pytestmark = pytest.mark.slow


def _ok(r):
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]


def _killed(r):
    assert r.returncode == -9, f"expected SIGKILL, got {r.returncode}: {(r.stdout + r.stderr)[-3000:]}"


def test_dataset_killed_while_writing_a_shard(smoke_run, tmp_path):
    """The dataset rule dies halfway through writing its second shard."""
    smoke, r, _ = smoke_run
    _ok(r)
    d = copy_of_smoke_run(smoke, tmp_path / "copy with space", [LAY.params("dataset"), LAY.uv, LAY.mocap])
    out = LAY.data("dmp_train")
    args = ["dataset", "--params", LAY.params("dataset"), "--body", LAY.body, "--uv", LAY.uv, "--mocap", LAY.mocap,
            "--split", "dmp_train", "--out", out, "--log", LAY.log("dataset", "dmp_train")]
    _killed(uvhmr(d, args, kill_at="write:uvhmr.data.shards:2:4096"))
    parent = (d / out).parent
    assert not (d / out).exists()                                   # no half-made split under its name
    (left,) = temporaries(parent)                                   # what the killed job left: its temp folder
    inside = sorted(p.name for p in (parent / left).iterdir())
    assert inside[1] == "shard-00000.shard" and inside[0].startswith(".shard-00001.shard.")
    assert (parent / left / inside[0]).stat().st_size == 4096      # really killed mid-write

    _ok(uvhmr(d, args))
    assert temporaries(parent) == []                                # the rerun cleaned up after it
    assert_same_tree(d / out, smoke / out)                          # every shard, index.json, figure


def test_dmp_cache_killed_mid_cache_then_metrics_equal(smoke_run, tmp_path):
    """dmp_cache dies after its stage2_train split, while caching the test split; rerun, then
    evaluate: the cache and the metrics JSON equal the smoke run's."""
    smoke, r, _ = smoke_run
    _ok(r)
    d = copy_of_smoke_run(smoke, tmp_path / "copy", [
        LAY.params("dmp_cache"), LAY.params("evaluate", "dmp14"), LAY.uv, LAY.data("stage2_train"), LAY.data("test"),
        LAY.dmp_model("dmp14")])
    out = LAY.dmp_cache("dmp14")
    args = ["dmp-cache", "--params", LAY.params("dmp_cache"), "--model", LAY.dmp_model("dmp14"),
            "--train-data", LAY.data("stage2_train"), "--test-data", LAY.data("test"), "--uv", LAY.uv,
            "--out", out, "--log", LAY.log("dmp_cache", "dmp14")]
    _killed(uvhmr(d, args, kill_at="call:uvhmr.cache.dmp:dmp_rows:2"))   # batch 1: stage2_train; 2: test
    parent = (d / out).parent
    assert not (d / out).exists()
    (left,) = temporaries(parent)
    assert (parent / left / "stage2_train/meta.json").is_file() and not (parent / left / "test/meta.json").exists()

    _ok(uvhmr(d, args))
    assert temporaries(parent) == []
    assert_same_tree(d / out, smoke / out)

    from uvhmr.config import load_params
    params = load_params(smoke / "params.yaml", profile="smoke")
    ev = ["evaluate", "--params", LAY.params("evaluate", "dmp14"), "--target", "dmp14"]
    ev += shlex.split(flags(evaluate_inputs(LAY, params, "dmp14")))
    ev += ["--out", LAY.metrics("dmp14"), "--log", LAY.log("evaluate", "dmp14")]
    _ok(uvhmr(d, ev))
    assert (d / LAY.metrics("dmp14")).read_bytes() == (smoke / LAY.metrics("dmp14")).read_bytes()


def _tiny_dmp_params(root):
    """train_dmp's resolved parameters for the tiny split, 2 epochs, 1 thread, under
    root/results/tiny/params/ (so checkpoints go to root/results/tiny/checkpoints/)."""
    sec = DmpTrainParams(epochs=2, batch_size=4, lr=1e-3, val_fraction=0.2, lr_schedule="cosine",
                         resources=Resources(threads=1))
    rp = RuleParams("smoke", "train_dmp", "dmp14", RunParams(seed=0, device="cpu"), BodyModelParams(), sec)
    p = root / "results/tiny/params/train_dmp/dmp14.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps(rule_params_dict(rp), indent=2))
    return p


def _losses(csv_path):
    """The per-epoch losses of a training CSV (not its timings)."""
    with open(csv_path) as f:
        return [{k: v for k, v in row.items() if k.startswith(("loss", "val", "epoch"))} for row in csv.DictReader(f)]


def test_train_dmp_killed_mid_epoch_resumes_from_its_checkpoint(tiny_split, tiny_uv_dir, anny_dir, tmp_path):
    """2 epochs of 3 steps; SIGKILL at the second step of epoch 2 (one optimizer step after the
    epoch-1 checkpoint). The rerun says it resumes from the epoch-1 checkpoint and ends with the
    uninterrupted run's weights, bit for bit."""
    from reliability_tools import KILLER

    def cmd(root, kill_at=None):
        args = ["train-dmp", "--params", str(root / "results/tiny/params/train_dmp/dmp14.json"),
                "--data", str(tiny_split), "--uv", str(tiny_uv_dir), "--body", str(anny_dir),
                "--out", str(root / "models/dmp14.pt"), "--log", str(root / "train_dmp.log")]
        head = [sys.executable, "-m", "uvhmr.cli"] if kill_at is None else [sys.executable, str(KILLER), kill_at, "--"]
        return head + args

    ref_root, root = tmp_path / "reference", tmp_path / "killed run"
    for r in (ref_root, root):
        _tiny_dmp_params(r)
    ref_out, out = ref_root / "models/dmp14.pt", root / "models/dmp14.pt"
    # The uninterrupted reference and the run that dies run side by side (one thread each).
    ref_output = open(tmp_path / "reference.out", "w")
    ref = subprocess.Popen(cmd(ref_root), stdout=ref_output, stderr=subprocess.STDOUT)
    _killed(subprocess.run(cmd(root, "call:uvhmr.train.dmp:dmp_losses:5"), capture_output=True, text=True, timeout=600))
    assert not out.exists() and not any(p.name.startswith(".dmp14.pt.") for p in out.parent.glob(".*"))
    (ckpt,) = (root / "results/tiny/checkpoints/train_dmp-dmp14").iterdir()
    assert sorted(p.name for p in ckpt.iterdir()) == ["step-00000001.pt"]
    log = (root / "train_dmp.log").read_text()
    assert "epoch 1/2" in log and "epoch 2/2" not in log

    _ok(subprocess.run(cmd(root), capture_output=True, text=True, timeout=600))
    log = (root / "train_dmp.log").read_text()
    assert f"resuming from the epoch-1 checkpoint in {ckpt}" in log
    assert "epoch 1/2" not in log and "epoch 2/2" in log            # epoch 1 was not trained again
    assert ref.wait(timeout=600) == 0, (tmp_path / "reference.out").read_text()[-3000:]
    ref_output.close()

    a = torch.load(ref_out, weights_only=True)
    b = torch.load(out, weights_only=True)
    assert a["config"] == b["config"] and a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert _losses(ref_out.with_suffix(".csv")) == _losses(out.with_suffix(".csv"))
