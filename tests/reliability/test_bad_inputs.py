"""Bad inputs, each stopped with a clear error naming the file or key (issue #12). Only what the
suite did not test yet; what it already did is listed in docs/reliability.md's table."""
import copy
import errno
import importlib.util
import json
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from uvhmr.config import (BodyModelParams, ConfigError, DmpTrainParams, Resources, RuleParams, RunParams, StageParams,
                          load_params, load_rule_params, parse_params, rule_params)
from reliability_tools import set_key
from uvhmr.data.shards import Shard, ShardError, write_shard

REPO = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((REPO / "params.yaml").read_text())


# ------------------------------------------------------------------------------ params.yaml

_set = set_key


@pytest.mark.parametrize("edit, expected", [
    (_set(["base", "train_dmp", "joints"], 17), "params.yaml: base.train_dmp.joints: expected one of 14, 24, got 17"),
    (_set(["base", "uv_assets", "resolutions"], 64), "params.yaml: base.uv_assets.resolutions: expected a list, got 64"),
    (_set(["base", "train_ik", "seeds"], [0, "one"]), 'params.yaml: base.train_ik.seeds[1]: expected an integer'),
    (_set(["base", "dataset", "fill_range"], [0.5, 1.5]),
     "params.yaml: base.dataset.fill_range: the body cannot fill more than the crop (<= 1), got [0.5, 1.5]"),
    (_set(["base", "mocap", "files"], "/no/such/mocap"),
     'params.yaml: base.mocap.files: expected an existing directory, got "/no/such/mocap"'),
    (_set(["trainig"], {}), "params.yaml: trainig: unknown key (known keys: profile, body_model, variants, pipeline, base, profiles)"),
    (_set(["base", "run"], "fast"), 'params.yaml: base.run: expected a mapping of RunParams keys, got "fast"'),
    (_set(["body_model", "adult_age_min"], 80), "params.yaml: body_model.adult_age_min: expected at most adult_age_max"),
    # Variant names become file names and words of the rules' shell commands.
    (_set(["variants", "train_uvi", "uvi14; touch pwned"], {}), "params.yaml: variants.train_uvi.uvi14; touch pwned: "
                                                                  "expected a variant name of letters, digits and underscores"),
    (_set(["variants", "train_dmp", "../dmp14"], {}), "params.yaml: variants.train_dmp.../dmp14: expected a variant name"),
])
def test_more_bad_params_name_the_key(edit, expected):
    raw = copy.deepcopy(RAW)
    edit(raw)
    with pytest.raises(ConfigError) as e:
        parse_params(raw, "smoke")
    assert str(e.value).startswith(expected) and "\n" not in str(e.value), str(e.value)


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("profile: smoke\nbase:\n  train_dmp: {lr: 0.1\n  mocap: {}\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(f))}: line \d+: not valid YAML"):
        load_params(f)


def test_unknown_config_override_names_it(tmp_path, monkeypatch, capsys):
    from uvhmr.workflow import snakemake_setup
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        snakemake_setup({"profile": "smoke", "profil": "default"})
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == ("uvhmr: --config: profil: unknown key (only profile=smoke|default|paper "
                                               "is read from --config; set every other parameter in params.yaml)")


def test_hand_edited_rule_params_file_names_file_and_key(tmp_path):
    from uvhmr.config import rule_params_dict
    rp = rule_params(parse_params(copy.deepcopy(RAW), "smoke"), "train_dmp", "dmp14")
    d = rule_params_dict(rp)
    d["section"]["batch_size"] = 0
    f = tmp_path / "dmp14.json"
    f.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(f))}: section\.batch_size: expected an integer >= 1, got 0$"):
        load_rule_params(f)


# ------------------------------------------------------------------------------ shards

def test_files_that_are_not_shards_are_named(tmp_path):
    write_shard(tmp_path / "good.shard", {"a": np.arange(10.0)})
    (tmp_path / "png.shard").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (tmp_path / "empty.shard").write_bytes(b"")
    with pytest.raises(ShardError, match=r"png\.shard: not a uvhmr shard \(bad magic bytes\); rebuild it"):
        Shard(tmp_path / "png.shard")
    with pytest.raises(ShardError, match=r"empty\.shard: truncated: 0 bytes"):
        Shard(tmp_path / "empty.shard")
    raw = (tmp_path / "good.shard").read_bytes()
    (tmp_path / "v9.shard").write_bytes(raw.replace(b'"version":1', b'"version":9'))
    with pytest.raises(ShardError, match=r"v9\.shard: shard format version 9, this uvhmr reads version 1"):
        Shard(tmp_path / "v9.shard")


