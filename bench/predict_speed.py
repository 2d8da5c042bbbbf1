"""End-to-end speed of `uvhmr.predict.predict` (DMP -> IK -> UVI) per stage, on the CPU.

    .venv/bin/python bench/predict_speed.py [--profiles default paper] [--batches 1 32] [--threads 2]
        [--trained]

For each profile of params.yaml, networks of that profile's architecture (DMP: train_dmp's
backbone and out_stride at dataset.image_size; IK: GIK-Net + JointRefineNet on the body model;
UVI: train_uvi's width), randomly initialised (timing does not depend on the weights; `--trained`
loads results/<profile>/models/ where they exist), in eval mode, on random images of the
profile's crop size. Per batch size, the median wall time of `--reps` runs after a warm-up, in ms
per image, of:

  backbone  the DMP's ResNet encoder alone (what a direct-regression method pays at least)
  DMP       cache.dmp.dmp_rows: encoder, decoder, heads, J_initial, maps and features warped to UV
  IK        cache.ik.ik_rows: JointRefineNet + GIK-Net, the body model, UV_l and UV_j (64 x 64)
  UVI       models.uvi.stack_inputs + the UVI UNet + models.uvi.infer (joints, mesh at 128 x 128)
  total     uvhmr.predict.predict, the three in one call (its own run, not the sum)

and the ratios total / backbone and (IK + UVI) / backbone (issue #11's target: IK and UVI add
at most 30 % to the backbone's time). Prints figures only; asserts nothing.
"""
import argparse
import tempfile
from pathlib import Path

import torch

from timing import median_seconds
from uvhmr.body.model import load_body_model
from uvhmr.cache.dmp import dmp_rows
from uvhmr.cache.ik import ik_rows
from uvhmr.config import UvAssetsParams, load_params
from uvhmr.models.dmp import UV_RES, DMPNet
from uvhmr.models.ik import IKNet
from uvhmr.models.uvi import OUT_RES, UVINet, infer, input_channels, stack_inputs
from uvhmr.predict import JOINTS, Models, load_models, predict
from uvhmr.uv.assets import build_uv_assets, load_uv_assets

REPO = Path(__file__).resolve().parents[1]


def uv_dir(profile: str) -> Path:
    """A uv_assets folder: the profile's, any other profile's, or one built now (a few seconds)."""
    for p in (profile, "default", "smoke", "paper"):
        d = REPO / "results" / p / "uv"
        if (d / "uv_assets.npz").is_file():
            return d
    d = Path(tempfile.mkdtemp(prefix="uv-")) / "uv"
    build_uv_assets(load_body_model(REPO / "resources/body/anny"), UvAssetsParams(), d, log=lambda *_: None)
    return d


def random_models(params, body_dir: Path, uv: Path) -> Models:
    dmp_sec, uvi_sec = params.rules.train_dmp, params.rules.train_uvi
    size = params.rules.dataset.image_size
    body = load_body_model(body_dir)
    dmp = DMPNet(dmp_sec.backbone, dmp_sec.out_stride, parts=JOINTS).eval()
    ik = IKNet(body.num_joints, body.mean_shape()).eval()
    in_ch = input_channels(dmp.local[0].out_channels)
    uvi = UVINet(in_ch, uvi_sec.width).eval()
    assets = load_uv_assets(uv, body.faces.numpy())
    configs = {"dmp": {"backbone": dmp_sec.backbone, "out_stride": dmp_sec.out_stride, "joints": JOINTS, "image_size": size},
               "ik": {}, "uvi": {"in_channels": in_ch, "width": uvi_sec.width, "use_dmp": True, "use_ik": True}}
    return Models(dmp, ik, uvi, configs, body, assets.sampler(UV_RES), assets.auv(JOINTS, UV_RES),
                  assets.sampler(OUT_RES), assets.auv(JOINTS, OUT_RES), size, torch.device("cpu"))


def ms_per_image(fn, batch: int, reps: int) -> float:
    return median_seconds(fn, reps) * 1000 / batch


def stages(m: Models, x: torch.Tensor, reps: int) -> dict:
    b = len(x)
    cfg = m.configs["uvi"]
    with torch.no_grad():
        d = dmp_rows(m.dmp, x, JOINTS)
        i = ik_rows(m.ik, m.body, m.sampler_in, m.labels_in, d["j_initial"], d["observed"])

        def uvi():
            inputs, camera = stack_inputs(d, i, bool(cfg["use_dmp"]), bool(cfg["use_ik"]))
            return infer(m.uvi(inputs, camera), m.sampler_out, m.labels_out)

        return {
            "backbone": ms_per_image(lambda: m.dmp.encoder(x), b, reps),
            "DMP": ms_per_image(lambda: dmp_rows(m.dmp, x, JOINTS), b, reps),
            "IK": ms_per_image(lambda: ik_rows(m.ik, m.body, m.sampler_in, m.labels_in, d["j_initial"], d["observed"]), b, reps),
            "UVI": ms_per_image(uvi, b, reps),
            "total": ms_per_image(lambda: predict(x, m), b, reps),
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", default=["default", "paper"])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--body", default=str(REPO / "resources/body/anny"))
    ap.add_argument("--trained", action="store_true", help="load results/<profile>/models/ where they exist")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"CPU, {a.threads} thread(s), float32, median of {a.reps} runs; ms per image")
    rows = []
    for profile in a.profiles:
        params = load_params(REPO / "params.yaml", profile=profile)
        root = REPO / "results" / profile
        files = [root / "models/dmp/dmp14.pt", root / "models/ik/ik14", root / "models/uvi/uvi14", root / "uv"]
        if a.trained and all(f.exists() for f in files):
            m, what = load_models(*files, a.body, "cpu"), "trained"
        else:
            m, what = random_models(params, Path(a.body), uv_dir(profile)), "random init"
        arch = (f"{m.configs['dmp']['backbone']}, stride {m.configs['dmp']['out_stride']}, {m.image_size} px, "
                f"UVI width {m.configs['uvi']['width']}, {what}")
        for b in a.batches:
            x = torch.rand(b, 3, m.image_size, m.image_size)
            t = stages(m, x, a.reps)
            rows.append((profile, arch, b, t))
            print(f"{profile:8s} batch {b:3d}: backbone {t['backbone']:8.2f}  DMP {t['DMP']:8.2f}  IK {t['IK']:7.2f}  "
                  f"UVI {t['UVI']:7.2f}  total {t['total']:8.2f}  total/backbone {t['total'] / t['backbone']:5.2f}  "
                  f"(IK+UVI)/backbone {(t['IK'] + t['UVI']) / t['backbone']:5.2f}   [{arch}]", flush=True)
    print("\n| profile | batch | backbone | DMP | IK | UVI | total | total / backbone | (IK + UVI) / backbone |")
    print("|---|---|---|---|---|---|---|---|---|")
    for profile, arch, b, t in rows:
        print(f"| {profile} | {b} | {t['backbone']:.1f} | {t['DMP']:.1f} | {t['IK']:.1f} | {t['UVI']:.1f} | {t['total']:.1f} "
              f"| {t['total'] / t['backbone']:.2f} | {(t['IK'] + t['UVI']) / t['backbone']:.2f} |")


if __name__ == "__main__":
    main()
