"""DMP speed on this machine: training images per second and inference ms per image (batch 1
and 32), for each encoder at the image size (and batch, output stride) of the default and paper
profiles (read from params.yaml).

    .venv/bin/python bench/dmp_speed.py [--profiles default paper] [--encoders resnet18 ...] [--threads 2] [--reps 5]
        [--image-size 128] [--freeze-levels 0 2]

--image-size replaces the profile's; --freeze-levels times training with the encoder's first
levels frozen (`train_dmp.freeze_levels`), one line each.

A training step is forward + the DMP losses + backward + Adam on random images and targets of
the profile's size (the data loader is not timed: bench/dataset_speed.py measures it).
Prints one block per profile; medians of --reps timed repetitions after a warm-up.
"""
import argparse

import torch

from timing import median_seconds
from uvhmr.config import load_params, rule_params
from uvhmr.device import forward_in, training_precision
from uvhmr.losses import dmp_losses
from uvhmr.models.dmp import DMPNet
from uvhmr.models.encoders import ENCODERS


def random_batch(b: int, size: int, stride: int, k: int, yaw_bins: int) -> dict:
    """Random (B, 3, S, S) images and DMP targets of the dataset's shapes (a body box)."""
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(b, 1, size, size)
    mask[:, :, size // 8: 7 * size // 8, size // 3: 2 * size // 3] = 1
    parts = torch.where(mask[:, 0] > 0, torch.randint(0, k, (b, size, size), generator=g), -1)
    maps = {n: torch.randn(b, 3, size, size, generator=g) * 0.3 for n in ("mj", "ml", "md")}
    return {"image": torch.rand(b, 3, size, size, generator=g), "mask": mask, "parts": parts,
            "uv": torch.rand(b, 2, size, size, generator=g), "camera": torch.rand(b, 3, generator=g),
            "yaw_bin": torch.randint(0, max(yaw_bins, 1), (b,), generator=g), **maps}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profiles", nargs="+", default=["default", "paper"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    ap.add_argument("--image-size", type=int, default=None, help="instead of the profile's dataset.image_size")
    ap.add_argument("--freeze-levels", type=int, nargs="+", default=[0], choices=range(6))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    native = training_precision(device, "auto")
    print(f"DMP speed on {device}, {a.threads} threads, median of {a.reps}; training in fp32 and in "
          f"{native} (what run.precision: auto trains in here)")
    for profile in a.profiles:
        p = load_params(a.params, profile)
        sec, size = rule_params(p, "train_dmp", "dmp14").section, a.image_size or p.rules.dataset.image_size
        for encoder, frozen in ((e, f) for e in a.encoders for f in a.freeze_levels):
            net = DMPNet(encoder, sec.out_stride, parts=sec.joints, yaw_bins=sec.yaw_bins).to(device)
            net.encoder.freeze(frozen)
            opt = torch.optim.Adam([q for q in net.parameters() if q.requires_grad], lr=sec.lr)
            batch = {k: v.to(device) for k, v in random_batch(sec.batch_size, size, sec.out_stride, sec.joints, sec.yaw_bins).items()}

            def train_step(precision):
                terms = dmp_losses(forward_in(precision, device, net, batch["image"]), batch, sec)
                opt.zero_grad()
                terms["total"].backward()
                opt.step()

            net.train()
            train_s = {pr: median_seconds(lambda: train_step(pr), a.reps) for pr in dict.fromkeys(("fp32", native))}
            net.eval()
            infer = {}
            for b in (1, 32):
                x = batch["image"][:1].repeat(b, 1, 1, 1)
                with torch.no_grad():
                    infer[b] = median_seconds(lambda: net(x), a.reps) / b * 1000
            n_params = sum(q.numel() for q in net.parameters()) / 1e6
            print(f"{profile:8s} {encoder:18s} {f'{frozen} levels frozen, ' if frozen else ''}{size} px, output 1/{sec.out_stride}, {n_params:5.1f} M parameters: "
                  f"train {', '.join(f'{sec.batch_size / t:6.1f} images/s in {pr}' for pr, t in train_s.items())} "
                  f"(batch {sec.batch_size}); "
                  f"inference {infer[1]:7.2f} ms/image at batch 1, {infer[32]:7.2f} ms/image at batch 32", flush=True)

if __name__ == "__main__":
    main()
