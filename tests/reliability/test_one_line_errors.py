"""Issue #22: nothing the user had is lost, and every bad input ends in one line naming the culprit
(no traceback), with an exit code that says it failed. Each CLI case runs the real command in a
subprocess and hashes the user's folder before and after."""
import copy
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from conftest import venv_env
from reliability_tools import set_key
from uvhmr import predict_cli as P
from uvhmr.config import ConfigError, parse_params, rule_params, rule_params_dict
from uvhmr.errors import AssetError, InputError
from uvhmr.faults import one_line
from uvhmr.io import sha256

REPO = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def folder_hash(path: Path) -> dict[str, str]:
    """Every file under `path` (hidden ones too) -> its SHA-256."""
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(path).rglob("*")) if p.is_file()}


def uvhmr(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "uvhmr.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**venv_env(), **(env or {})})


def the_line(r: subprocess.CompletedProcess, after_progress: bool = False) -> str:
    """The one line the command printed (stderr, where the log goes); fails on a traceback or more
    lines (after_progress: the last line, the lines before it being the command's progress log)."""
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 or (after_progress and lines), lines
    return lines[-1].split(" uvhmr: ", 1)[-1]            # without the log's time stamp


def png(path: Path, w: int, h: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))
    return path


@pytest.fixture
def photos(tmp_path) -> Path:
    d = tmp_path / "my photos"
    png(d / "photo.png", 256, 256)
    png(d / "other.png", 64, 96)
    return d


# ------------------------------------------------------------------------------ predict: the user's files

def test_predict_out_equal_to_the_input_folder_leaves_every_input_byte_identical(photos, tmp_path):
    before = folder_hash(photos)
    r = uvhmr("predict", photos, "--out", photos, "--results", tmp_path / "no results", cwd=tmp_path)
    assert r.returncode == 2
    assert the_line(r) == (f"uvhmr predict: --out {photos} holds the input other.png; predict never writes beside "
                           "your images: choose another output folder")
    assert folder_hash(photos) == before


