"""evaluate: score one target (a Table 4 variant, a baseline, a floor or an oracle row) on the
fixed test split. One JSON per target with summary metrics and the per-sample errors (for the
report's paired bootstrap).

All errors in mm on LSP-14, root = mid-hips (docs/design.md, "Conventions"); PA = per-sample similarity Procrustes;
"visible" = Table 4's Nonoccluded: Procrustes on all joints, error over visible joints only.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import roma
import torch

from uvhmr.body.joints import SMPL24_TO_LSP14
from uvhmr.body.model import load_body_model
from uvhmr.cache.dmp import DmpCache
from uvhmr.cache.ik import IkCache
from uvhmr.data.camera_frame import to_camera_frame
from uvhmr.data.dataset import SampleDataset
from uvhmr.data.format import INDEX
from uvhmr.data.mocap import open_mocap
from uvhmr.data.orientation import OrientationSampler, rotate_points
from uvhmr.data.scene import canonical_rotation
from uvhmr.device import pick_device
from uvhmr.config import IkTrainParams
from uvhmr.errors import ConfigError
from uvhmr.evaluate import metrics as M
from uvhmr.evaluate.iterative_ik import fit_iterative_ik
from uvhmr.io import write_json
from uvhmr.models.dmp import UV_RES
from uvhmr.models.hmr import load_hmr
from uvhmr.models.ik import load_ik, pose_mesh
from uvhmr.models.uvi import DMP_MAP_CHANNELS, IK_CHANNELS, infer, load_uvi, uvi_inputs
from uvhmr.uv.assets import load_uv_assets
from uvhmr.uv.gt import gt_uv_maps, root_of
from uvhmr.uv.texels import iuv_to_uv


def ground_truth(data_dir: Path, index: np.ndarray, body, seed: int) -> dict:
    """Ground truth of test samples `index` (dataset order): LSP joints, 24 joints, visibility,
    vertices (camera frame, mid-hip-relative)."""
    ds = SampleDataset(data_dir, joints=14, augment=None, occlusion=True, seed=seed)
    items = [ds[int(i)] for i in index]
    pose = torch.stack([it["pose"] for it in items]).float()
    rot = roma.rotvec_to_rotmat(pose)
    rot[:, 0] = torch.stack([it["R"] for it in items]).float() @ rot[:, 0]
    with torch.no_grad():
        verts = []
        for a in range(0, len(items), 64):
            out = body(roma.rotmat_to_rotvec(rot[a:a + 64]), torch.stack([it["shape"] for it in items[a:a + 64]]).float())
            verts.append(out.vertices - root_of(out.lsp14))
    return {"joints": torch.stack([it["joints3d"] for it in items]),
            "joints24": torch.stack([it["joints3d_24"] for it in items]),
            "visible": torch.stack([it["visible"] for it in items]).bool(),
            "vertices": torch.cat(verts), "items": items}


# joint_metrics' per-joint errors (N, J) in mm, under this key: averaged over samples (and seeds)
# into the JSON's per_joint_mpjpe_mm, not kept per sample.
PER_JOINT = "_per_joint_mm"


def joint_metrics(pred: torch.Tensor, gt: dict, prefix: str = "") -> dict:
    """Per-sample MPJPE, PA-MPJPE and their visible-only versions; without a prefix also the
    per-joint MPJPE (key PER_JOINT)."""
    out = {f"{prefix}mpjpe": M.mpjpe(pred, gt["joints"]), f"{prefix}pa_mpjpe": M.pa_mpjpe(pred, gt["joints"]),
           f"{prefix}mpjpe_visible": M.mpjpe(pred, gt["joints"], visible=gt["visible"]),
           f"{prefix}pa_mpjpe_visible": M.pa_mpjpe(pred, gt["joints"], visible=gt["visible"])}
    if not prefix:
        out[PER_JOINT] = M.per_joint_error(pred, gt["joints"]) * M.MM_PER_M
    return out


def mesh_metrics(verts: torch.Tensor, joints: torch.Tensor, gt: dict, prefix: str = "") -> dict:
    return {f"{prefix}mpve": M.mpve(verts, gt["vertices"], joints, gt["joints"])}


def _summarize(per_sample: dict) -> dict:
    return {k: M.summarize(v) for k, v in per_sample.items()}


def data_provenance(data_dir) -> dict:
    """Which data a score comes from: the test split's folder and its index.json's description."""
    try:
        index = json.loads((Path(data_dir) / INDEX).read_text())
    except (OSError, ValueError):
        index = {}
    occ = index.get("occlusion") or {}
    return {"path": str(data_dir), "source": index.get("source"), "split": index.get("split"),
            "samples": index.get("num_samples"), "image_size": index.get("image_size"),
            "body_model": index.get("backend"), "seed": index.get("seed"), "occluder_families": occ.get("families")}


def evaluate_target(target: str, kind: str, inputs: dict, rp, log=print) -> dict:
    device = pick_device(rp.run.device)
    body = load_body_model(inputs["body"])
    result = {"target": target, "kind": kind, "profile": rp.profile, "data": data_provenance(inputs["data"])}
    per_seed = []

    if kind == "dmp":
        pred = dmp_predictions(inputs["dmp_cache"])
        index = pred["index"]
        gt = ground_truth(inputs["data"], index, body, rp.run.seed)
        j, obs = pred["joints"], pred["observed"]               # a joint never observed sits at the root
        if j.shape[1] == 24:
            idx = list(SMPL24_TO_LSP14[:13])
            sub = {"joints": gt["joints"][:, :13], "visible": gt["visible"][:, :13]}
            ps = joint_metrics(j[:, idx], sub)
            ps.update({f"all24_{k}": v for k, v in {"mpjpe": M.mpjpe(j, gt["joints24"], hips=(2, 1))}.items()})
        else:
            ps = joint_metrics(j, gt)
        ps["observed_fraction"] = obs.float().mean(1)
        per_seed.append(ps)
        lsp = (j[:, list(SMPL24_TO_LSP14[:13])], gt["joints"][:, :13]) if j.shape[1] == 24 else (j, gt["joints"])
        result["depth_corr"] = M.depth_correlation(*lsp)
    elif kind == "ik":
        cache = IkCache(inputs["ik_cache"], "test")
        index = np.asarray(cache.arrays["index"])
        gt = ground_truth(inputs["data"], index, body, rp.run.seed)
        j_in, observed = _dmp_test(inputs["dmp_cache"])
        seeds = _ik_seeds(inputs["model"], j_in, observed, body, gt, device)
        for ps in seeds:        # J_initial on the same rows, next to what IK makes of it
            ps.update(joint_metrics(j_in * observed[..., None], gt, prefix="input_"))
        per_seed += seeds
        if inputs.get("mocap"):
            result["heldout_mocap"] = _ik_heldout_mocap(inputs["model"], inputs["mocap"], body, rp, device)
    elif kind == "uvi":
        per_seed += _uvi_seeds(inputs, body, rp, device)
        index = np.asarray(DmpCache(inputs["dmp_cache"], "test").arrays["index"])
    elif kind == "hmr":
        per_seed.append(_hmr(inputs, body, rp, device))
    elif kind == "mean_pose":
        per_seed.append(_mean_pose(inputs, body, rp))
    elif kind == "iterative_ik":
        per_seed.append(_iterative_ik(inputs, body, rp, device, log))
    elif kind == "oracle_ik":
        per_seed += _oracle_ik(inputs, body, rp, device)
    elif kind == "oracle_uvi":
        per_seed += _oracle_uvi(inputs, body, rp, device)
    else:
        raise ValueError(f"unknown evaluation kind {kind!r} for target {target!r}")

    per_joint = [ps.pop(PER_JOINT) for ps in per_seed if PER_JOINT in ps]
    if per_joint:   # mean over samples, then over seeds; DMP-24's LSP subset has 13 joints (no head top)
        e = torch.stack([p.mean(0) for p in per_joint]).mean(0)
        result["per_joint_mpjpe_mm"] = dict(zip(M.LSP14_NAMES, e.tolist()))
    result["seeds"] = [_summarize(ps) for ps in per_seed]
    first = per_seed[0]
    result["n"] = int(len(next(iter(first.values()))))
    result["metrics"] = {k: float(np.mean([s[k]["mean"] for s in result["seeds"]])) for k in result["seeds"][0]}
    if len(per_seed) > 1:
        result["metrics_std_over_seeds"] = {k: float(np.std([s[k]["mean"] for s in result["seeds"]])) for k in result["seeds"][0]}
    if "depth_corr" in result:
        result["metrics"]["depth_corr"] = result["depth_corr"]
    if "heldout_mocap" in result:
        result["metrics"].update({f"heldout_mocap_{k}": v for k, v in result["heldout_mocap"]["metrics"].items()})
    # Every seed's per-sample errors: the report's intervals resample seeds as well as samples.
    result["per_sample"] = {k: [[None if not np.isfinite(x) else round(float(x), 3) for x in ps[k].tolist()] for ps in per_seed]
                            for k in first}
    return result


# ----------------------------------------------------------------------------- predictions
# What each stage predicts for test rows: scored below, and drawn by the report's figures
# (uvhmr.report.figures), so a figure shows exactly what the metrics score.

def dmp_predictions(dmp_dir, split: str = "test") -> dict:
    """A DMP cache split -> j_initial (N, K, 3) as cached (IK's input); joints: the same with every
    joint that had no observed texel at the root (what is scored); observed (N, K) bool; camera
    (N, 3): DMP's weak perspective (s, tx, ty); index (N,): the dataset sample of each row."""
    c = DmpCache(dmp_dir, split)
    j = torch.as_tensor(np.array(c.arrays["j_initial"]))
    obs = torch.as_tensor(np.array(c.arrays["observed"]))
    return {"j_initial": j, "joints": j * obs[..., None], "observed": obs,
            "camera": torch.as_tensor(np.array(c.arrays["camera"])), "index": np.asarray(c.arrays["index"])}


def _dmp_test(dmp_dir) -> tuple[torch.Tensor, torch.Tensor]:
    p = dmp_predictions(dmp_dir)
    return p["j_initial"], p["observed"]


def seed_models(model_dir) -> list[Path]:
    """A variant folder's seed*.pt files in seed order (seed2 before seed10)."""
    return sorted(Path(model_dir).glob("seed*.pt"), key=lambda f: (len(f.stem), f.stem))


def ik_predictions(model_dir, j_in: torch.Tensor, observed: torch.Tensor, body, device,
                   seeds: int | None = None) -> list[dict]:
    """Every seed (or the first `seeds`) of an IK variant fed (N, 14, 3) joints with an observed
    mask -> per seed {"seed", "j_refine": JointRefineNet's joints, "mesh_joints" and "vertices":
    GIK-Net's posed mesh}, camera frame, mid-hip-relative, metres, on the CPU."""
    out = []
    for f in seed_models(model_dir)[:seeds]:
        net, _ = load_ik(f, device)
        with torch.no_grad():
            o = net(j_in.to(device), observed.to(device))
            verts, joints = pose_mesh(body.to(device), o["rotmats"], o["shape"])
        out.append({"seed": f.stem, "j_refine": o["j_refine"].cpu(), "mesh_joints": joints.cpu(), "vertices": verts.cpu()})
    return out


def uvi_predictions(model_dir, make_inputs, uv, device, seeds: int | None = None) -> list[dict]:
    """Every seed (or the first `seeds`) of a UVI variant, fed by `make_inputs(cfg) -> (inputs,
    camera)` -> per seed {"seed", "joints": A_uv part means of UV_j, "vertices": UV_l at the
    vertex UVs, "camera": UVI's weak-perspective camera}, on the CPU."""
    at = {}         # out_res -> (UVSampler, A_uv-14 labels) at UVI's output resolution
    out = []
    for f in seed_models(model_dir)[:seeds]:
        net, cfg = load_uvi(f, device)
        if net.out_res not in at:
            at[net.out_res] = uv.sampler(net.out_res).to(device), uv.auv(14, net.out_res).to(device)
        x, cam = make_inputs(cfg)
        with torch.no_grad():
            o = net(x.to(device), cam.to(device))
            joints, verts = infer(o, *at[net.out_res])
        out.append({"seed": f.stem, "joints": joints.cpu(), "vertices": verts.cpu(), "camera": o["camera"].cpu()})
    return out


def uvi_cache_inputs(dmp_dir, ik_dir, rows=None, split: str = "test"):
    """`make_inputs` for uvi_predictions from the DMP and IK caches (cache rows `rows`, all by default)."""
    dmp, ik = DmpCache(dmp_dir, split), IkCache(ik_dir, split)
    rows = np.arange(len(dmp)) if rows is None else np.asarray(rows)
    return lambda cfg: uvi_inputs(dmp, ik, rows, cfg["use_dmp"], cfg["use_ik"])


# ----------------------------------------------------------------------------- scores

def _ik_seeds(model_dir: Path, j_in: torch.Tensor, observed: torch.Tensor, body, gt, device) -> list[dict]:
    """Every seed of an IK variant fed (J, 14, 3) joints with an observed mask: J_refine's joint
    metrics, and the GIK-Net mesh's joint and vertex metrics (prefix mesh_)."""
    out = []
    for p in ik_predictions(model_dir, j_in, observed, body, device):
        ps = joint_metrics(p["j_refine"], gt)
        ps.update(joint_metrics(p["mesh_joints"], gt, prefix="mesh_"))
        ps.update(mesh_metrics(p["vertices"], p["mesh_joints"], gt, prefix="mesh_"))
        out.append(ps)
    return out


def _uvi_seed_metrics(model_dir, make_inputs, uv, gt, device) -> list[dict]:
    """Every seed of a UVI variant: `make_inputs(cfg) -> (inputs, camera)` feeds it; its joints
    (A_uv part means of UV_j) and mesh (UV_l at the vertex UVs) are scored against `gt`."""
    out = []
    for p in uvi_predictions(model_dir, make_inputs, uv, device):
        ps = joint_metrics(p["joints"], gt)
        ps.update(mesh_metrics(p["vertices"], p["joints"], gt))
        out.append(ps)
    return out


def _uvi_seeds(inputs, body, rp, device) -> list[dict]:
    dmp = DmpCache(inputs["dmp_cache"], "test")
    gt = ground_truth(inputs["data"], np.asarray(dmp.arrays["index"]), body, rp.run.seed)
    uv = load_uv_assets(inputs["uv"], body.faces.numpy())
    return _uvi_seed_metrics(inputs["model"], uvi_cache_inputs(inputs["dmp_cache"], inputs["ik_cache"]), uv, gt, device)


def _hmr(inputs, body, rp, device) -> dict:
    ds = SampleDataset(inputs["data"], joints=14, augment=None, occlusion=True, seed=rp.run.seed)
    index = np.arange(len(ds))
    gt = ground_truth(inputs["data"], index, body, rp.run.seed)
    net, _ = load_hmr(inputs["model"], body, device)
    with torch.no_grad():
        images = torch.stack([it["image"] for it in gt["items"]])
        p = net(images.to(device))
        out = body(roma.rotmat_to_rotvec(p["rotmats"]).cpu(), p["shape"].cpu())
        root = root_of(out.lsp14)
    ps = joint_metrics(out.lsp14 - root, gt)
    ps.update(mesh_metrics(out.vertices - root, out.lsp14 - root, gt))
    return ps


def _mean_pose(inputs, body, rp) -> dict:
    m = open_mocap(inputs["mocap"], "train")
    n = min(len(m), 5000)
    b = m.batch(np.arange(n))
    rv = OrientationSampler(up_axis=body.up_axis).sample_rows(b, rp.run.seed)   # the renders' distribution, lying included
    C = torch.as_tensor(canonical_rotation(body.up_axis), dtype=torch.float32)
    mean = (rotate_points(b["lsp14"].float(), rv) @ C.T).mean(0)
    ds = SampleDataset(inputs["data"], joints=14, augment=None, occlusion=True, seed=rp.run.seed)
    gt = ground_truth(inputs["data"], np.arange(len(ds)), body, rp.run.seed)
    return joint_metrics(mean[None].expand(len(ds), -1, -1), gt)


def _iterative_ik(inputs, body, rp, device, log, iterations: int = 50) -> dict:
    """Fit pose and shape through the body model to DMP's observed J_initial joints (Adam)."""
    ji, obs = _dmp_test(inputs["dmp_cache"])
    c = DmpCache(inputs["dmp_cache"], "test")
    gt = ground_truth(inputs["data"], np.asarray(c.arrays["index"]), body, rp.run.seed)
    pose, shape = fit_iterative_ik(body, ji, obs, iterations)
    with torch.no_grad():
        out = body(pose, shape)
        root = root_of(out.lsp14)
    ps = joint_metrics(out.lsp14 - root, gt)
    ps.update(mesh_metrics(out.vertices - root, out.lsp14 - root, gt))
    return ps


def _ik_heldout_mocap(model_dir, mocap_dir, body, rp, device, n: int = 1000,
                      zero: float = IkTrainParams.random_zero, noise_sigma: float = IkTrainParams.noise_sigma) -> dict:
    """IK on held-out mocap poses (the mocap rule's val split, put in the camera frame as the
    dataset would photograph them), per seed, in two conditions, each one of the augmentations
    the IK ablations remove: `zero` of the joints zeroed (as in training; the zeroed joints sit at
    the root in the input) and every joint observed with Gaussian noise of `noise_sigma` metres
    per coordinate (both train_ik's defaults). MPJPE (mm) of the input, of J_refine and
    of GIK-Net's mesh joints; the metrics are means over seeds, "per_sample" every seed's rows
    (the report's paired intervals between IK variants, which all see the same poses)."""
    m = open_mocap(mocap_dir, "val")
    rows = m.batch(np.arange(min(n, len(m))))
    gt = to_camera_frame(rows, rp.run.seed + 1, body.up_axis)["joints"]
    g = torch.Generator().manual_seed(rp.run.seed)
    observed = torch.rand(gt.shape[:2], generator=g) >= zero
    j_in = gt * observed[..., None]
    noisy = gt + noise_sigma * torch.randn(gt.shape, generator=g)
    everything = torch.ones_like(observed)
    per_seed = [{"input_mpjpe": M.mpjpe(j_in, gt), "j_refine_mpjpe": M.mpjpe(p["j_refine"], gt),
                 "mesh_mpjpe": M.mpjpe(p["mesh_joints"], gt)}
                for p in ik_predictions(model_dir, j_in, observed, body, device)]
    for ps, p in zip(per_seed, ik_predictions(model_dir, noisy, everything, body, device)):
        ps.update({"noise_input_mpjpe": M.mpjpe(noisy, gt), "noise_j_refine_mpjpe": M.mpjpe(p["j_refine"], gt)})
    # GIK-Net alone, fed the complete ground-truth joints straight (no refiner, nothing zeroed):
    # its mesh joints' MPJPE (issue #20's `heldout_mocap_gik_gt_mesh_mpjpe`).
    for ps, f in zip(per_seed, seed_models(model_dir)):
        net, _ = load_ik(f, device)
        with torch.no_grad():
            o = net.gik(gt.to(device))
            _, joints = pose_mesh(body.to(device), o["rotmats"], o["shape"])
        ps["gik_gt_mesh_mpjpe"] = M.mpjpe(joints.cpu(), gt)
    return {"samples": len(gt), "zeroed_fraction": zero, "noise_sigma_m": noise_sigma,
            "metrics": {k: float(np.mean([float(ps[k].mean()) for ps in per_seed])) for k in per_seed[0]},
            "per_sample": {k: [[round(float(x), 3) for x in ps[k].tolist()] for ps in per_seed] for k in per_seed[0]}}


def _oracle_ik(inputs, body, rp, device) -> list[dict]:
    """IK fed ground-truth joints with 30 % of them zeroed."""
    ds = SampleDataset(inputs["data"], joints=14, augment=None, occlusion=True, seed=rp.run.seed)
    gt = ground_truth(inputs["data"], np.arange(len(ds)), body, rp.run.seed)
    g = torch.Generator().manual_seed(rp.run.seed)
    obs = torch.rand(gt["joints"].shape[:2], generator=g) >= 0.3
    return _ik_seeds(inputs["model"], gt["joints"] * obs[..., None], obs, body, gt, device)


def _oracle_uvi(inputs, body, rp, device) -> list[dict]:
    """UVI fed ground truth: the true M_j, M_l, M_d warped into UV through the true IUV (no image
    features), and the true mesh and joints in place of IK's."""
    ds = SampleDataset(inputs["data"], joints=14, augment=None, occlusion=True, seed=rp.run.seed)
    gt = ground_truth(inputs["data"], np.arange(len(ds)), body, rp.run.seed)
    items = gt["items"]
    uv = load_uv_assets(inputs["uv"], body.faces.numpy())
    s64, l64 = uv.sampler(UV_RES), uv.auv(14, UV_RES)
    maps = torch.stack([torch.cat([it["M_j"], it["M_l"], it["M_d"]]) for it in items])
    iuv = torch.stack([it["iuv"] for it in items])
    warped, count = iuv_to_uv(maps, iuv, UV_RES)
    l, j, d = gt_uv_maps(s64, l64, gt["vertices"], gt["joints"], torch.zeros(len(items), 1, 3))
    cam = torch.stack([it["cam_wp"] for it in items])

    def make_inputs(cfg):
        feat = torch.zeros(len(items), cfg["in_channels"] - DMP_MAP_CHANNELS - IK_CHANNELS, UV_RES, UV_RES)
        return torch.cat([feat, warped, (count > 0).float(), l, j, d], 1), cam

    return _uvi_seed_metrics(inputs["model"], make_inputs, uv, gt, device)


STAGE_KINDS = {"train_dmp": "dmp", "train_ik": "ik", "train_uvi": "uvi"}


def target_kind(rp, target: str) -> str:
    """What `target` is, from its resolved parameters (evaluate/<target>.json, written from
    params.yaml's variant registry): a variant of a stage (dmp, ik, uvi) or a baseline (its name)."""
    if rp.variant != target:
        raise ConfigError(f"uvhmr evaluate: --target {target}: the parameter file is for {rp.variant!r}; pass "
                          f"results/<profile>/params/evaluate/{target}.json")
    return STAGE_KINDS[rp.stage] if rp.stage else target


def run_evaluate(rp, target: str, kind: str, inputs: dict, out: Path, log=print) -> None:
    result = evaluate_target(target, kind, inputs, rp, log)
    write_json(out, result)
    m = result["metrics"]
    log(f"{target}: " + ", ".join(f"{k} {v:.1f}" for k, v in m.items() if "mpjpe" in k or "mpve" in k))
