"""The README's `uvhmr predict` demo (issues #11, #23), after the main job:

    .venv/bin/python scripts/predict_demo.py [--profile default] [--out predictions/demo] [--n-scored 100]
                                             [--scored-split test]

1. builds a folder with 3 synthetic test images (evenly spaced over results/<profile>/data/test), the
   repository's real photo (tests/data/photos/astronaut.jpg), a corrupt JPEG and a text file, runs
   `uvhmr predict` on it, and copies the overlays of two synthetic images and the photo into
   docs/predict/ for the README (reports/ holds only what the DAG writes). `uvhmr predict` must exit 1
   (two bad inputs).
2. scores `uvhmr predict` (issue #23: mean PCK@0.1 at least 0.7, mean silhouette IoU at least 0.6):
   writes --n-scored synthetic test images (evenly spaced over the test split, as the dataset loader
   gives them for evaluation: `SampleDataset(..., augment=None, occlusion=True, seed=0)`, fixed
   occluders composited) into <out>/scored/inputs, runs ONE `uvhmr predict` over that folder
   (`--detector none`: a test image is already the dataset's crop of the person, the framing the
   models were trained on; the default profile's 128 px images get the whole image under `auto` too),
   and scores each image's <stem>.json and <stem>.obj with `uvhmr.predict_scores.score_prediction`:
     PCK@0.1  the fraction of the ground truth's *visible* LSP-14 joints (`visible`) whose predicted
              2-D joint (the .json's `joints2d`, input pixels) lies within 0.1 x the longer side of
              the bounding box of all 14 ground-truth 2-D joints (`joints2d`) of the ground-truth joint;
     IoU      the predicted mesh (the .obj's faces) projected by the weak-perspective camera of
              `joints2d` and the overlay, rasterised at the pixel centres, against the ground truth's
              whole-body mask (`body_mask`: every body pixel, occluded or not, as rendered);
              the same with the .obj's pinhole camera goes to the JSON as iou_perspective.
   An image predict did not write scores 0 on both. Prints the means and n, and writes them with the
   per-image scores to <out>/predict_scores.json. `--scored-split stage2_train` scores that split
   instead: how predict's choices are measured without looking at the test split.
The exit code is 0 when both runs of `uvhmr predict` did what they should (the scores' targets do not
change it: the printed line says whether they are met).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def test_split(profile: str, split: str = "test"):
    """results/<profile>/data/<split> as evaluate reads the test split: no augmentation, its fixed occluders."""
    from uvhmr.data.dataset import SampleDataset
    return SampleDataset(REPO / "results" / profile / "data" / split, joints=14, augment=None, occlusion=True, seed=0)


def write_png(item: dict, path: Path) -> None:
    """A dataset item's image ((3, S, S) float RGB in [0, 1]) as an 8-bit PNG."""
    im = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    cv2.imwrite(str(path), im[:, :, ::-1])


def build_inputs(profile: str, folder: Path, n: int = 3) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    ds = test_split(profile)
    stems = []
    for i in np.linspace(0, len(ds) - 1, n).round().astype(int):
        write_png(ds[int(i)], folder / f"test{i:04d}.png")
        stems.append(f"test{i:04d}")
    shutil.copy(REPO / "tests/data/photos/astronaut.jpg", folder / "astronaut.jpg")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (folder / "notes.txt").write_text("not an image\n")
    return stems + ["astronaut"]


