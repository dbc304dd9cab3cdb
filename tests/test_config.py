"""Configs compose and check in-process: every option of every group, every study, the checks
that fail before any work, and the hashes that skip, resume and pair jobs."""

from __future__ import annotations

import copy
import re

import pytest
from conftest import compose, group_options
from omegaconf import OmegaConf

from src.arch.positions import edits_position, unedited_preset
from src.config.checks import ConfigError, check_config
from src.config.identity import config_hash, identity, run_name, study_name, train_key
from src.ultralytics_glue.settings import train_arg_names

GROUPS = ("dataset", "attn", "pos", "model", "train", "logger")


def plain(*overrides: str) -> dict:
    return OmegaConf.to_container(compose(*overrides), resolve=True)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_option_of_every_group_composes_and_passes_the_checks(group, option):
    cfg = plain(f"{group}={option}")
    check_config(cfg, train_arg_names())
    if group in ("dataset", "attn", "pos", "model", "logger"):
        assert cfg[group]["name"] == option  # the option's own name is what tables and runs show


@pytest.mark.parametrize("study", group_options("experiment"))
def test_every_study_composes_with_its_sweep_and_passes_the_checks(study):
    cfg = compose(f"experiment={study}", return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params, f"experiment={study} declares no sweep"
    assert str(cfg.hydra.sweep.dir).endswith(study)  # each study writes to outputs/<study>
    for key, values in params.items():  # every swept value composes and checks, one at a time
        for value in str(values).split(","):
            job = plain(f"experiment={study}", f"{key}={value.strip()}")
            check_config(job, train_arg_names())


def test_experiments_folder_is_the_experiment_group():
    from conftest import ROOT

    assert sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml")) == group_options("experiment")


# --------------------------------------------------------------------------------- checks
@pytest.mark.parametrize(
    "overrides,message",
    [
        (["attn=ema", "attn.params.factor=5"], None),  # EMA picks the nearest valid group count
        (
            ["attn=ema", "+attn.params.nope=1"],
            r"unknown parameter 'nope' for attention 'ema'; valid parameters: factor",
        ),
        (["pos.after=[99]"], r"pos.after index 99 is outside the model; valid layer indices are 0\.\.22"),
        (["pos.after=[23]"], r"index 23 is the Detect layer"),
        (["pos.after=[4,4]"], r"lists an index twice"),
        (["pos.after=[10]", "pos.replace=[10]"], r"both in pos.after and pos.replace"),
        (["pos.after=[]", "pos.replace=[1]"], r"maps 16 -> 32 channels"),
        (["model.scale=q"], r"unknown model scale 'q'; valid choices: n, s, m, l, x"),
        (["dataset.kind=zip"], r"unknown dataset.kind 'zip'; valid choices: shapes, yolo"),
        (["train.epochs=0"], r"train.epochs must be a positive integer, got 0"),
        (["train.batch=-1"], None),  # ultralytics' AutoBatch
        (["train.batch=-2"], r"train.batch must be a positive integer"),
        (["seed=1.5"], r"seed must be an integer >= 0, got 1.5"),
        (["+train.seed=3"], r"train.seed is set by the framework"),
        (["+train.foo=1"], r"train.foo is not an ultralytics train argument"),
    ],
)
def test_config_checks_name_the_bad_value_and_the_choices(overrides, message):
    cfg = plain(*overrides)
    if message is None:
        check_config(cfg, train_arg_names())
        return
    with pytest.raises(ConfigError, match=message):
        check_config(cfg, train_arg_names())


def test_unknown_attention_names_the_registered_ones():
    cfg = plain()
    cfg["attn"]["name"] = "emma"
    with pytest.raises(ConfigError, match=r"unknown attn 'emma'; valid choices: .*ema.*none"):
        check_config(cfg)


# --------------------------------------------------------------------------------- hashes
BASE = plain("attn=ema")


def changed(path: str, value) -> dict:
    cfg = copy.deepcopy(BASE)
    node = cfg
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return cfg


@pytest.mark.parametrize(
    "path,value",
    [
        ("train.epochs", 99),
        ("train.lr0", 0.5),
        ("dataset.generator.n_train", 7),
        ("model.scale", "s"),
        ("dataset.names", ["circle"]),
    ],
)
def test_training_settings_change_both_hashes(path, value):
    other = changed(path, value)
    assert config_hash(other) != config_hash(BASE) and train_key(other) != train_key(BASE)


@pytest.mark.parametrize(
    "path,value", [("attn.name", "cot"), ("attn.params.factor", 8), ("pos.after", [4]), ("seed", 3)]
)
def test_the_variant_changes_the_job_but_not_the_baseline_it_pairs_with(path, value):
    other = changed(path, value)
    assert config_hash(other) != config_hash(BASE)
    assert train_key(other) == train_key(BASE)


@pytest.mark.parametrize(
    "path,value",
    [
        ("train.device", "0"),
        ("train.workers", 0),
        ("train.verbose", True),
        ("logger.mode", "online"),
        ("paths.outputs", "/elsewhere"),
        ("measure.latency_runs", 1),
        ("measure.onnx", True),
        ("sweep.stale_after", 5),
        ("plan", True),
        ("aggregate.bootstrap", 0),
        ("aggregate.min_effect", 1.0),
    ],
)
def test_where_and_how_a_job_runs_changes_neither_hash(path, value):
    other = changed(path, value)
    assert config_hash(other) == config_hash(BASE) and train_key(other) == train_key(BASE)


def test_dry_run_is_not_part_of_the_hash_but_skipping_checks_the_status():
    assert config_hash(changed("dry_run", True)) == config_hash(BASE)  # runner compares status too


# ------------------------------------------------------------------------------- identity
def test_identity_and_labels():
    ident = identity(BASE, "neck")
    assert (ident["dataset"], ident["attn"], ident["pos"], ident["model"], ident["seed"]) == (
        "shapes",
        "ema",
        "neck",
        "yolo11n",
        0,
    )
    assert identity(BASE)["pos"] == "neck"  # without Hydra: the preset's own name
    # as configured under its own key; the resolved indices are the job's to record (pos_after, ...)
    assert ident["pos_configured"] == {"after": "neck", "replace": [], "inside": [], "inside_mode": "branch"}
    assert "pos_after" not in ident and "pos_replace" not in ident
    assert edits_position(["attn=ema", "pos.after=[6,10]"]) and edits_position(["+pos.replace=[10]"])
    assert not edits_position(["pos=backbone", "attn=ema"])
    neck = {"name": "neck", "after": "neck"}
    assert unedited_preset(neck, "neck", neck, ["attn=ema"]) == "neck"
    assert unedited_preset({**neck, "after": [6]}, "neck", neck, []) is None  # edited by a study file
    assert unedited_preset(neck, "neck", neck, ["pos.after=neck"]) is None  # edited on the command line
    assert run_name(["attn=cot", "paths.outputs=/x", "hydra.job.num=1", "seed=1"]) == "attn=cot,seed=1"
    assert study_name({"experiment": "quick"}, "config") == "quick"
    assert study_name({"experiment": None}, "config") == "config"


def test_position_label_comes_from_hydras_choice_in_a_real_run(tmp_path):
    """The label a job records is Hydra's choice, or custom:... when the lists were edited."""
    import json
    import subprocess
    import sys

    from conftest import ROOT, TINY

    out = tmp_path / "out"
    args = [
        "attn=ema",
        "pos=backbone_p5",
        "pos.after=[6,10]",
        "dry_run=true",
        "logger=none",
        "measure.onnx=false",
        *TINY,
        f"paths.outputs={out}",
        f"hydra.run.dir={out}/job",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "src.run", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "job" / "result.json").read_text())
    assert result["pos"] == "custom:after6-10" and result["status"] == "dry_run"
    assert result["model_yaml"] == "yolo11n-ema-custom-after6-10.yaml"
    # the preset's role as configured (edited to indices), and the indices it resolved to
    assert result["pos_configured"] == {"after": [6, 10], "replace": [], "inside": [], "inside_mode": "branch"}
    assert (result["pos_after"], result["pos_replace"], result["pos_inside"]) == ([6, 10], [], [])


def test_job_dirname_keeps_short_names_and_shortens_long_ones_uniquely():
    from src.runtime import JOB_DIRNAME_MAX_BYTES, job_dirname

    short = "attn=ema,seed=0"
    assert job_dirname(short) == short
    edge = "x=" + "a" * (JOB_DIRNAME_MAX_BYTES - 2)
    assert job_dirname(edge) == edge  # exactly the limit: as it is
    long_a, long_b = edge + ",seed=0", edge + ",seed=1"
    a, b = job_dirname(long_a), job_dirname(long_b)
    assert a != b and len(a.encode()) == len(b.encode()) == JOB_DIRNAME_MAX_BYTES
    assert a.startswith("x=aaaa") and re.fullmatch(r".*~[0-9a-f]{12}", a) and job_dirname(long_a) == a
    wide = job_dirname("names=" + "é" * 200)  # 2 bytes each: cut on a character boundary
    assert len(wide.encode()) <= JOB_DIRNAME_MAX_BYTES and "\ufffd" not in wide
