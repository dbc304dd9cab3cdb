"""The evaluation protocol (`eval.split`, `eval.checkpoint`): checked before any work, part of a job's
identity, and the final figures really come from the chosen split and checkpoint (real trainings)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import TINY, compose, load_result, run_cli
from omegaconf import OmegaConf
from test_convert import make_visdrone_fixture

from src.config.checks import ConfigError, check_eval
from src.config.evaluation import protocol
from src.config.identity import config_hash, train_key
from src.data.formats.visdrone import convert_visdrone
from src.results import COMPLETED, write_result
from src.results.jobdir import RUN_LOG
from src.results.schema import CONFIG_HASH, EVAL_CHECKPOINT, EVAL_SPLIT, STATUS
from src.sweep.state import DONE, NEW, job_state

quiet = dict(log=lambda *a: None)


def plain(*overrides: str) -> dict:
    return OmegaConf.to_container(compose(*overrides), resolve=True)


def label_counts(labels_dir: Path, nc: int) -> np.ndarray:
    """Ground-truth boxes per class in a YOLO label folder."""
    classes = [int(line.split()[0]) for f in sorted(labels_dir.glob("*.txt")) for line in f.read_text().splitlines()]
    return np.bincount(np.asarray(classes, dtype=np.int64), minlength=nc)


def converted_visdrone(root: Path, raw: Path, splits=("train", "val")) -> Path:
    sizes = {"train": 6, "val": 2, "test-dev": 3}
    for i, split in enumerate(splits):
        convert_visdrone(make_visdrone_fixture(raw, n_images=sizes[split], split=split, seed=i), root, **quiet)
    return root


# ------------------------------------------------------------------------------------------ config


def test_each_dataset_has_its_default_protocol_and_overrides_win():
    assert protocol(plain()) == ("test", "best")  # shapes: train / select on val / report on test
    assert protocol(plain("dataset=visdrone")) == ("val", "best")
    assert protocol(plain("dataset=coco")) == ("val", "best")
    assert protocol(plain("eval.split=val", "eval.checkpoint=last")) == ("val", "last")
    assert protocol({"dataset": {}}) == ("val", "best")  # a config from before the eval block


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["eval.split=bogus"], "unknown eval.split 'bogus'; valid choices: val, test"),
        (["eval.checkpoint=middle"], "unknown eval.checkpoint 'middle'; valid choices: best, last"),
        (["dataset.generator.n_test=0"], "eval.split 'test': dataset 'shapes' has no test split; valid choices: val"),
        (["dataset=coco", "dataset.test_split=null", "eval.split=test"], "dataset 'coco' has no test split"),
    ],
)
def test_bad_eval_values_name_the_value_and_the_valid_choices(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_eval(plain(*overrides))


def test_a_test_split_not_on_disk_fails_naming_how_to_get_it(tmp_path):
    root = converted_visdrone(tmp_path / "VisDrone", tmp_path / "raw")
    cfg = plain("dataset=visdrone", f"dataset.root={root}", "eval.split=test")
    with pytest.raises(ConfigError) as e:
        check_eval(cfg)
    msg = str(e.value)
    assert str(root / "images" / "test-dev") in msg and "eval.split=val" in msg
    assert "VisDrone2019-DET-test-dev.zip" in msg and "make data-visdrone ARCHIVES=DIR" in msg
    check_eval({**cfg, "dry_run": True})  # a dry run reads no data
    check_eval(plain("dataset=visdrone", f"dataset.root={root}"))  # reporting on val needs no test-dev
    converted_visdrone(root, tmp_path / "raw", splits=("test-dev",))
    check_eval(cfg)


def test_eval_is_part_of_the_training_identity(tmp_path):
    """A variant is paired only with a baseline evaluated the same way, and a job done under another
    protocol is not taken for this one."""
    default, other = plain(), plain("eval.checkpoint=last")
    assert train_key(default) != train_key(other) and config_hash(default) != config_hash(other)
    assert train_key(default) == train_key(plain("attn=ema", "seed=3"))  # what a variant may differ in
    write_result(tmp_path, {STATUS: COMPLETED, CONFIG_HASH: config_hash(default)})
    previous = load_result(tmp_path)
    assert job_state(tmp_path, previous, config_hash(default), False, 1800).kind == DONE
    state = job_state(tmp_path, previous, config_hash(other), False, 1800)
    assert state.kind == NEW and state.detail == "config changed"


# ------------------------------------------------------------------------------------------ real trainings

# TINY with 2 validation images and 8 test images: a pass over one split cannot pass for the other
TWO_VAL = [o for o in TINY if not o.startswith("dataset.generator.n_val=")] + [
    "dataset.generator.n_val=2",
    "dataset.generator.n_test=8",
]


@pytest.fixture(scope="module")
def shapes_job(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("eval")
    proc = run_cli("hydra.run.dir=" + str(out / "job"), *TWO_VAL, outputs=out, cache=shared_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "job"


@pytest.mark.e2e
def test_shapes_trains_on_train_selects_on_val_and_reports_on_test(shapes_job):
    from ultralytics.utils.metrics import ap_per_class

    result = load_result(shapes_job)
    assert result["status"] == "completed"
    assert (result[EVAL_SPLIT], result[EVAL_CHECKPOINT]) == ("test", "best")
    # selection on val; the final validation of best.pt is the test pass itself (no second pass)
    assert result["ap_by_size_from"] == "final_validation" and result["best_epoch"] == 1
    assert not (shapes_job / "test").exists()
    data = yaml.safe_load(Path(result["data_yaml"]).read_text())
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/val", "images/test")
    m = np.load(shapes_job / result["matches_file"])
    assert int(m["n_images"]) == 8  # the test split's 8 images, not val's 2
    truth = label_counts(Path(data["path"]) / "labels" / "test", 5)
    assert np.array_equal(np.bincount(m["gt_cls"], minlength=5), truth)
    for name, count in zip(result["class_names"], truth, strict=True):
        assert (result["per_class"][name] or {}).get("instances", 0) == count
    # every figure is that pass's: the metrics, their CI and the per-class AP agree with its matches
    ap = ap_per_class(m["tp"], m["conf"], m["pred_cls"], m["gt_cls"])[5]
    assert ap.mean() == pytest.approx(result["metrics"]["map50_95"], abs=1e-6)
    assert result["metrics_ci"]["point"]["map50_95"] == pytest.approx(result["metrics"]["map50_95"], abs=1e-6)
    assert (shapes_job / "train" / "predictions.json").is_file()  # AP by size from the same pass
    assert {"ap_small", "ap_medium", "coco_map50_95"} <= set(result["metrics"])


@pytest.mark.e2e
def test_eval_checkpoint_chooses_the_weights_validated(shapes_job, tmp_path):
    """best.pt replaced by other weights: `last` still reports last.pt, `best` reports the new best.pt."""
    import torch

    from src.job.training import final_validation

    job = tmp_path / "job"
    shutil.copytree(shapes_job, job)
    result = load_result(job)
    best = job / "train" / "weights" / "best.pt"
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    with torch.no_grad():
        for branch in ckpt["model"].model[-1].cv3:  # Detect's class logits: far more boxes pass the threshold
            branch[-1].bias += 4.0
    torch.save(ckpt, best)
    cfg = OmegaConf.to_container(OmegaConf.load(job / ".hydra" / "config.yaml"), resolve=True)
    data_yaml = Path(result["data_yaml"])
    original = np.load(shapes_job / result["matches_file"])["conf"]

    cfg["eval"]["checkpoint"] = "last"
    last = final_validation(cfg, None, data_yaml, job, by_size=False)
    assert last["ap_by_size_from"] == "evaluation_pass"
    assert np.array_equal(np.load(job / result["matches_file"])["conf"], original)  # last.pt = the old best.pt
    assert last["scores"]["map50_95"] == pytest.approx(result["metrics"]["map50_95"], abs=1e-9)

    cfg["eval"]["checkpoint"] = "best"
    final_validation(cfg, None, data_yaml, job, by_size=False)
    assert len(np.load(job / result["matches_file"])["conf"]) > len(original)


@pytest.mark.e2e
def test_a_bad_eval_split_fails_before_any_training(tmp_path):
    proc = run_cli("eval.split=bogus", "hydra.run.dir=" + str(tmp_path / "job"), *TINY, outputs=tmp_path)
    assert proc.returncode == 2  # refused at the entry point, before Hydra made the job dir
    assert "config error: eval.split='bogus' is not a valid choice; valid choices: val, test" in proc.stderr
    assert not (tmp_path / "job").exists() and not (tmp_path / "cache").exists()


def test_a_split_the_dataset_lacks_fails_in_the_job_before_the_model_is_built(tmp_path):
    proc = run_cli(
        "eval.split=test",
        "dataset.generator.n_test=0",
        "hydra.run.dir=" + str(tmp_path / "job"),
        *TINY,
        outputs=tmp_path,
    )
    assert proc.returncode == 1
    assert "eval.split 'test': dataset 'shapes' has no test split; valid choices: val" in proc.stderr
    result = load_result(tmp_path / "job")
    assert result["status"] == "failed" and result["params"] is None  # before the model was built
    assert not (tmp_path / "job" / "train").exists() and not (tmp_path / "cache").exists()


@pytest.mark.e2e
def test_visdrone_reports_on_test_dev_with_the_last_checkpoint(tmp_path, shared_cache):
    root = converted_visdrone(tmp_path / "VisDrone", tmp_path / "raw", splits=("train", "val", "test-dev"))
    job = tmp_path / "job"
    proc = run_cli(
        "dataset=visdrone",
        f"dataset.root={root}",
        "eval.split=test",
        "eval.checkpoint=last",
        "hydra.run.dir=" + str(job),
        "logger=none",
        "train.imgsz=64",
        "train.epochs=1",
        "train.batch=4",
        "train.workers=0",
        "measure.latency_runs=3",
        "measure.throughput_batch=2",
        "aggregate.bootstrap=50",
        outputs=tmp_path,
        cache=shared_cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = load_result(job)
    assert result["status"] == "completed" and result["dataset"] == "visdrone"
    assert (result[EVAL_SPLIT], result[EVAL_CHECKPOINT]) == ("test", "last")
    assert yaml.safe_load(Path(result["data_yaml"]).read_text())["test"] == "images/test-dev"
    m = np.load(job / result["matches_file"])
    assert int(m["n_images"]) == 3  # test-dev's 3 images (val has 2, train 6)
    assert np.array_equal(np.bincount(m["gt_cls"], minlength=10), label_counts(root / "labels" / "test-dev", 10))


@pytest.mark.e2e
def test_coco_selects_on_minival_and_reports_on_val2017(tmp_path, shared_cache):
    from test_convert import make_coco_fixture

    from src.data.formats.coco import convert_coco

    root = tmp_path / "coco"
    for split in ("train2017", "val2017"):
        js, images_dir = make_coco_fixture(tmp_path / "raw", split=split)
        convert_coco(js, images_dir, root, **quiet)
    job = tmp_path / "job"
    proc = run_cli(
        "dataset=coco",
        f"dataset.root={root}",
        "dataset.minival=true",
        "dataset.minival_size=1",
        "eval.split=test",
        "hydra.run.dir=" + str(job),
        "logger=none",
        "train.imgsz=64",
        "train.epochs=1",
        "train.batch=2",
        "train.workers=0",
        "measure.latency_runs=3",
        "measure.throughput_batch=2",
        "aggregate.bootstrap=50",
        outputs=tmp_path,
        cache=shared_cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = load_result(job)
    assert (result["status"], result[EVAL_SPLIT], result[EVAL_CHECKPOINT]) == ("completed", "test", "best")
    data = yaml.safe_load(Path(result["data_yaml"]).read_text())
    assert len(Path(data["val"]).read_text().splitlines()) == 1 and data["test"] == "images/val2017"
    assert "Using 2 train, 1 val images" in (job / RUN_LOG).read_text()  # the carve-out left training
    m = np.load(job / result["matches_file"])
    assert int(m["n_images"]) == 3  # val2017's 3 images
    assert np.array_equal(np.bincount(m["gt_cls"], minlength=80), label_counts(root / "labels" / "val2017", 80))
