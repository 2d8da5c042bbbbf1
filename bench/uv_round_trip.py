"""The vertices -> UV_l map -> vertices round trip (issue #3) at several map resolutions, per
region of the body, on randomly posed and shaped bodies.

    .venv/bin/python bench/uv_round_trip.py [--uv results/default/uv] [--body resources/body/anny] \\
        [--res 64 128 256] [--n 8]

For each resolution the texel lookup of the layout in `--uv` is built (the 64 and 128 ones are the
workflow's own), every vertex's position is written into the map (barycentric) and read back
(bilinear at its UV, seam copies averaged), and the error is printed in mm: mean and 99th
percentile over all vertices, then per region (body, head, hand, foot: the layout's island
groups) with its share of the total error. Nothing is asserted; the tests pin the 64 and 128
figures.
"""
import argparse

import numpy as np
import torch

from uvhmr.body.model import load_body_model
from uvhmr.uv.assets import load_uv_assets, vertex_groups
from uvhmr.uv.layout import GROUPS
from uvhmr.uv.texels import UVSampler, build_lookup


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uv", default="results/default/uv", help="uv_assets folder")
    ap.add_argument("--body", default="resources/body/anny", help="body-model export")
    ap.add_argument("--res", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--n", type=int, default=8, help="random bodies")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    body = load_body_model(a.body)
    faces = body.faces.numpy()
    uv = load_uv_assets(a.uv, faces)
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(a.n, body.num_joints, 3, generator=g) * 0.3
    with torch.no_grad():
        v = body(pose, body.sample_shape(a.n, seed=0)).vertices
    group = vertex_groups(body)
    print(f"{len(group)} vertices; {a.n} random bodies; error of vertices -> UV_l -> vertices in mm")
    for res in a.res:
        lookup = build_lookup(uv.face_uv, res)
        s = UVSampler(faces, uv.face_uv, lookup)
        with torch.no_grad():
            err = ((s.to_vertices(s.from_vertices(v)) - v).norm(dim=-1) * 1000).numpy()    # (n, V)
        line = [f"{res:4d}x{res:<4d} {int(lookup.mask.sum()):6d} covered texels: mean {err.mean():5.2f}, "
                f"p99 {np.percentile(err, 99):5.2f}"]
        for k, name in enumerate(GROUPS):
            e = err[:, group == k]
            if e.size:
                line.append(f"{name} ({e.shape[1]}) {e.mean():.2f} / {np.percentile(e, 99):.2f} "
                            f"({e.sum() / err.sum():.0%})")
        print(" | ".join(line))


if __name__ == "__main__":
    main()
