"""DVC plots: the data the report writes, dvc.yaml's `plots:`, and the offline page template."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from uvhmr.config import load_params
from uvhmr.report.tables import build_plots, training_curves
from uvhmr.workflow import per_joint_targets, report_plots

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TEMPLATE = REPO / "workflow/report/dvc_plots.html"
PIPELINE = load_params(REPO / "params.yaml").pipeline
PER_JOINT_PLOTS = per_joint_targets(PIPELINE)
REPORT_PLOTS = report_plots(PIPELINE)


def chromium() -> str:
    """A headless-capable Chromium: the system's, else Debian's installed as root (about 20 s)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    assert os.geteuid() == 0 and shutil.which("apt-get"), "no chromium, and not root on Debian to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert r.returncode == 0, (r.stdout + r.stderr)[-1500:]
    return shutil.which("chromium")


def test_offline_template_inlines_the_pinned_vega_builds():
    text = TEMPLATE.read_text(encoding="utf8")
    pins = json.loads((REPO / "workflow/report/vendor/vendor.json").read_text())
    scripts = re.findall(r'<script data-package="([^"@]+)@([^"]+)">(.*?)</script>', text, re.S)
    assert [s[0] for s in scripts] == ["vega", "vega-lite", "vega-embed"]      # load order matters
    for name, version, body in scripts:
        assert version == pins[name]["version"]
        assert hashlib.sha256(body.encode("utf8")).hexdigest() == pins[name]["sha256"], name
        assert (REPO / "workflow/report/vendor" / pins[name]["license_file"]).is_file()
    # Offline: no external script, and no {scripts} placeholder (where DVC puts its CDN tags).
    assert not re.search(r"<script[^>]*\ssrc=", text)
    assert "{plot_divs}" in text and "{scripts}" not in text
    assert 500_000 < len(text.encode()) < 1_200_000
    # .dvc/config names it, relative to .dvc/ (DVC's convention).
    cfg = (REPO / ".dvc/config").read_text()
    assert "html_template = ../workflow/report/dvc_plots.html" in cfg


def _dvc_plots():
    raw = yaml.safe_load((REPO / "dvc.yaml").read_text())
    return {next(iter(p)) if isinstance(p, dict) else p: (next(iter(p.values())) if isinstance(p, dict) else {})
            for p in raw["plots"]}


def test_dvc_plots_name_the_report_files_and_the_variants_of_params_yaml():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    variants = params["variants"]
    files = {}
    for title, spec in _dvc_plots().items():
        for f, cols in (spec.get("y") or {title: None}).items():
            for key, name in (("${pipeline.dmp}", PIPELINE.dmp), ("${pipeline.ik}", PIPELINE.ik), ("${pipeline.uvi}", PIPELINE.uvi)):
                f = f.replace(key, name)
            files[f.replace("reports/${profile}/", "")] = cols
    expect = {"plots/train_dmp.csv": list(variants["train_dmp"]), "plots/train_dmp_val.csv": [*variants["train_dmp"], "mean_pose"],
              "plots/train_hmr.csv": ["hmr"], "plots/train_ik.csv": list(variants["train_ik"]),
              "plots/train_uvi.csv": list(variants["train_uvi"])}
    for f, cols in expect.items():
        assert sorted(files[f]) == sorted(cols), f
    for t in PER_JOINT_PLOTS:
        assert files[f"plots/per_joint/{t}.csv"] == "joint"
    assert set(files) - {"figures/fig8_qualitative.png"} == set(REPORT_PLOTS)


