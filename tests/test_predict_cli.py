"""`uvhmr predict` (issue #11): crop and uncrop arithmetic, the person box, the output formats, and
a folder with good and bad files, on small randomly initialised models (no trained run needed)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh

from uvhmr import predict_cli as P
from uvhmr.config import ConfigError
from uvhmr.data.dataset import SampleDataset

from test_predict import model_files  # noqa: F401  (fixture: dmp14, ik14, uvi14 files of random networks)

PHOTO = Path(__file__).parent / "data/photos/astronaut.jpg"


# ----------------------------------------------------------------------------- crop and uncrop

@pytest.mark.parametrize("box", [(40, 30, 100, 150), (-30, 10, 50, 170), (250, -40, 330, 120), (-20, -20, 320, 220)])
def test_crop_is_centred_on_the_box_and_the_box_fills_three_quarters(box):
    c = P.crop_for_box(box, 64)
    x0, y0, x1, y1 = box
    assert c.side == round(max(x1 - x0, y1 - y0) / P.FILL) and c.size == 64
    assert abs(c.x + c.side / 2 - (x0 + x1) / 2) <= 0.5 and abs(c.y + c.side / 2 - (y0 + y1) / 2) <= 0.5
    p = np.array([[x0, y0], [x1, y1], [3.25, 7.5]])
    np.testing.assert_allclose(c.to_image(c.to_crop(p)), p, atol=1e-9)
    with pytest.raises(ValueError):
        P.crop_for_box((10, 10, 5, 20), 64)


def _dots(h: int, w: int, points: np.ndarray, r: int = 3) -> np.ndarray:
    """A black image with a white (2r x 2r)-pixel square centred on each point (integer centres)."""
    im = np.zeros((h, w, 3), np.uint8)
    for x, y in np.round(points).astype(int):
        im[max(y - r, 0):max(y + r, 0), max(x - r, 0):max(x + r, 0)] = 255
    return im


def _centroid(image: np.ndarray, near: np.ndarray, radius: float) -> np.ndarray:
    """Brightness centroid (continuous pixel coordinates) of the pixels within `radius` of `near`."""
    g = image[..., 0].astype(np.float64)
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]] + 0.5
    wgt = g * ((xx - near[0]) ** 2 + (yy - near[1]) ** 2 <= radius ** 2)
    return np.array([(wgt * xx).sum(), (wgt * yy).sum()]) / wgt.sum()


@pytest.mark.parametrize("box", [(60, 40, 140, 190), (-60, 20, 40, 230), (220, -50, 330, 150)])
def test_joints_seen_in_the_crop_land_back_on_the_original_image_within_1px(box):
    """Joints at known pixels of a 300 x 200 image are drawn as dots; the crop (partly outside the
    image for two boxes) is cut and resized to 48 px as the network sees it; a weak-perspective
    camera that puts the joints where the dots appear in the crop is uncropped: the 2-D joints land
    on the original dots within 1 px."""
    h, w, size = 200, 300, 48
    c = P.crop_for_box(box, size)
    rng = np.random.default_rng(0)
    x0, y0, x1, y1 = box
    # Joints inside both the image and the crop, away from the crop's edge.
    lo = np.maximum([x0, y0], [8, 8]) + 4
    hi = np.minimum([x1, y1], [w - 8, h - 8]) - 4
    pts = []
    while len(pts) < 8:                                     # dots apart, so each is measured alone
        p = np.round(rng.uniform(lo, hi))
        if all(np.abs(p - q).max() > 20 for q in pts):
            pts.append(p)
    joints_px = np.array(pts)
    crop = P.cut(_dots(h, w, joints_px), c)
    assert crop.shape == (size, size, 3)
    # What lies outside the image is black.
    outside = c.to_image(np.stack(np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5), -1))
    far_out = (outside[..., 0] < -c.side / size) | (outside[..., 0] > w + c.side / size) | \
              (outside[..., 1] < -c.side / size) | (outside[..., 1] > h + c.side / size)
    assert (crop[far_out] == 0).all()
    seen = np.array([_centroid(crop, q, 5 * size / c.side + 1) for q in c.to_crop(joints_px)])
    # A camera and root-relative joints that project exactly onto what the crop shows.
    s, t = 0.9, np.array([0.05, -0.1])
    X = np.concatenate([(2 * seen / size - 1) / s - t, rng.normal(0, 0.2, (len(seen), 1))], 1)
    back = P.weak_to_image(X, np.array([s, *t]), c)
    assert np.abs(back - joints_px).max() < 1.0


def test_uncrop_is_the_weak_projection_mapped_out_of_the_crop():
    rng = np.random.default_rng(1)
    X = rng.normal(0, 0.4, (14, 3))
    cam = np.array([0.8, 0.1, -0.05])
    for c in (P.Crop(-37, 12, 211, 64), P.Crop(5, -80, 90, 224), P.Crop(0, 0, 64, 64)):
        q = (cam[0] * (X[:, :2] + cam[1:]) + 1) * c.size / 2         # the dataset's convention, crop pixels
        np.testing.assert_allclose(P.weak_to_image(X, cam, c), q * c.side / c.size + [c.x, c.y], atol=1e-9)
        # The .obj's perspective camera puts the root, and points at the root's depth, where the weak one does.
        K, T = P.perspective_camera(cam, c, 320, 240)
        flat = X * [1, 1, 0]
        proj = (flat + T) @ K.T
        np.testing.assert_allclose(proj[:, :2] / proj[:, 2:], P.weak_to_image(flat, cam, c), atol=1e-6)
        assert K[0, 0] == pytest.approx(P.FOCAL_CROPS * c.side) and T[2] > 0
    assert P.perspective_camera(np.array([0.0, 0, 0]), P.Crop(0, 0, 64, 64), 64, 64)[1] is None


# ----------------------------------------------------------------------------- finding the person

def test_person_box_given_detected_or_the_whole_image(monkeypatch):
    small = np.zeros((64, 48, 3), np.uint8)
    assert P.find_person(small, (1, 2, 30, 40)).source == "bbox"
    b = P.find_person(small, None)
    assert b.source == "whole_image" and b.xyxy == (0, 0, 48, 64) and b.fill == 1.0 and "smaller than" in b.note
    assert P.crop_for_box(b.xyxy, 64, b.fill) == P.Crop(-8, 0, 64, 64)       # the whole image, centred, padded
    big = np.full((400, 300, 3), 128, np.uint8)
    assert P.find_person(big, None, detector="none").source == "whole_image"
    monkeypatch.setattr(P, "hog_available", lambda: True)
    monkeypatch.setattr(P, "detect_person", lambda im: ((100.0, 40.0, 164.0, 168.0), 1.2))
    b = P.find_person(big, None)
    assert b.source == "hog" and b.score == 1.2 and b.detection == (100.0, 40.0, 164.0, 168.0)
    np.testing.assert_allclose(b.xyxy, (108, 56, 156, 152))                  # the person inside HOG's window
    monkeypatch.setattr(P, "detect_person", lambda im: None)
    b = P.find_person(big, None)
    assert b.source == "whole_image" and "no person detected" in b.note


def test_hog_detector_runs_on_the_real_photo():
    assert P.hog_available(), "the pinned OpenCV (opencv-contrib-python-headless) ships HOG's people detector"
    image = P.read_image(PHOTO)
    assert image.shape == (256, 256, 3)
    found = P.detect_person(image)                     # a portrait: HOG's full-body detector may find nothing
    assert found is None or (len(found[0]) == 4 and found[1] >= P.HOG_MIN_SCORE)


def test_arguments_and_inputs(tmp_path):
    assert P.parse_bbox("-5,2.5,30,40") == (-5, 2.5, 30, 40)
    for bad in ("1,2,3", "1,2,0,5", "a,b,c,d", "0,0,nan,4"):
        with pytest.raises(ConfigError):
            P.parse_bbox(bad)
    (tmp_path / "d").mkdir()
    for name in ("a.png", "a.jpg", "b.png", ".hidden"):
        (tmp_path / "d" / name).write_bytes(b"x")
    (tmp_path / "d/sub").mkdir()
    files, missing = P.list_inputs([tmp_path / "d", tmp_path / "nope.png"])
    assert [f.name for f in files] == ["a.jpg", "a.png", "b.png"] and [str(m[0].name) for m in missing] == ["nope.png"]
    assert P.output_stems(files) == ["a_jpg", "a_png", "b"]
    with pytest.raises(ValueError, match="not an image"):
        P.read_image(tmp_path / "d/a.png")
    with pytest.raises(ValueError, match="empty"):
        (tmp_path / "empty.png").write_bytes(b"")
        P.read_image(tmp_path / "empty.png")


# ----------------------------------------------------------------------------- outputs

def test_obj_has_the_mesh_and_the_uv_layout(anny, tiny_uv_dir, tmp_path):
    from uvhmr.uv.assets import load_uv_assets
    faces = anny.faces.numpy()
    face_uv = load_uv_assets(tiny_uv_dir).face_uv
    verts = np.random.default_rng(0).normal(0, 0.3, (anny.num_vertices, 3))
    P.write_obj(tmp_path / "m.obj", verts, faces, face_uv, ["test"])
    m = trimesh.load(tmp_path / "m.obj", process=False, maintain_order=True)
    assert m.vertices.shape == (anny.num_vertices, 3) and m.faces.shape == faces.shape
    np.testing.assert_allclose(m.vertices, verts, atol=1e-6)
    np.testing.assert_array_equal(m.faces, faces)
    # Loaded the usual way, trimesh splits vertices along UV seams: one per distinct (vertex, uv) corner.
    t = trimesh.load(tmp_path / "m.obj", process=False)
    corners = np.unique(np.concatenate([faces.reshape(-1, 1), np.round(face_uv.reshape(-1, 2), 6)], 1), axis=0)
    assert t.visual.uv is not None and len(t.vertices) == len(corners)
    # Its texture coordinates are the layout's, corner by corner.
    np.testing.assert_allclose(t.visual.uv[t.faces.reshape(-1)], face_uv.reshape(-1, 2), atol=1e-6)


@pytest.fixture(scope="module")
def trained_run(model_files, tiny_uv_dir, tmp_path_factory):  # noqa: F811
    """results/default/ as the DAG leaves it, holding the random models and the tiny UV assets."""
    r = tmp_path_factory.mktemp("run") / "results"
    root = r / "default"
    for src, dst in (("dmp/dmp14.pt", "models/dmp/dmp14.pt"), ("ik/ik14/seed0.pt", "models/ik/ik14/seed0.pt"),
                     ("uvi/uvi14/seed0.pt", "models/uvi/uvi14/seed0.pt")):
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(model_files / src, root / dst)
    shutil.copytree(tiny_uv_dir, root / "uv")
    return r


def _synthetic_pngs(split: Path, folder: Path, n: int) -> list[np.ndarray]:
    ds = SampleDataset(split, joints=14, augment=None, occlusion=True, seed=0)
    images = []
    for i in range(n):
        im = (ds[i]["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        cv2.imwrite(str(folder / f"synthetic{i}.png"), im[:, :, ::-1])
        images.append(im)
    return images


def test_folder_with_two_images_a_corrupt_file_and_a_text_file(trained_run, anny, anny_dir, tiny_split, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    images = _synthetic_pngs(tiny_split, src, 2)
    good = (src / "synthetic0.png").read_bytes()
    (src / "corrupt.png").write_bytes(good[:60] + bytes(200))           # a PNG header, then garbage
    (src / "notes.txt").write_text("not an image\n")
    out = tmp_path / "out"
    r = subprocess.run([str(Path(sys.executable).parent / "uvhmr"), "predict", str(src), "--out", str(out),
                        "--results", str(trained_run), "--body", str(anny_dir), "--batch-size", "3"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    written = sorted(f"synthetic{i}.{e}" for i in range(2) for e in ("obj", "json", "png"))
    assert sorted(p.name for p in out.iterdir() if p.name != P.MANIFEST) == written
    assert sorted(P.read_manifest(out)) == written          # what predict may replace next time
    failed = [line for line in r.stderr.splitlines() if "failed: " in line]
    assert len(failed) == 2 and any("corrupt.png" in m for m in failed) and any("notes.txt" in m for m in failed)
    assert "2 image(s) written" in r.stderr and "2 failed" in r.stderr

    for i, image in enumerate(images):
        j = json.loads((out / f"synthetic{i}.json").read_text())
        assert j["joint_names"][0] == "R_ankle" and len(j["joint_names"]) == 14
        j3, j2 = np.array(j["joints3d"]), np.array(j["joints2d"])
        assert j3.shape == (14, 3) and j2.shape == (14, 2) and np.isfinite(j2).all()
        assert j["box"]["source"] == "whole_image" and j["crop"] == {"x": 0, "y": 0, "side": 48, "size": 48}
        c = P.Crop(**j["crop"])
        np.testing.assert_allclose(j2, P.weak_to_image(j3, np.array(j["camera"]["weak_perspective"]), c), atol=2e-3)
        np.testing.assert_allclose(np.array(j["joints3d_camera"]) - j3, np.tile(j["camera"]["translation"], (14, 1)), atol=2e-6)
        m = trimesh.load(out / f"synthetic{i}.obj", process=False, maintain_order=True)
        assert m.vertices.shape == (anny.num_vertices, 3) and len(m.faces) == len(anny.faces)
        png = cv2.imread(str(out / f"synthetic{i}.png"))
        assert png.shape == (256, 256 + 128, 3)           # the 48 px image drawn at 256 px, and a side view


def test_real_photo_and_a_box_partly_outside(trained_run, anny, anny_dir, tmp_path):
    out = tmp_path / "out"
    o = P.run_predict([PHOTO], out, results=trained_run, body_dir=anny_dir)
    assert o.done == ["astronaut"] and not o.failed
    j = json.loads((out / "astronaut.json").read_text())
    assert j["image_size"] == [256, 256] and j["box"]["source"] in ("hog", "whole_image")
    box = (-40.0, 30.0, 120.0, 250.0)
    o = P.run_predict([PHOTO], out, results=trained_run, body_dir=anny_dir, bbox=box)
    j = json.loads((out / "astronaut.json").read_text())
    assert j["box"]["source"] == "bbox" and j["box"]["xyxy"] == list(box)
    assert j["crop"] == {"x": -106, "y": -6, "side": 293, "size": 48}             # 220 px / 0.75, centred
    assert cv2.imread(str(out / "astronaut.png")).shape == (256, 256 + 128, 3)


def test_missing_models_name_the_file_and_the_main_job(tmp_path, anny_dir):
    with pytest.raises(FileNotFoundError, match=r"dmp14\.pt.*run the main job first"):
        P.run_predict([PHOTO], tmp_path / "out", results=tmp_path / "results", body_dir=anny_dir)
    assert not (tmp_path / "out").exists()