def build_scored_inputs(profile: str, folder: Path, n: int = 100, split: str = "test") -> list[tuple[str, dict]]:
    """n test images evenly spaced over the split, written as PNGs into `folder` (emptied of earlier
    test*.png first) -> [(stem, ground truth)]: joints2d (14, 2) pixels, visible (14,) bool,
    body_mask (S, S) bool, all of the image as written (augment=None: no flip, zoom or rotation)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("test*.png"):
        old.unlink()
    ds = test_split(profile, split)
    out = []
    for i in np.unique(np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int)):
        item = ds[int(i)]
        write_png(item, folder / f"test{i:04d}.png")
        out.append((f"test{i:04d}", {"joints2d": item["joints2d"].numpy().astype(np.float64),
                                     "visible": item["visible"].numpy().astype(bool),
                                     "body_mask": item["body_mask"][0].numpy() > 0.5}))
    return out


def score(profile: str, out: Path, n: int, split: str = "test") -> tuple[int, dict]:
    """Part 2 of the module docstring -> (predict's exit code, the summary written to the JSON)."""
    from uvhmr.predict_scores import score_prediction
    inputs, outputs = out / "scored" / "inputs", out / "scored" / "outputs"
    items = build_scored_inputs(profile, inputs, n, split)
    for stem, _ in items:                        # no earlier run's output is scored for an image predict fails on now
        for ext in ("obj", "json", "png"):
            (outputs / f"{stem}.{ext}").unlink(missing_ok=True)
    uvhmr = Path(sys.executable).parent / "uvhmr"
    r = subprocess.run([str(uvhmr), "predict", str(inputs), "--out", str(outputs), "--profile", profile,
                        "--detector", "none"], cwd=REPO)
    per_image, missing = {}, []
    for stem, gt in items:
        j, o = outputs / f"{stem}.json", outputs / f"{stem}.obj"
        if j.is_file() and o.is_file():
            per_image[stem] = score_prediction(j, o, gt["joints2d"], gt["visible"], gt["body_mask"])
        else:                                    # predict failed on it: nothing to score, a miss
            missing.append(stem)
            per_image[stem] = {"pck": 0.0, "iou": 0.0, "iou_perspective": 0.0}

    # Strict JSON: an undefined score (PCK of an image with no visible joint) is null, left out of the mean.
    per_image = {k: {m: (x if np.isfinite(x) else None) for m, x in v.items()} for k, v in per_image.items()}

    def mean(key):
        v = np.array([np.nan if s[key] is None else s[key] for s in per_image.values()], np.float64)
        ok = np.isfinite(v)
        return (float(v[ok].mean()) if ok.any() else float("nan")), int(ok.sum())

    (p, n_p), (iou, n_i), (iou_p, _) = mean("pck"), mean("iou"), mean("iou_perspective")
    summary = {
        "images": len(items), "split": f"results/{profile}/data/{split}", "predict_exit_code": r.returncode,
        "not_written_by_predict": missing,
        **{k: (x if np.isfinite(x) else None) for k, x in (("mean_pck_0.1", p), ("mean_silhouette_iou", iou),
                                                           ("mean_silhouette_iou_perspective", iou_p))},
        "n_pck": n_p, "n_iou": n_i,
        "target": {"mean_pck_0.1": 0.7, "mean_silhouette_iou": 0.6},
        "target_met": bool(p >= 0.7 and iou >= 0.6),
        "definitions": {
            "pck_0.1": "fraction of the ground truth's visible LSP-14 joints whose predicted 2-D joint (<stem>.json "
                       "joints2d) is within 0.1 x the longer side of the bounding box of all 14 ground-truth 2-D "
                       "joints; images with no visible joint are left out",
            "silhouette_iou": "IoU of the <stem>.obj mesh projected by the weak-perspective camera (that of joints2d "
                              "and the overlay), rasterised at pixel centres, with the ground-truth whole-body mask "
                              "(occluded body pixels included)",
            "silhouette_iou_perspective": "the same by the .obj's pinhole camera (focal_px, principal_point)",
            "missing": "an image predict wrote no .json/.obj for scores 0 on both"},
        "per_image": per_image,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "predict_scores.json").write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    print(f"uvhmr predict on {len(items)} synthetic {split} images exited {r.returncode} (expected 0)"
          + (f"; no outputs for {len(missing)}: {missing}" if missing else ""))
    print(f"predict on {n_p} synthetic {split} images: mean PCK@0.1 {p:.3f} (visible joints; target >= 0.7)")
    print(f"predict on {n_i} synthetic {split} images: mean silhouette IoU {iou:.3f} (target >= 0.6; "
          f"{iou_p:.3f} with the .obj's pinhole camera)")
    print(f"issue #23 targets {'met' if summary['target_met'] else 'NOT met'}; scores in {out / 'predict_scores.json'}")
    return r.returncode, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--out", type=Path, default=REPO / "predictions/demo")
    ap.add_argument("--n-scored", type=int, default=100, help="synthetic images to score (default: 100)")
    ap.add_argument("--scored-split", default="test", choices=("test", "stage2_train"),
                    help="the split scored (default: test; stage2_train to measure a change without the test split)")
    a = ap.parse_args()
    inputs = a.out / "inputs"
    stems = build_inputs(a.profile, inputs)
    uvhmr = Path(sys.executable).parent / "uvhmr"
    r = subprocess.run([str(uvhmr), "predict", str(inputs), "--out", str(a.out / "outputs"), "--profile", a.profile],
                       cwd=REPO)
    print(f"uvhmr predict exited {r.returncode} (expected 1: two bad inputs)")
    written = sorted(p.name for p in (a.out / "outputs").iterdir() if not p.name.startswith("."))
    print(f"{len(written)} files written: {written}")
    keep = REPO / "docs" / "predict"
    keep.mkdir(parents=True, exist_ok=True)
    for stem in stems[:2] + stems[-1:]:
        shutil.copy(a.out / "outputs" / f"{stem}.png", keep / f"{stem}.png")
    print(f"overlays for the README in {keep}")
    scored_rc, _ = score(a.profile, a.out, a.n_scored, a.scored_split)
    return 0 if r.returncode == 1 and len(written) == 3 * len(stems) and scored_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