def _models(root: Path, variants: dict, seeds=(0, 1), epochs=3) -> Path:
    m = root / "models"
    (m / "dmp").mkdir(parents=True)
    for i, v in enumerate(variants["train_dmp"]):
        rows = "".join(f"{e},{1.0 / e + i},{400 - 10 * e},{288}\n" for e in range(1, epochs + 1))
        (m / "dmp" / f"{v}.csv").write_text("epoch,loss_total,val_j_initial_mpjpe_mm,val_mean_pose_mpjpe_mm\n" + rows)
    (m / "hmr.csv").write_text("epoch,loss_total\n" + "".join(f"{e},{2.0 / e}\n" for e in range(1, epochs + 1)))
    for stage in ("ik", "uvi"):
        for v in variants[f"train_{stage}"]:
            (m / stage / v).mkdir(parents=True)
            for s in seeds:
                (m / stage / v / f"seed{s}.csv").write_text(
                    "epoch,loss_total\n" + "".join(f"{e},{s + 1.0 / e}\n" for e in range(1, epochs + 1)))
    return m


def _metrics():
    from uvhmr.evaluate.metrics import LSP14_NAMES
    return {t: {"per_joint_mpjpe_mm": {j: 100.0 - 10 * k + i for i, j in enumerate(LSP14_NAMES)}}
            for k, t in enumerate(PER_JOINT_PLOTS)}


def test_training_curves_average_seeds_and_per_joint_files_keep_lsp_order(tmp_path):
    variants = yaml.safe_load((REPO / "params.yaml").read_text())["variants"]
    m = _models(tmp_path, variants)
    curves = training_curves(m, PIPELINE)
    assert curves["plots/train_ik.csv"]["ik14"] == {1: 1.5, 2: 1.0, 3: 0.5 + 1 / 3}     # mean of seeds 0, 1
    assert curves["plots/train_dmp_val.csv"]["mean_pose"] == {1: 288.0, 2: 288.0, 3: 288.0}
    out = build_plots(_metrics(), m, PIPELINE)
    assert set(out) == set(REPORT_PLOTS)
    head = out["plots/train_uvi.csv"].splitlines()[0].split(",")
    assert head[0] == "epoch" and sorted(head[1:]) == sorted(variants["train_uvi"])
    lines = out["plots/per_joint/dmp14.csv"].splitlines()
    assert lines[:3] == ["joint,mpjpe_mm", "R_ankle,100.0", "R_knee,101.0"] and len(lines) == 15


def test_dvc_plots_show_writes_an_offline_page(tmp_path):
    """`dvc plots show` with the repository's dvc.yaml and .dvc/config, on report data: every plot
    is embedded, no script comes from the network."""
    d = tmp_path / "repo"
    for name in ("dvc.yaml", "params.yaml", ".dvc/config", "workflow/report"):
        src, dst = REPO / name, d / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    raw = yaml.safe_load((d / "params.yaml").read_text())
    raw["profile"] = "smoke"
    (d / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=d, check=True)
    rep = d / "reports/smoke"
    for name, text in build_plots(_metrics(), _models(tmp_path / "results", raw["variants"]), PIPELINE).items():
        (rep / name).parent.mkdir(parents=True, exist_ok=True)
        (rep / name).write_text(text)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    (rep / "figures").mkdir()
    plt.imsave(rep / "figures/fig8_qualitative.png", np.zeros((8, 8, 3)))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run([str(BIN / "dvc"), "plots", "show", "-o", str(tmp_path / "out")], cwd=d, capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    html = (tmp_path / "out/index.html").read_text(encoding="utf8")
    assert not re.search(r"<script[^>]*\ssrc=[\"']?https?:", html)
    assert "cdn.jsdelivr" not in html
    assert html.count("vegaEmbed('#") == 6          # six vega-lite plots
    assert "fig8_qualitative.png" in html
    # Opened offline in a headless browser, every plot is drawn (vega renders each into a canvas)
    # and Fig. 8 is shown. No network: a dead proxy would stop any request leaving the page.
    r = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                        "--proxy-server=127.0.0.1:9", "--dump-dom", (tmp_path / "out/index.html").as_uri()],
                       capture_output=True, text=True, timeout=180)
    dom = r.stdout
    assert len(re.findall(r'<canvas[^>]*class="marks"', dom)) == 6, (r.stderr[-2000:], dom[:2000])
    assert re.search(r'<img[^>]*src="static/[^"]*fig8_qualitative[.]png"', dom)
