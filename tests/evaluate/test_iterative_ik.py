"""The iterative IK baseline (evaluate's iterative_ik target, bench/ik_speed.py)."""
import torch

from uvhmr.evaluate import metrics as M
from uvhmr.evaluate.iterative_ik import fit_iterative_ik
from uvhmr.data.camera_frame import prior_poses


def test_fit_moves_the_body_onto_the_observed_joints(anny):
    t = prior_poses(anny, 4, seed=0, reject_penetration=False)
    observed = torch.ones(4, 14, dtype=torch.bool)

    def error(iterations):
        pose, shape = fit_iterative_ik(anny, t["joints"], observed, iterations)
        with torch.no_grad():
            out = anny(pose, shape)
        return M.mpjpe(out.lsp14, t["joints"]).mean()

    start, fitted = error(0), error(40)
    assert fitted < 0.5 * start, (fitted, start)
