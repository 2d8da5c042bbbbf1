"""GIK-Net against the iterative IK baseline: time per sample and MPJPE on the same held-out joints.

    .venv/bin/python bench/ik_speed.py --model results/<profile>/models/ik/ik14/seed0.pt \\
        [--body resources/body/anny] [--mocap results/<profile>/mocap] [--n 1000] [--input gt|refine]

Inputs: `--n` held-out poses put in the camera frame as train_ik sees them (the mocap folder's val
split when `--mocap` is given and holds enough rows, else fresh draws from the built-in pose prior
with self-penetration rejected, seeded apart from the mocap rule). GIK-Net and the iterative fit
get the same joints: the ground truth (`--input gt`, all observed) or the model's own J_refine
of it (`--input refine`). MPJPE is against the ground-truth joints, mid-hip-aligned, in mm.

Prints GIK-Net's ms per sample at batch 1 and 256 (alone, and with the body-model forward that
turns its pose and shape into a mesh), the iterative baseline's (uvhmr.evaluate.iterative_ik,
evaluate's iterative_ik target: Adam from the zero pose) ms per sample at each `--iterations`,
both MPJPEs, and the speed ratios. Timings are wall clock on `--threads` CPU threads; nothing
is asserted. An untrained model gives meaningless MPJPEs, hence `--model` is required.
"""
import argparse
import time

import numpy as np
import torch

from timing import median_seconds
from uvhmr.body.model import load_body_model
from uvhmr.evaluate import metrics as M
from uvhmr.evaluate.iterative_ik import fit_iterative_ik
from uvhmr.train.ik import load_ik, pose_mesh, prior_poses, to_camera_frame


def held_out_joints(body, n: int, mocap: str | None, seed: int) -> tuple[torch.Tensor, str]:
    """-> ground-truth joints (n, 14, 3) camera frame, mid-hip-relative, and where they came from."""
    if mocap:
        from uvhmr.data.mocap import open_mocap
        val = open_mocap(mocap, "val")
        if len(val) >= n:
            return to_camera_frame(val.batch(np.arange(n)), seed, body.up_axis)["joints"], f"{mocap} val split"
        print(f"note: {mocap} val split has {len(val)} poses < {n}; drawing from the pose prior instead")
    return prior_poses(body, n, seed=10_000 + seed)["joints"], "fresh pose-prior draws (self-penetration rejected)"


def per_sample_ms(fn, samples: int, reps: int) -> float:
    """Median wall time of `fn()` (bench/timing.py) divided by `samples`, in ms."""
    return median_seconds(fn, reps) * 1000 / samples


def mpjpe_mm(joints: torch.Tensor, gt: torch.Tensor) -> float:
    return float(M.mpjpe(joints, gt).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a trained IK model file, e.g. results/default/models/ik/ik14/seed0.pt")
    ap.add_argument("--body", default="resources/body/anny")
    ap.add_argument("--mocap", default=None, help="a mocap output folder: its val split gives the held-out poses")
    ap.add_argument("--n", type=int, default=1000, help="held-out samples (default 1000)")
    ap.add_argument("--input", choices=("gt", "refine"), default="gt",
                    help="what both methods fit: the ground-truth joints or the model's J_refine of them")
    ap.add_argument("--iterations", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--iter-batch", type=int, default=256, help="samples the iterative fit optimises at once")
    ap.add_argument("--batch1-samples", type=int, default=100, help="samples timed one by one at batch 1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    body = load_body_model(a.body)
    net, cfg = load_ik(a.model)
    epochs = len(torch.load(a.model, map_location="cpu", weights_only=True).get("history", []))
    gt, source = held_out_joints(body, a.n, a.mocap, a.seed)
    n = len(gt)
    observed = torch.ones(n, 14, dtype=torch.bool)
    with torch.no_grad():
        x = gt if a.input == "gt" else net.refine(gt, observed)
    print(f"model {a.model}: variant {cfg.get('variant')}, seed {cfg.get('seed')}, {epochs} epochs trained")
    print(f"{n} held-out samples: {source}; input: {'ground-truth joints' if a.input == 'gt' else 'J_refine'}; "
          f"{body.name} body, {a.threads} threads")
    if a.input == "refine":
        print(f"J_refine MPJPE {mpjpe_mm(x, gt):.1f} mm")

    # GIK-Net: one forward; its mesh needs one body-model forward more.
    def gik_mesh(c):
        o = net.gik(c)
        return pose_mesh(body, o["rotmats"], o["shape"])      # (vertices, joints)

    gik = {}
    with torch.no_grad():
        singles, chunks = list(x[: a.batch1_samples].split(1)), list(x.split(256))
        for b, xs, m in ((1, singles, len(singles)), (256, chunks, n)):
            gik[b] = (per_sample_ms(lambda: [net.gik(c) for c in xs], m, a.reps),
                      per_sample_ms(lambda: [gik_mesh(c) for c in xs], m, a.reps))
        gik_err = mpjpe_mm(torch.cat([gik_mesh(c)[1] for c in chunks]), gt)
    for b, (alone, mesh) in gik.items():
        print(f"GIK-Net batch {b:3d}: {alone:8.3f} ms/sample alone, {mesh:8.3f} ms/sample with the mesh")
    print(f"GIK-Net MPJPE {gik_err:.1f} mm")

    # The iterative baseline, chunk by chunk (samples are independent; one batch of n would be
    # equivalent up to Adam's epsilon but holds n bodies' backward graphs in memory at once).
    for it in a.iterations:
        t = time.perf_counter()
        fitted = []
        for xc, oc in zip(x.split(a.iter_batch), observed.split(a.iter_batch)):
            pose, shape = fit_iterative_ik(body, xc, oc, it)
            with torch.no_grad():
                fitted.append(body(pose, shape).lsp14)         # mpjpe aligns the mid-hips itself
        ms = (time.perf_counter() - t) * 1000 / n
        err = mpjpe_mm(torch.cat(fitted), gt)
        print(f"iterative IK {it:4d} iterations: {ms:8.3f} ms/sample (batch {min(a.iter_batch, n)}), MPJPE {err:.1f} mm; "
              f"{ms / gik[256][1]:7.0f}x GIK-Net+mesh's time at batch 256, {ms / gik[1][1]:6.1f}x at batch 1")


if __name__ == "__main__":
    main()