def test_predict_out_naming_an_existing_file(photos, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine\n")
    before = folder_hash(tmp_path)
    r = uvhmr("predict", photos, "--out", f, cwd=tmp_path)
    assert r.returncode == 2
    assert the_line(r) == f"uvhmr predict: --out {f}: is an existing file; expected a folder (created if needed)"
    assert folder_hash(tmp_path) == before


def test_predict_never_replaces_an_output_it_did_not_write(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.png").write_bytes(b"the user's own photo.png")
    before = folder_hash(tmp_path)
    r = uvhmr("predict", photos, "--out", out, "--results", tmp_path / "no results", cwd=tmp_path)
    assert r.returncode == 2
    assert the_line(r) == (f"uvhmr predict: {out / 'photo.png'} exists and was not written by uvhmr predict (or was "
                           "changed since); choose another --out, move it away, or pass --overwrite")
    assert folder_hash(tmp_path) == before
    # With --overwrite the check passes: the run stops at the next one, the missing models.
    r = uvhmr("predict", photos, "--out", out, "--results", tmp_path / "no results", "--overwrite", cwd=tmp_path)
    assert r.returncode == 2 and "trained models are missing" in the_line(r)


def test_outputs_predict_wrote_are_replaced_and_changed_ones_are_not(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.obj").write_text("v 0 0 0\n")
    P._record(out, {"a.obj": sha256(out / "a.obj")})
    P.check_out(out, [tmp_path / "a.png"], ["a.obj", "a.json", "a.png"], overwrite=False)       # predict's own: fine
    (out / "a.obj").write_text("v 1 1 1\n")                                                     # edited by the user
    with pytest.raises(ConfigError, match=r"a\.obj exists and was not written by uvhmr predict \(or was changed since\)"):
        P.check_out(out, [tmp_path / "a.png"], ["a.obj", "a.json", "a.png"], overwrite=False)


# ------------------------------------------------------------------------------ predict: inputs, before any model loads

@pytest.mark.parametrize("size, why", [
    ((1, 1), "1x1 px image: predict needs at least 32 px on each side"),
    ((10, 3000), "10x3000 px image: predict needs at least 32 px on each side"),
])
def test_predict_refuses_too_small_images(tmp_path, size, why):
    f = png(tmp_path / "in" / "tiny.png", *size)
    before = folder_hash(tmp_path)
    r = uvhmr("predict", f, "--out", tmp_path / "out", cwd=tmp_path)
    assert r.returncode == 1
    assert the_line(r) == f"uvhmr predict: {f}: {why}"
    assert folder_hash(tmp_path) == before and not (tmp_path / "out").exists()


def test_predict_refuses_a_box_outside_the_image(tmp_path):
    f = png(tmp_path / "in" / "photo.png", 256, 256)
    before = folder_hash(tmp_path)
    r = uvhmr("predict", f, "--out", tmp_path / "out", "--bbox", "5000,5000,6000,7000", cwd=tmp_path)
    assert r.returncode == 1
    assert the_line(r) == (f"uvhmr predict: {f}: --bbox 5000,5000,6000,7000 lies outside this 256x256 px image "
                           "(0% of the box is inside, at least 50% must be)")
    assert folder_hash(tmp_path) == before and not (tmp_path / "out").exists()


def test_predict_on_an_empty_folder_fails(tmp_path):
    (tmp_path / "empty").mkdir()
    r = uvhmr("predict", tmp_path / "empty", "--out", tmp_path / "out", cwd=tmp_path)
    assert r.returncode == 2
    assert the_line(r) == (f"uvhmr predict: no input files in {tmp_path / 'empty'} "
                           "(folders are read one level deep; hidden files are skipped)")
    assert not (tmp_path / "out").exists()


def test_predict_body_pointing_at_an_empty_folder_names_body(photos, tmp_path):
    (tmp_path / "body").mkdir()
    before = folder_hash(tmp_path)
    r = uvhmr("predict", photos, "--out", tmp_path / "out", "--body", tmp_path / "body", cwd=tmp_path)
    assert r.returncode == 2
    assert the_line(r) == (f"uvhmr predict: --body {tmp_path / 'body'}: expected a body-model export "
                           "(resources/body/<backend>, written by the workflow's body_model rule), got no assets.npz in it")
    assert folder_hash(tmp_path) == before


def test_large_images_are_downscaled_on_load(tmp_path):
    for name, (w, h) in (("wide.png", (4400, 300)), ("tall.jpg", (200, 9000))):
        f = tmp_path / name
        cv2.imwrite(str(f), np.full((h, w, 3), 128, np.uint8))
        assert P.image_size(f) == (w, h) and P.check_image(f, None) == (w, h)
        im = P.read_image(f, P.MAX_SIDE)
        assert max(im.shape[:2]) == P.MAX_SIDE
        assert im.shape[1] / im.shape[0] == pytest.approx(w / h, rel=0.02)
    assert P.read_image(tmp_path / "wide.png").shape == (300, 4400, 3)       # no limit asked: the full image


def test_predict_help_states_the_limits():
    r = subprocess.run([sys.executable, "-m", "uvhmr.cli", "predict", "--help"], capture_output=True, text=True, timeout=60)
    text = " ".join(r.stdout.split())
    assert f"downscaled to {P.MAX_SIDE} px when read" in text and f"at least {P.MIN_SIDE} px on each side" in text
    assert "--overwrite" in text


# ------------------------------------------------------------------------------ other commands

def test_truncated_uv_assets_and_body_export_name_the_file(tmp_path):
    from uvhmr.body.model import load_body_model
    from uvhmr.uv.assets import load_uv_assets
    for d, name, load in ((tmp_path / "uv", "uv_assets.npz", load_uv_assets), (tmp_path / "body", "assets.npz", load_body_model)):
        d.mkdir()
        np.savez(d / name, a=np.arange(10000))
        raw = (d / name).read_bytes()
        (d / name).write_bytes(raw[: len(raw) // 2])
        with pytest.raises(AssetError) as e:
            load(d)
        line, code = one_line(e.value)
        assert line.startswith(f"AssetError: {d / name}: not a readable .npz (truncated or corrupt: BadZipFile") and code == 1
        assert "rerun the workflow's" in line and "\n" not in line


def _rule_json(tmp_path: Path, rule: str, raw=None) -> Path:
    p = tmp_path / f"{rule}.json"
    p.write_text(json.dumps(rule_params_dict(rule_params(parse_params(raw or copy.deepcopy(RAW), "smoke"), rule))))
    return p


def test_dataset_with_an_unknown_split(tmp_path):
    r = uvhmr("dataset", "--params", tmp_path / "none.json", "--split", "nosuch", "--out", tmp_path / "out", cwd=tmp_path)
    assert r.returncode == 2
    assert the_line(r) == "uvhmr dataset: --split nosuch: expected one of dmp_train, stage2_train, test"
    assert list(tmp_path.iterdir()) == []


def test_dataset_with_an_empty_mocap_folder(tmp_path):
    params = _rule_json(tmp_path, "dataset")
    (tmp_path / "mocap").mkdir()
    before = folder_hash(tmp_path)
    r = uvhmr("dataset", "--params", params, "--body", tmp_path / "body", "--uv", tmp_path / "uv", "--mocap",
              tmp_path / "mocap", "--split", "test", "--out", tmp_path / "out", cwd=tmp_path)
    assert r.returncode == 1
    assert the_line(r) == (f"MocapFormatError: {tmp_path / 'mocap' / 'manifest.json'}: no mocap manifest here; "
                           "run the workflow's mocap rule")
    assert folder_hash(tmp_path) == before and not (tmp_path / "out").exists()


def test_body_model_with_a_smpl_file_that_is_not_a_pickle(tmp_path):
    (tmp_path / "smpl").mkdir()
    (tmp_path / "smpl/SMPL_NEUTRAL.pkl").write_text("<html>login required</html>\n")
    (tmp_path / "uv.obj").write_text("v 0 0 0\nvt 0 0\nf 1/1 1/1 1/1\n")
    raw = copy.deepcopy(RAW)
    raw["body_model"] = {**raw.get("body_model", {}), "backend": "smpl", "smpl_dir": str(tmp_path / "smpl"),
                         "smpl_uv_obj": str(tmp_path / "uv.obj")}
    params = _rule_json(tmp_path, "body_model", raw)
    before = folder_hash(tmp_path)
    r = uvhmr("body-model", "--params", params, "--out", tmp_path / "out", cwd=tmp_path)
    assert r.returncode == 1
    pkl = (tmp_path / "smpl/SMPL_NEUTRAL.pkl").resolve()
    line = the_line(r, after_progress=True)           # after "loading SMPL from ..."
    assert line.startswith(f"SmplFileError: {pkl}: could not load as an SMPL model (UnpicklingError"), line
    assert folder_hash(tmp_path) == before and not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", [["--debug"], ["UVHMR_DEBUG=1"]])
def test_debug_shows_the_traceback(tmp_path, how):
    env = {"UVHMR_DEBUG": "1"} if how == ["UVHMR_DEBUG=1"] else {}
    flags = [] if env else how
    r = uvhmr(*flags, "dataset", "--params", "x.json", "--split", "nosuch", "--out", "o", cwd=tmp_path, env=env)
    assert r.returncode == 1 and "Traceback" in r.stderr and "ConfigError: uvhmr dataset: --split nosuch" in r.stderr


def test_errors_map_by_type_in_one_place():
    import errno

    from uvhmr import cli
    from uvhmr.data.shards import ShardError
    from uvhmr.train.checkpoint import CheckpointError
    assert not hasattr(cli, "INPUT_FAULTS")
    assert one_line(ConfigError("params.yaml: a: b")) == ("params.yaml: a: b", 2)
    assert one_line(InputError("x.png: too small")) == ("x.png: too small", 1)
    assert one_line(ShardError("a.shard: truncated\nsecond line")) == ("ShardError: a.shard: truncated second line", 1)
    assert one_line(CheckpointError("c.pt: bad")) == ("CheckpointError: c.pt: bad", 1)
    assert one_line(OSError(errno.ENOSPC, "No space left on device"))[1] == 1
    assert one_line(FileExistsError(errno.EEXIST, "File exists", "out")) == ("[Errno 17] File exists: 'out'", 2)
    assert one_line(KeyError("a bug")) is None and one_line(OSError(errno.EACCES, "denied")) is None


def test_version():
    r = subprocess.run([sys.executable, "-m", "uvhmr.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip().startswith("uvhmr 0.")


def test_loading_the_body_model_prints_no_warp_banner(anny_dir, tmp_path):
    code = ("from uvhmr.body.model import load_body_model; m = load_body_model(%r); "
            "m(m.reference_pose(1), m.mean_shape()[None])" % str(anny_dir))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Warp" not in r.stdout + r.stderr, r.stdout + r.stderr


# ------------------------------------------------------------------------------ params.yaml, validated at start

_set = set_key


@pytest.mark.parametrize("edit, expected", [
    (_set(["base", "train_dmp", "lr"], math.nan), "params.yaml: base.train_dmp.lr: expected a finite number (a positive number), got nan"),
    (_set(["base", "train_dmp", "lr"], math.inf), "params.yaml: base.train_dmp.lr: expected a finite number (a positive number), got inf"),
    (_set(["base", "dataset", "center_jitter"], -math.inf), "params.yaml: base.dataset.center_jitter: expected a finite number"),
    (_set(["base", "train_ik", "seeds"], []), "params.yaml: base.train_ik.seeds: expected a non-empty list, got []"),
    (_set(["base", "uv_assets", "resolutions"], []), "params.yaml: base.uv_assets.resolutions: expected a non-empty list, got []"),
    (_set(["base", "mocap", "categories"], {"standing": -0.5, "walking": 1.0}),
     "params.yaml: base.mocap.categories.standing: expected a weight >= 0, got -0.5"),
    (_set(["base", "mocap", "categories"], {"flying": 1.0}),
     "params.yaml: base.mocap.categories.flying: unknown pose family (known: standing, walking, running, sitting, reaching, "
     "crouching, lying, arms_overhead)"),
    (_set(["base", "mocap", "categories"], {"lying": 0.0}),
     "params.yaml: base.mocap.categories: expected at least one positive weight"),
    (_set(["base", "mocap", "categories"], {"lying": math.nan}), "params.yaml: base.mocap.categories.lying: expected a finite number"),
])
def test_values_are_validated_at_start(edit, expected):
    raw = copy.deepcopy(RAW)
    edit(raw)
    with pytest.raises(ConfigError) as e:
        parse_params(raw, "smoke")
    assert str(e.value).startswith(expected) and "\n" not in str(e.value), str(e.value)


def test_an_empty_list_whose_default_is_empty_stays_allowed():
    raw = copy.deepcopy(RAW)
    _set(["base", "figures", "samples"], [])(raw)
    assert parse_params(raw, "smoke").rules.figures.samples == []


def test_the_pose_families_of_validation_are_the_priors():
    from uvhmr.config import POSE_FAMILIES
    from uvhmr.data.pose_prior import CATEGORIES
    assert POSE_FAMILIES == CATEGORIES


# ------------------------------------------------------------------------------ the workflow's command line

def test_configfile_is_refused_with_what_to_do(tmp_path, monkeypatch, capsys):
    from uvhmr.workflow import snakemake_setup
    monkeypatch.chdir(tmp_path)
    before = folder_hash(tmp_path)
    for argv, config in ((["snakemake", "-n", "--configfile", "my_params.yaml"], {"profile": "smoke"}),
                         (["snakemake", "-n"], copy.deepcopy(RAW))):
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as e:
            snakemake_setup(config)
        assert e.value.code == 2
        assert capsys.readouterr().err.strip() == (
            "uvhmr: --configfile: not supported; the workflow reads params.yaml only: put your parameters in "
            "params.yaml (keep a copy of the old one) and pick a profile with --config profile=NAME")
    assert folder_hash(tmp_path) == before