def _flip_a_data_byte(split: Path, tmp: Path) -> Path:
    """A copy of the split with one bit flipped in the middle of its first shard's first array."""
    bad = tmp / "corrupt split"
    shutil.copytree(split, bad)
    f = bad / "shard-00000.shard"
    sh = Shard(f)
    meta = next(iter(sh.header["arrays"].values()))
    raw = bytearray(f.read_bytes())
    raw[sh._data + meta["offset"] + meta["nbytes"] // 2] ^= 0x01
    f.write_bytes(bytes(raw))
    return bad


def test_dataset_reader_checks_crcs_so_a_flipped_bit_is_not_read_as_data(tiny_split, tmp_path):
    from uvhmr.data.dataset import SampleDataset
    bad = _flip_a_data_byte(tiny_split, tmp_path)
    with pytest.raises(ShardError, match=r"corrupt split/shard-00000\.shard: corrupt: array '\w+' fails its CRC-32"):
        SampleDataset(bad)
    assert len(SampleDataset(tiny_split)) == 12               # the intact split still reads (CRCs checked once)


def test_a_rule_on_a_corrupt_shard_stops_with_one_line_in_its_log(tiny_split, tiny_uv_dir, anny_dir, tmp_path):
    bad = _flip_a_data_byte(tiny_split, tmp_path)
    rp = RuleParams("smoke", "train_dmp", "dmp14", RunParams(device="cpu"), BodyModelParams(),
                    DmpTrainParams(epochs=1, batch_size=4))
    from uvhmr.config import rule_params_dict
    params = tmp_path / "dmp14.json"
    params.write_text(json.dumps(rule_params_dict(rp)))
    log = tmp_path / "train_dmp.log"
    r = subprocess.run([sys.executable, "-m", "uvhmr.cli", "train-dmp", "--params", str(params), "--data", str(bad),
                        "--uv", str(tiny_uv_dir), "--body", str(anny_dir), "--out", str(tmp_path / "dmp14.pt"),
                        "--log", str(log)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    (line,) = [l for l in log.read_text().splitlines() if "ShardError" in l]
    assert f"ShardError: {bad}/shard-00000.shard: corrupt: array" in line and "rebuild it" in line
    assert not (tmp_path / "dmp14.pt").exists()


# ------------------------------------------------------------------------------ images

def test_an_image_that_is_not_an_image_is_named(tmp_path):
    import cv2

    from uvhmr.data.sources.spin_npz import SpinFormatError, _read_image
    img = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "good.jpg"), img)
    assert _read_image(tmp_path / "good.jpg").shape == (90, 120, 3)
    jpg = (tmp_path / "good.jpg").read_bytes()
    cv2.imwrite(str(tmp_path / "good.png"), img)
    png = (tmp_path / "good.png").read_bytes()
    cases = {"text.jpg": b"<html>404 Not Found</html>", "empty.png": b"", "cut.jpg": jpg[: len(jpg) * 2 // 3],
             "cut.png": png[: len(png) // 2]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SpinFormatError, match=rf"^{re.escape(str(tmp_path / name))}: (not a readable image|truncated JPEG)"):
            _read_image(tmp_path / name)
    with pytest.raises(SpinFormatError, match=r"missing\.jpg: missing or unreadable image"):
        _read_image(tmp_path / "missing.jpg")


# ------------------------------------------------------------------------------ model files, checkpoints

class NotWeights:
    """A class: a pickle holding one is refused by weights_only loading."""


def test_model_files_of_another_kind_architecture_or_variant_are_named(tmp_path):
    from uvhmr.models.dmp import DMPNet
    from uvhmr.models.dmp import load_dmp
    from uvhmr.models.hmr import load_hmr
    from uvhmr.models.ik import load_ik
    from uvhmr.models.uvi import load_uvi
    net = DMPNet("resnet18", 2, parts=14)
    cfg = {"backbone": "resnet18", "out_stride": 2, "joints": 14, "image_size": 48, "variant": "dmp14"}
    torch.save({"state_dict": net.state_dict(), "config": cfg}, tmp_path / "dmp14.pt")
    assert load_dmp(tmp_path / "dmp14.pt")[1] == cfg
    files = {
        "dmp24.pt": {"state_dict": net.state_dict(), "config": {**cfg, "joints": 24, "variant": "dmp24"}},   # 14-part weights
        "resnet34.pt": {"state_dict": net.state_dict(), "config": {**cfg, "backbone": "resnet34"}},
        "ik.pt": {"state_dict": {"w": torch.zeros(3)}, "config": {"num_bones": 36, "shape_dim": 10}},
        "pickled_class.pt": {"state_dict": NotWeights(), "config": cfg},
    }
    for name, blob in files.items():
        torch.save(blob, tmp_path / name)
    (tmp_path / "text.pt").write_text("not a model")
    for name in (*files, "text.pt"):
        with pytest.raises(ValueError, match=rf"^{re.escape(str(tmp_path / name))}: not a DMP model file of this uvhmr \(\w+: .+\)$"):
            load_dmp(tmp_path / name)
    # A DMP file where an IK, UVI or HMR model belongs.
    for load, kind in ((load_ik, "IK"), (load_uvi, "UVI"), (lambda p: load_hmr(p, None), "HMR")):
        with pytest.raises(ValueError, match=rf"^{re.escape(str(tmp_path / 'dmp14.pt'))}: not an? {kind} model file of this uvhmr \(KeyError"):
            load(tmp_path / "dmp14.pt")


def test_training_checkpoint_of_another_architecture_is_named(tmp_path):
    from uvhmr.train.checkpoint import CheckpointError, resumable_loop

    def init(width):
        def make():
            m = torch.nn.Linear(4, width)
            return {"model": m, "optimizer": torch.optim.Adam(m.parameters())}
        return make

    resumable_loop(tmp_path, 2, init(3), lambda state, step: None)
    with pytest.raises(CheckpointError, match=rf"^checkpoint {re.escape(str(tmp_path / 'step-00000002.pt'))}: its 'model' does not fit "
                                              r"this run's Linear \(another architecture or variant\? .*size mismatch"):
        resumable_loop(tmp_path, 3, init(5), lambda state, step: None)


def test_variants_never_share_checkpoints():
    """A variant's checkpoints live under its own name and parameter key: another variant (or any
    parameter change) starts from scratch rather than resuming from them."""
    from uvhmr.config import to_dict
    from uvhmr.train.checkpoint import checkpoint_dir, hash_inputs
    params = parse_params(copy.deepcopy(RAW), "smoke")
    dirs = set()
    for v in params.variants.train_dmp:
        rp = rule_params(params, "train_dmp", v)
        key = hash_inputs({"section": to_dict(rp.section), "run": to_dict(rp.run)}, [])
        dirs.add(checkpoint_dir("results/smoke", "train_dmp", v, key))
    assert len(dirs) == len(params.variants.train_dmp) == len({d.parent for d in dirs}) == len({d.name for d in dirs})


# ------------------------------------------------------------------------------ SMPL files

def _smpl_fixture():
    spec = importlib.util.spec_from_file_location("_smpl_fixture", REPO / "tests/body/test_smpl.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_smpl_files_of_the_wrong_kind_are_named(tmp_path):
    from uvhmr.body.smpl import export_smpl
    from uvhmr.config import check_smpl_files
    h = _smpl_fixture()
    data, _, face_uv, head_top = h.synthetic_smpl()
    h.write_uv_obj(tmp_path / "uv.obj", data, face_uv, np.random.default_rng(1))

    def params(folder, **kw):
        return BodyModelParams(backend="smpl", smpl_dir=str(folder), smpl_uv_obj=str(tmp_path / "uv.obj"),
                               smpl_head_top_vertex=head_top, **kw)

    smplh = dict(data, kintree_table=np.array([list(range(-1, 51)), list(range(52))]))      # SMPL+H's 52 joints
    kinds = {"text": b"<html>login required</html>", "list": pickle.dumps([1, 2, 3]),
             "no_weights": pickle.dumps({k: v for k, v in data.items() if k != "weights"}), "smplh": pickle.dumps(smplh)}
    for name, content in kinds.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "SMPL_NEUTRAL.pkl").write_bytes(content)
        pkl = (tmp_path / name / "SMPL_NEUTRAL.pkl").resolve()
        with pytest.raises((RuntimeError, ValueError), match=rf"^{re.escape(str(pkl))}: ") as e:
            export_smpl(params(tmp_path / name), tmp_path / f"out-{name}", log=lambda *_: None)
        assert "\n" not in str(e.value), name
        assert not (tmp_path / f"out-{name}").exists()
    # The file named is a folder, the folder a file.
    (tmp_path / "dir_pkl" / "SMPL_NEUTRAL.pkl").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"body_model\.smpl_dir: .*\(it has no SMPL_NEUTRAL\.pkl\)"):
        check_smpl_files(params(tmp_path / "dir_pkl"), "params.yaml")
    with pytest.raises(ConfigError, match=r"body_model\.smpl_dir: .*\(no such folder\)"):
        check_smpl_files(params(tmp_path / "uv.obj"), "params.yaml")


# ------------------------------------------------------------------------------ NaN, disk full

def _dmp_rule(epochs, threads=1):
    sec = DmpTrainParams(epochs=epochs, batch_size=4, lr=1e-3, val_fraction=0.2, resources=Resources(threads=threads))
    return RuleParams("smoke", "train_dmp", "dmp14", RunParams(seed=0, device="cpu"), BodyModelParams(), sec)


def _train(monkeypatch, tiny_split, tiny_uv_dir, anny_dir, root, epochs, losses=None, log=None):
    from uvhmr.train import dmp as train_dmp
    torch.set_num_threads(1)
    if losses is not None:
        monkeypatch.setattr(train_dmp, "dmp_losses", losses)
    train_dmp.run_train_dmp(_dmp_rule(epochs), tiny_split, tiny_uv_dir, anny_dir, root / "models/dmp14.pt", root,
                            log=log or (lambda *a: None))
    return root / "models/dmp14.pt"


def _faulty_losses(at_call, fault):
    from uvhmr.train import dmp as train_dmp
    real, calls = train_dmp.dmp_losses, [0]

    def losses(out, *a, **k):
        calls[0] += 1
        terms = real(out, *a, **k)
        if calls[0] == at_call:
            terms["total"] = fault(terms["total"], out)
        return terms
    return losses


def test_nan_loss_stops_naming_the_step_and_the_last_good_checkpoint(monkeypatch, tiny_split, tiny_uv_dir, anny_dir,
                                                                     tmp_path):
    from uvhmr.train.trainer import NonFiniteLoss
    # 10 training images, batch 4: 3 steps per epoch; call 5 is epoch 2's second step (step 1).
    nan = _faulty_losses(5, lambda total, out: total * float("nan"))
    with pytest.raises(NonFiniteLoss) as e:
        _train(monkeypatch, tiny_split, tiny_uv_dir, anny_dir, tmp_path, 2, nan)
    ckpt = next((tmp_path / "checkpoints/train_dmp-dmp14").iterdir())
    assert str(e.value) == (f"loss became nan at epoch 2, step 1; stopped without saving; last good checkpoint: "
                            f"{ckpt / 'step-00000001.pt'} (after epoch 1; rerunning resumes from it)")
    assert not (tmp_path / "models/dmp14.pt").exists()
    assert sorted(p.name for p in ckpt.iterdir()) == ["step-00000001.pt"]


def test_nan_gradient_behind_a_finite_loss_never_reaches_a_checkpoint(monkeypatch, tiny_split, tiny_uv_dir, anny_dir,
                                                                      tmp_path):
    """An exploding backward pass on an epoch's last step: the loss printed is finite, the weights
    are not. The epoch's checkpoint is refused, so a rerun cannot resume from NaN weights."""
    from uvhmr.train.trainer import NonFiniteLoss
    # sqrt'(0) = inf: a zero added to the loss whose gradient is 0 * inf = NaN for every weight.
    nan_grad = _faulty_losses(3, lambda total, out: total + torch.sqrt(out["mask"].sum() * 0.0))
    with pytest.raises(NonFiniteLoss, match=r"^parameters became non-finite in epoch 1 \(\d+ tensors, e\.g\. [\w.]+\); "
                                            r"stopped without saving; last good checkpoint: none yet"):
        _train(monkeypatch, tiny_split, tiny_uv_dir, anny_dir, tmp_path, 2, nan_grad)
    assert not list((tmp_path / "checkpoints").rglob("*.pt"))
    assert not (tmp_path / "models/dmp14.pt").exists()


def _full_disk_after(nbytes):
    """A `write` that fails with ENOSPC once nbytes are written (what a full disk does)."""
    state = {"left": nbytes}

    def write(f, data):
        n = len(memoryview(data).cast("B"))
        if n > state["left"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        state["left"] -= n
        return f.write(data)
    return write


def test_disk_full_while_writing_a_shard_keeps_the_previous_one(tmp_path, monkeypatch):
    import uvhmr.data.shards as shards
    target = tmp_path / "shard-00000.shard"
    write_shard(target, {"a": np.arange(1000.0)})
    before = target.read_bytes()
    fail = _full_disk_after(2000)

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            return fail(self.f, data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    def full_disk_open(file, mode="r", *a, **k):
        f = open(file, mode, *a, **k)
        return FullDisk(f) if "w" in mode else f

    monkeypatch.setattr(shards, "open", full_disk_open, raising=False)
    with pytest.raises(OSError) as e:
        write_shard(target, {"a": np.arange(1000.0) + 1})
    assert e.value.errno == errno.ENOSPC
    assert str(e.value).startswith(f"[Errno 28] writing {target} failed: No space left on device")
    assert target.read_bytes() == before and Shard(target, verify=True)["a"][1] == 1.0
    assert [p.name for p in tmp_path.iterdir()] == [target.name]           # no temporary left


def test_disk_full_while_saving_a_model_keeps_the_previous_one(monkeypatch, tiny_split, tiny_uv_dir, anny_dir, tmp_path):
    out = tmp_path / "models/dmp14.pt"
    out.parent.mkdir(parents=True)
    out.write_bytes(b"the previous model")
    real_save = torch.save

    def save(obj, f, *a, **k):
        if Path(f).name.startswith(".dmp14.pt."):             # the model, not the checkpoints
            Path(f).write_bytes(b"half a model")
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(OSError, match=rf"^\[Errno 28\] writing {re.escape(str(out))} failed: No space left on device"):
        _train(monkeypatch, tiny_split, tiny_uv_dir, anny_dir, tmp_path, 1)
    assert out.read_bytes() == b"the previous model"
    assert sorted(p.name for p in out.parent.iterdir()) == ["dmp14.csv", "dmp14.pt"]
    # The epoch was checkpointed before the save failed: the rerun only saves.
    monkeypatch.setattr(torch, "save", real_save)
    lines = []
    _train(monkeypatch, tiny_split, tiny_uv_dir, anny_dir, tmp_path, 1, log=lines.append)
    assert any(l.startswith("resuming from the epoch-1 checkpoint") for l in lines), lines
    assert not any(l.startswith("epoch 1/1") for l in lines)
    assert torch.load(out, weights_only=True)["config"]["variant"] == "dmp14"

    # ... and a cache folder: the write of its arrays fails; the previous cache stays whole.
    from uvhmr.cache import dmp as dmp_cache
    cache = tmp_path / "cache/dmp14"
    (cache / "test").mkdir(parents=True)
    (cache / "test/meta.json").write_text("the previous cache")

    def close_fails(directory, arrays, meta):
        raise OSError(errno.ENOSPC, "No space left on device", str(directory / "uv_feat.npy"))

    monkeypatch.setattr(dmp_cache, "close_split_arrays", close_fails)
    rp = RuleParams("smoke", "dmp_cache", None, RunParams(device="cpu"), BodyModelParams(), StageParams(batch_size=8))
    with pytest.raises(OSError, match=rf"^\[Errno 28\] writing {re.escape(str(cache))} failed: No space left on device \(.*uv_feat\.npy\)"):
        dmp_cache.run_dmp_cache(rp, out, {"test": tiny_split}, tiny_uv_dir, cache, log=lambda *a: None)
    assert (cache / "test/meta.json").read_text() == "the previous cache"
    assert sorted(p.name for p in cache.parent.iterdir()) == ["dmp14"]


def test_the_cli_reports_a_full_disk_in_one_line():
    from uvhmr.cli import _is_input_fault
    assert _is_input_fault(OSError(errno.ENOSPC, "No space left on device"))
    assert _is_input_fault(ShardError("x.shard: truncated"))
    assert not _is_input_fault(OSError(errno.EACCES, "Permission denied"))
    assert not _is_input_fault(KeyError("a bug"))
