"""What each variant changes against its baseline beyond mAP, from the jobs' evaluation passes:
the TIDE error breakdown (errors.md / errors.csv, `<stem>_errors.png`) and every evaluated image's
score against the baseline's at the same seed (images.csv; src.visualize shows the won and lost ones).

    python -m src.compare SWEEP_DIR

Reads each completed job's predictions.json (ultralytics' detections of its evaluation pass, written
when AP by size is on, the default) and the ground truth of the split it was evaluated on (the label
files of the data YAML); writes into the sweep dir, nothing into the jobs. A job without
predictions.json (or whose files cannot be read) is left out with a note; it never stops the rest.
No model is loaded (the label paths are asked of ultralytics, as every reader of a split does); the
end of a multirun runs it after the table (the Hydra callback, `errors: true`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from src.aggregate import errors as E
from src.metrics.errors import Box, image_scores, tide_errors
from src.results import JobDir
from src.results.schema import AP_BY_SIZE_FROM, EVAL_SPLIT, FINAL_VALIDATION, JOB_DIR, evaluated_with, variant_label

log = logging.getLogger(__name__)


def compare_sweep(sweep_dir: str | Path, out_dir: str | Path | None = None) -> tuple[dict[str, Path], list[str]]:
    """errors.csv/.md, images.csv and the error plots of a sweep into `out_dir` (default: the sweep);
    returns (files, notes)."""
    jobs, notes = _completed_jobs(Path(sweep_dir)), []
    out = Path(out_dir or sweep_dir)
    error_rows, score_rows = [], []
    truth_cache: dict[tuple[str, str], tuple[list[str], list[Box]]] = {}
    for job in jobs:
        try:
            errors, scores = _analyse(job, truth_cache)
        except (OSError, ValueError, KeyError) as exc:
            notes.append(f"{_who(job)}: no error breakdown ({type(exc).__name__}: {exc})")
            continue
        ident = {k: job[k] for k in [*E.VARIANT_KEYS, "seed"]}
        error_rows.append({**ident, **errors})
        score_rows.extend({**ident, "image": image, "score": s} for image, s in scores.items())
    if not error_rows:
        return {}, notes
    table = E.error_table(pd.DataFrame(error_rows))
    files = E.write_errors(table, out)
    deltas = E.image_deltas(pd.DataFrame(score_rows))
    files[E.IMAGES_CSV] = out / E.IMAGES_CSV
    deltas.to_csv(files[E.IMAGES_CSV], index=False)
    try:
        files.update(E.plot_errors(table, out / "plots"))
    except Exception as exc:  # a plot must never sink the tables
        log.exception("error plots failed")
        notes.append(f"error plots failed ({type(exc).__name__}: {exc})")
    return files, notes


def _completed_jobs(sweep_dir: Path) -> list[dict[str, Any]]:
    """The completed jobs of a sweep (one per variant and seed), with the block's setup label."""
    from src.aggregate import tables as T
    from src.aggregate.collect import collect
    from src.results import COMPLETED

    runs = collect([str(sweep_dir)]).runs
    if runs.empty:
        return []
    done = T.dedupe(T.prepare(runs[runs["status"] == COMPLETED]))[0]
    labels = T.setup_labels(done)
    jobs = done.to_dict("records")
    for job in jobs:
        job["setup"] = labels.get(tuple(job[k] for k in T.BLOCK), "")
    return jobs


def _analyse(job: dict[str, Any], truth_cache: dict) -> tuple[dict[str, float], dict[str, int]]:
    split = evaluated_with(job, EVAL_SPLIT)
    data_yaml = job.get("data_yaml")
    if not isinstance(data_yaml, str) or not Path(data_yaml).is_file():
        raise FileNotFoundError(f"its data YAML {data_yaml!r} does not exist here")
    key = (data_yaml, split)
    if key not in truth_cache:
        truth_cache[key] = ground_truth_of(Path(data_yaml), split)
    images, truth = truth_cache[key]
    path = JobDir(job[JOB_DIR]).predictions(split, job.get(AP_BY_SIZE_FROM) == FINAL_VALIDATION)
    n_classes = len(job["class_names"]) if isinstance(job.get("class_names"), list) else None
    detections = read_predictions(path, n_classes)
    return tide_errors(truth, detections, images), image_scores(truth, detections, images)


def ground_truth_of(data_yaml: Path, split: str) -> tuple[list[str], list[Box]]:
    """The split's image file names and their ground-truth boxes (in pixels, top-left x, y, w, h)."""
    from src.data.images import ground_truth, split_images

    paths = split_images(data_yaml, split)
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"{data_yaml} {split}: two images share a file name; predictions.json cannot tell them apart")
    boxes = []
    for path in paths:
        _, gt = ground_truth(path)
        boxes.extend(Box(path.name, c, x1, y1, x2 - x1, y2 - y1) for c, x1, y1, x2, y2 in gt)
    return names, boxes


def read_predictions(path: Path, n_classes: int | None = None) -> list[Box]:
    """ultralytics' predictions.json as boxes: its category ids on a custom dataset are the class
    index + 1 (`class_map`), its boxes top-left x, y, w, h in the image's pixels."""
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} at {path} (AP by size was off, or the job predates it)")
    boxes = []
    for d in json.loads(path.read_text()):
        cls = int(d["category_id"]) - 1
        if cls < 0 or (n_classes is not None and cls >= n_classes):
            raise ValueError(
                f"{path}: category_id {d['category_id']} is not a class of this dataset (1..{n_classes or '?'})"
            )
        boxes.append(Box(str(d["file_name"]), cls, *map(float, d["bbox"]), float(d["score"])))
    return boxes


def _who(job: dict[str, Any]) -> str:
    variant = variant_label(job.get("attn"), job.get("pos"))
    return f"{job.get('dataset')} · {job.get('model')} {variant} seed {job.get('seed')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", metavar="SWEEP_DIR", help="a sweep directory (its jobs' result.json)")
    args = parser.parse_args(argv)
    from src.aggregate.pipeline import finish_tool, sweep_problem

    problem = sweep_problem(args.sweep, "error breakdown")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from src.runtime import outputs_of, set_environment

    sweep = Path(args.sweep)
    set_environment(outputs_of(sweep))  # before matplotlib loads (its font cache goes under outputs/)
    files, notes = compare_sweep(sweep)
    return finish_tool(sweep, files, notes, f"no error breakdown: no completed job with predictions.json under {sweep}")


if __name__ == "__main__":
    sys.exit(main())
