"""report.html renders in a real headless Chromium from disk (file://, no server), with every section and image."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from flowevo.config import load_config
from flowevo.domains.generic import GenericTrainConfig, load_npz, save_model, train_generic
from flowevo.workflows import run_optimize

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
                 if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install -y chromium; "
                                                         "`make browser` does it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--virtual-time-budget=5000"]


def _images(n: int, rng: np.random.Generator):
    """12x12 images with one bright square in the left (class 0) or right (class 1) half."""
    c = np.arange(n) % 2
    x = rng.uniform(0, 0.1, (n, 12, 12))
    for i in range(n):
        r, col = rng.integers(2, 7), rng.integers(1, 3) + 6 * c[i]
        x[i, r:r + 4, col:col + 4] = 1.0
    return x.astype(np.float32), c


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    rng = np.random.default_rng(0)
    x, c = _images(300, rng)
    np.savez(root / "train.npz", x=x, c=c)
    x, c = _images(4, rng)
    np.savez(root / "sources.npz", x=x, c=np.zeros(4, np.int64))
    model = train_generic(load_npz(root / "train.npz"), GenericTrainConfig(steps=150, batch_size=128, judge_steps=60),
                          show_progress=False)
    save_model(model, root / "model")
    cfg = load_config(flags={"optimize.model": str(root / "model"), "optimize.sources": str(root / "sources.npz"),
                             "optimize.run_dir": str(root / "run"), "optimize.target": {"class": 1},
                             "optimize.generations": 3, "optimize.population": 6})
    run_optimize(cfg, show_progress=False)
    return root / "run"


def _chromium(tmp_path, *args):
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=180)


def test_report_renders_in_headless_chromium(image_run, tmp_path):
    from PIL import Image

    url = (image_run / "report.html").resolve().as_uri()
    shot = tmp_path / "report.png"
    res = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", "--dump-dom", url)
    assert shot.is_file(), res.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape == (3000, 1200, 3)
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    inked = float((img.sum(axis=2) < 600).mean())  # not (near-)white
    assert colours > 200 and inked > 0.03, (colours, inked)  # plots and images drawn, not a blank or error page

    dom = res.stdout
    for anchor in ("summary", "objective-curves", "pareto-front", "lineage", "domain-view", "configuration", "files"):
        assert f'id="{anchor}"' in dom, anchor
    for png in ("curves.png", "pareto.png", "lineage.png", "edits.png"):
        assert f'src="{png}"' in dom and (image_run / png).stat().st_size > 5000, png
    assert "target_probability" in dom and "distance_to_source" in dom


MEASURE = """<script>window.addEventListener('load', () => {
  const vw = document.documentElement.clientWidth, t = document.querySelector('table.compact');
  const box = t.closest('.scroll');
  const right = el => el.getBoundingClientRect().right;
  const imgs = [...t.querySelectorAll('img.thumb')];
  document.body.setAttribute('data-measure', JSON.stringify({
    vw, table: right(t), scroll: box.scrollWidth, client: box.clientWidth,
    headers: [...t.querySelectorAll('th')].map(th => [th.textContent, right(th)]),
    links: [...t.querySelectorAll('a[href$=".cif"]')].map(right),
    loaded: imgs.filter(i => i.complete && i.naturalWidth > 100).length, imgs: imgs.length}));
});</script>"""


def _measure(tmp_path, report):
    """Render ``report`` at 1280 px in Chromium (a copy with a measuring script, next to it) and return what it saw."""
    import html as html_lib
    import json
    import re

    probe = report.parent / "measure.html"
    probe.write_text(report.read_text().replace("</body>", MEASURE + "</body>"))
    shot = tmp_path / "shot.png"
    res = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", "--dump-dom", probe.resolve().as_uri())
    found = re.search(r'data-measure="([^"]*)"', res.stdout)
    assert found, res.stderr[-2000:]
    return json.loads(html_lib.unescape(found.group(1)))


@pytest.fixture(scope="module")
def crystal_runs(tmp_path_factory):
    """The crystals demo report and a crystal optimize run report, on tiny settings."""
    from flowevo.workflows import run_train

    val = Path(__file__).resolve().parents[2] / "../shared/data/perov_5/val.csv"
    if not val.is_file():
        pytest.skip(f"Perov-5 data not found at {val}")
    pytest.importorskip("pymatgen")
    from flowevo.demos.crystals import run_crystals_demo

    root = tmp_path_factory.mktemp("crystal_reports")
    run_crystals_demo(root / "demo", val, n=4, population=4, generations=1, cfm_steps=150, surrogate_steps=200,
                      gbr_estimators=30, chgnet_rows=40, max_rows=500)
    run_train(load_config(flags={"train.data": str(val), "train.out": str(root / "model"), "train.steps": 150,
                                 "train.judge_steps": 150, "train.max_rows": 200}), show_progress=False)
    run_optimize(load_config(flags={"optimize.model": str(root / "model"), "optimize.sources": str(root / "model" /
                                    "holdout.csv"), "optimize.rows": 4, "optimize.generations": 1,
                                    "optimize.run_dir": str(root / "run")}), show_progress=False)
    return root / "demo" / "report.html", root / "run" / "report.html"


@pytest.mark.parametrize("which", [0, 1], ids=["demo", "optimize"])
def test_crystal_edits_table_fits_1280px_with_pictures(crystal_runs, tmp_path, which):
    m = _measure(tmp_path, crystal_runs[which])
    assert m["table"] <= m["vw"] <= 1280 and m["scroll"] <= m["client"], m  # nothing cut off, no scrolling needed
    heads = dict(m["headers"])
    assert "CHGNet formation" in heads and "edit" in heads and max(heads.values()) <= m["vw"], heads
    assert len(m["links"]) >= 4 and max(m["links"]) <= m["vw"], m["links"]  # every CIF link on the page
    assert m["imgs"] >= 5 and m["loaded"] == m["imgs"], m  # the pictures of sources and edits load
