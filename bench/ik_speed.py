"""GIK-Net against the iterative IK baseline: the speed/accuracy curve on the same held-out joints.

    .venv/bin/python bench/ik_speed.py --model results/<profile>/models/ik/ik14/seed0.pt \\
        [--body resources/body/anny] [--mocap results/<profile>/mocap] [--n 256] [--input gt|refine] \\
        [--iterations 10 20 30 40 50 75 100] [--refine-steps 5 10 20]

Inputs: `--n` held-out poses put in the camera frame as train_ik sees them (the mocap folder's val
split when `--mocap` is given and holds enough rows, else fresh draws from the built-in pose prior
with self-penetration rejected, seeded apart from the mocap rule). Every method gets the same
joints: the ground truth (`--input gt`, all observed) or the model's own J_refine of it
(`--input refine`). MPJPE is of the posed body model's LSP joints (the full mesh forward) against
the ground-truth joints, mid-hip-aligned, in mm.

Prints, each as ms per sample at batch 1 and at batch 256, with its MPJPE:
  - GIK-Net alone, and GIK-Net + mesh (the body-model forward that turns its pose and shape into
    a mesh): the paper's IK;
  - GIK-Net + refinement (uvhmr.models.ik.refine_after_gik, a named option, not the paper's): a
    few Adam steps from GIK-Net's answer through the fast joints, then the mesh, per `--refine-steps`;
  - the iterative fit (evaluate's iterative_ik baseline, uvhmr.evaluate.iterative_ik: Adam from
    the zero pose through the full body model) at each of `--iterations`. Its curve comes from one
    run recorded at each grid point (the fit is deterministic, so its first k iterations are the
    k-iteration fit; checked against fit_iterative_ik on a few samples); ms/sample at k iterations
    is k x the measured time per iteration plus the final mesh forward.
Then the speed ratio at equal MPJPE, at batch 256 for both: the iterative curve interpolated
(linearly in iterations, between the grid points that bracket the network's MPJPE) to the
iterations that reach GIK-Net's MPJPE, its time over GIK-Net + mesh's. Timings are wall clock on
`--threads` CPU threads; nothing is asserted. An untrained model gives meaningless MPJPEs, hence
`--model` is required.
"""
import argparse
import time

import numpy as np
import roma
import torch

from timing import median_seconds
from uvhmr.body.model import load_body_model
from uvhmr.data.camera_frame import prior_poses, to_camera_frame
from uvhmr.data.mocap import open_mocap
from uvhmr.evaluate import metrics as M
from uvhmr.evaluate.iterative_ik import fit_iterative_ik
from uvhmr.models.ik import load_ik, pose_mesh, refine_after_gik
from uvhmr.uv.gt import root_of


def held_out_joints(body, n: int, mocap: str | None, seed: int) -> tuple[torch.Tensor, str]:
    """-> ground-truth joints (n, 14, 3) camera frame, mid-hip-relative, and where they came from."""
    if mocap:
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


def iterative_curve(body, x: torch.Tensor, observed: torch.Tensor, grid: list[int], lr: float = 0.05,
                    pose_weight: float = 1e-3) -> tuple[dict, float]:
    """fit_iterative_ik's loop (the same start, loss and Adam steps) on one batch, run to
    max(grid) iterations, with the posed LSP joints kept at each grid point.
    -> ({iterations: joints (N, 14, 3)}, seconds per iteration)."""
    n = len(x)
    pose = torch.zeros(n, body.num_joints, 3, requires_grad=True)
    shape = body.mean_shape()[None].repeat(n, 1).requires_grad_(True)
    opt = torch.optim.Adam([pose, shape], lr=lr)
    w = observed.to(x.dtype)[..., None]
    kept, seconds = {}, 0.0
    for it in range(1, max(grid) + 1):
        t = time.perf_counter()
        out = body(pose, shape)
        j = out.lsp14 - root_of(out.lsp14)
        loss = ((j - x).abs() * w).sum() / w.sum().clamp(min=1) + pose_weight * pose.square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - t
        if it in grid:
            with torch.no_grad():
                kept[it] = body(pose, shape).lsp14
    return kept, seconds / max(grid)


