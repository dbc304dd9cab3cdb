"""`python -m src.visualize` on a tiny trained sweep: both figures, shown in report.md, results untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, RUNTIME_ENV, TINY, files_under, home_of, run_cli
from PIL import Image

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, shared_cache):
    """Two variants trained for one epoch; the end of the multirun draws no figures, the CLI will."""
    out = tmp_path_factory.mktemp("visualize")
    sweep = out / "sweep"
    proc = run_cli(
        "-m", "attn=none,ema", f"hydra.sweep.dir={sweep}", *TINY, outputs=out, cache=shared_cache, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def digests(sweep) -> dict[str, str]:
    """Every job's recorded results, by content."""
    return {
        str(p.relative_to(sweep)): hashlib.sha256(p.read_bytes()).hexdigest()
        for name in ("result.json", "matches.npz", "pr_curve.csv")
        for p in sweep.rglob(name)
    }


def test_visualize_draws_both_figures_and_leaves_results_untouched(sweep):
    assert not list((sweep / "plots").glob("*_cam.png"))
    before = digests(sweep)
    assert len(before) == 6
    env = {k: v for k, v in os.environ.items() if k not in RUNTIME_ENV}
    env.update({"HOME": str(home_of(sweep)), "YOLO_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    home_of(sweep).mkdir(exist_ok=True)
    # a sweep path relative to the working directory, as `make run` gives it
    proc = subprocess.run(
        [sys.executable, "-m", "src.visualize", sweep.name, "--images", "2"],
        cwd=sweep.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    cam, detections = sweep / "plots" / "shapes_yolo11n_cam.png", sweep / "plots" / "shapes_yolo11n_detections.png"
    for figure in (cam, detections):
        with Image.open(figure) as im:
            width, height = im.size
        assert width > 600 and height > 400  # 3 columns (ground truth, none, ema) x 2 rows
    with Image.open(cam) as im:  # the variants' columns hold heatmaps, not empty "no heatmap" panels
        pixels = np.asarray(im.convert("L"))[:, im.size[0] // 3 :]
    assert (pixels > 245).mean() < 0.6
    report = (sweep / "report.md").read_text()
    assert "plots/shapes_yolo11n_cam.png" in report and "plots/shapes_yolo11n_detections.png" in report
    assert digests(sweep) == before
    assert not [p for p in (sweep / "plots").iterdir() if p.name.startswith(".")]  # its scratch dir is gone
    assert files_under(home_of(sweep)) == []


def test_detections_only_without_cams(sweep, tmp_path):
    from src.visualize import draw_sweep

    files, notes = draw_sweep(sweep, images=1, cams=False, out_dir=tmp_path)
    assert sorted(p.name for p in files.values()) == ["shapes_yolo11n_detections.png"] and notes == []


def test_the_figures_show_the_checkpoint_the_table_scored(sweep, tmp_path):
    """eval.checkpoint=last: the figures draw the jobs' last.pt, not best.pt."""
    import json
    import shutil

    from src.results.schema import EVAL_CHECKPOINT, JOB_DIR
    from src.visualize import blocks_of

    assert {v.weights.name for b in blocks_of(sweep)[0] for v in b.variants} == {"best.pt"}
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    for result in copy.glob("*/result.json"):
        record = json.loads(result.read_text())
        record[EVAL_CHECKPOINT] = "last"
        record[JOB_DIR] = str(result.parent)
        result.write_text(json.dumps(record))
    blocks, _ = blocks_of(copy)
    weights = [v.weights for b in blocks for v in b.variants]
    assert len(weights) == 2 and all(w.name == "last.pt" and w.is_file() and copy in w.parents for w in weights)
