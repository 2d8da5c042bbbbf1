"""Build workflow/report/dvc_plots.html: DVC's plot page with vega, vega-lite and vega-embed
inlined, so `dvc plots show` renders offline (DVC's default page loads them from a CDN).

    python workflow/report/build_plots_template.py             # npm pack the pinned versions
    python workflow/report/build_plots_template.py --from DIR  # DIR/<package>/<file>, already unpacked

Each file must match the SHA-256 pinned in vendor/vendor.json. dvc-render fills `{plot_divs}`
(one vegaEmbed call per plot) and `{refresh_tag}`; the page has no `{scripts}` placeholder, which
is where DVC would put its CDN <script> tags.
"""
import argparse
import hashlib
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "vendor"
OUT = HERE / "dvc_plots.html"

PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{refresh_tag}
<title>uvhmr: DVC plots</title>
<!-- Offline page for `dvc plots show` (.dvc/config: plots.html_template). Inlined below, verbatim:
{credits}
  License texts: workflow/report/vendor/. Built by workflow/report/build_plots_template.py. -->
{scripts_inline}
<style>
  body { font-family: sans-serif; margin: 16px; }
  body > div { display: inline-block; vertical-align: top; margin: 8px; }
  img { max-width: 100%; }
</style>
</head>
<body>
<h3>uvhmr: training curves, per-joint errors and Fig. 8 (dvc.yaml `plots:`; data in reports/&lt;profile&gt;/)</h3>
{plot_divs}
</body>
</html>
"""


def pins() -> dict:
    return json.loads((VENDOR / "vendor.json").read_text())


def fetch(workdir: Path) -> dict[str, bytes]:
    """npm pack each pinned package into workdir -> {package: minified build bytes}."""
    out = {}
    for name, pin in pins().items():
        r = subprocess.run(["npm", "pack", f"{name}@{pin['version']}"], cwd=workdir, capture_output=True,
                           text=True, check=True)
        tgz = workdir / r.stdout.strip().splitlines()[-1]
        with tarfile.open(tgz) as t:
            out[name] = t.extractfile(f"package/{pin['file']}").read()
    return out


def build(files: dict[str, bytes]) -> str:
    credits, scripts = [], []
    for name, pin in pins().items():
        data = files[name]
        digest = hashlib.sha256(data).hexdigest()
        if digest != pin["sha256"]:
            raise SystemExit(f"{name}@{pin['version']} {pin['file']}: sha256 {digest}, pinned {pin['sha256']}")
        text = data.decode("utf8")
        if "</script" in text.lower():
            raise SystemExit(f"{name}: contains '</script', cannot be inlined")
        credits.append(f"  {name} {pin['version']} ({pin['file']}, {len(data)} bytes, sha256 {digest}), {pin['license']}")
        # One script element per file; its text is the file, byte for byte (the test re-hashes it).
        scripts.append(f'<script data-package="{name}@{pin["version"]}">{text}</script>')
    # Plain replacements (the page's CSS braces and the scripts' text stay as they are).
    return PAGE.replace("{credits}", "\n".join(credits)).replace("{scripts_inline}", "\n".join(scripts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", type=Path, help="folder with <package>/<file> already unpacked")
    a = ap.parse_args()
    if a.src:
        files = {name: (a.src / name / pin["file"]).read_bytes() for name, pin in pins().items()}
    else:
        with tempfile.TemporaryDirectory() as d:
            files = fetch(Path(d))
    OUT.write_text(build(files), encoding="utf8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