def ratio_at_equal_mpjpe(curve: list[tuple[int, float, float]], target_err: float, target_ms: float) -> str:
    """curve: (iterations, ms/sample, MPJPE) rising in iterations -> a line on the speed ratio at
    `target_err`, or why there is none (the grid does not bracket it)."""
    for (i0, t0, e0), (i1, t1, e1) in zip(curve, curve[1:]):
        if (e0 - target_err) * (e1 - target_err) <= 0 and e0 != e1:
            f = (e0 - target_err) / (e0 - e1)
            ms = t0 + f * (t1 - t0)
            return (f"iterative fit reaches {target_err:.1f} mm at ~{i0 + f * (i1 - i0):.0f} iterations, "
                    f"{ms:.2f} ms/sample: {ms / target_ms:.0f}x GIK-Net+mesh's {target_ms:.3f} ms/sample (batch 256)")
    errs = ", ".join(f"{e:.1f}" for _, _, e in curve)
    return f"no ratio: the iterative grid's MPJPEs ({errs} mm) do not bracket {target_err:.1f} mm; widen --iterations"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a trained IK model file, e.g. results/default/models/ik/ik14/seed0.pt")
    ap.add_argument("--body", default="resources/body/anny")
    ap.add_argument("--mocap", default=None, help="a mocap output folder: its val split gives the held-out poses")
    ap.add_argument("--n", type=int, default=256, help="held-out samples (default 256: one batch of the iterative fit)")
    ap.add_argument("--input", choices=("gt", "refine"), default="gt",
                    help="what every method fits: the ground-truth joints or the model's J_refine of them")
    ap.add_argument("--iterations", type=int, nargs="+", default=[10, 20, 30, 40, 50, 75, 100])
    ap.add_argument("--refine-steps", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--batch1-samples", type=int, default=50, help="samples timed one by one at batch 1 (networks)")
    ap.add_argument("--batch1-iter-samples", type=int, default=3,
                    help="samples timed one by one at batch 1 for the iterative fit (10 iterations each, scaled)")
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
    chunks, singles = list(x.split(256)), list(x[: a.batch1_samples].split(1))
    obs_chunks, obs_singles = list(observed.split(256)), list(observed[: a.batch1_samples].split(1))

    # GIK-Net: one forward; its mesh needs one body-model forward more.
    def gik_mesh(c):
        o = net.gik(c)
        return pose_mesh(body, o["rotmats"], o["shape"])      # (vertices, joints)

    print("\nmethod                              ms/sample b1  ms/sample b256  MPJPE mm")
    rows = {}
    with torch.no_grad():
        t_alone = {1: per_sample_ms(lambda: [net.gik(c) for c in singles], len(singles), a.reps),
                   256: per_sample_ms(lambda: [net.gik(c) for c in chunks], n, a.reps)}
        t_mesh = {1: per_sample_ms(lambda: [gik_mesh(c) for c in singles], len(singles), a.reps),
                  256: per_sample_ms(lambda: [gik_mesh(c) for c in chunks], n, a.reps)}
        gik_err = mpjpe_mm(torch.cat([gik_mesh(c)[1] for c in chunks]), gt)
    rows["GIK-Net alone"] = (t_alone[1], t_alone[256], float("nan"))
    rows["GIK-Net + mesh"] = (t_mesh[1], t_mesh[256], gik_err)

    # GIK-Net + refinement (the named option): k Adam steps through the fast joints, then the mesh.
    def gik_refine_mesh(c, oc, k):
        with torch.no_grad():
            o = net.gik(c)
        rot, shape = refine_after_gik(body, o["rotmats"], o["shape"], c, oc, steps=k)
        with torch.no_grad():
            return pose_mesh(body, rot, shape)

    for k in a.refine_steps:
        t1 = per_sample_ms(lambda: [gik_refine_mesh(c, oc, k) for c, oc in zip(singles, obs_singles)], len(singles), 1)
        t256 = per_sample_ms(lambda: [gik_refine_mesh(c, oc, k) for c, oc in zip(chunks, obs_chunks)], n, 1)
        err = mpjpe_mm(torch.cat([gik_refine_mesh(c, oc, k)[1] for c, oc in zip(chunks, obs_chunks)]), gt)
        rows[f"GIK-Net + refinement {k:3d} steps"] = (t1, t256, err)
    for name, (t1, t256, err) in rows.items():
        print(f"{name:34s} {t1:12.3f} {t256:15.3f} {err:9.1f}")

    # The iterative baseline: first a check that the recorded curve is fit_iterative_ik's own.
    pose, shape = fit_iterative_ik(body, x[:4], observed[:4], 3)
    with torch.no_grad():
        ref = body(pose, shape).lsp14
    kept, _ = iterative_curve(body, x[:4], observed[:4], [3])
    assert torch.allclose(kept[3], ref, atol=1e-5), "bench's iterative curve drifted from fit_iterative_ik"
    grid = sorted(set(a.iterations))
    per_it = {}
    fitted = {k: [] for k in grid}
    for xc, oc in zip(chunks, obs_chunks):
        kept, s = iterative_curve(body, xc, oc, grid)
        per_it.setdefault(256, []).append(s / len(xc))
        for k in grid:
            fitted[k].append(kept[k])
    with torch.no_grad():
        mesh_ms = per_sample_ms(lambda: [pose_mesh(body, roma.rotvec_to_rotmat(torch.zeros(len(c), body.num_joints, 3)),
                                                   body.mean_shape()[None].repeat(len(c), 1)) for c in chunks], n, a.reps)
    it_ms_256 = 1000 * float(np.mean(per_it[256]))
    # Batch 1: a few samples fitted one at a time for 10 iterations, scaled per iteration.
    b1 = []
    for c, oc in list(zip(singles, obs_singles))[: a.batch1_iter_samples]:
        t = time.perf_counter()
        fit_iterative_ik(body, c, oc, 10)
        b1.append((time.perf_counter() - t) / 10)
    it_ms_1 = 1000 * float(np.median(b1))
    curve = []
    for k in grid:
        err = mpjpe_mm(torch.cat(fitted[k]), gt)
        t256, t1 = k * it_ms_256 + mesh_ms, k * it_ms_1 + t_mesh[1]
        curve.append((k, t256, err))
        print(f"{'iterative fit ' + str(k) + ' iterations':34s} {t1:12.3f} {t256:15.3f} {err:9.1f}")
    print(f"\n(iterative fit: {it_ms_256:.3f} ms/sample per iteration at batch 256, {it_ms_1:.2f} ms at batch 1)")
    print("speed ratio at equal MPJPE (batch 256 for both): "
          + ratio_at_equal_mpjpe(curve, gik_err, t_mesh[256]))
    for k in a.refine_steps:
        name = f"GIK-Net + refinement {k:3d} steps"
        print(f"  ... for {name}: " + ratio_at_equal_mpjpe(curve, rows[name][2], rows[name][1]).replace("GIK-Net+mesh", "its"))


if __name__ == "__main__":
    main()
