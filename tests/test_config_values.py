"""Every value of our own config groups is checked before any work: a walk over the composed config
tries an out-of-range value for each number, flag and choice we own (in-process, fast), and the
issue's bad inputs go through `python -m src.run` as a user types them (no training, key named)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, TINY, cli_command, cli_env, compose
from omegaconf import OmegaConf

from src.config.checks import CHOICES, NUMBERS, ConfigError, check_config
from src.ultralytics_glue.settings import train_arg_names

NOT_OURS = ("attn", "pos", "model", "hydra")  # checked against the registry / the base graph (tests/test_config.py)
COMPOSITIONS = (("logger=wandb",), ("dataset=coco",))  # together they hold every key of our groups


def leaves(node, prefix: str = ""):
    """(dotted key, value) of every scalar in a plain config."""
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from leaves(value, dotted + ".")
        elif not isinstance(value, list):
            yield dotted, value


def bad_values(key: str, value):
    """Out-of-range values for a leaf, or none where it is not a number, flag or choice."""
    if key in CHOICES:
        return ["bogus"]
    if isinstance(value, bool):
        return ["maybe"]
    if isinstance(value, (int, float)) or key in NUMBERS:
        high = NUMBERS[key].high if key in NUMBERS else None
        return [-2] + ([high + 1] if high is not None else [])  # not -1: train.batch=-1 is ultralytics' AutoBatch
    return []


def cases():
    seen = {}
    for overrides in COMPOSITIONS:
        cfg = OmegaConf.to_container(compose(*overrides), resolve=True)
        for key, value in leaves(cfg):
            if key.split(".")[0] not in NOT_OURS and key not in seen:
                for bad in bad_values(key, value):
                    seen.setdefault(key, overrides)
                    yield pytest.param(overrides, key, bad, id=f"{key}={bad}")


def assign(cfg: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        cfg = cfg[part]
    cfg[last] = value


@pytest.mark.parametrize("overrides,key,bad", list(cases()))
def test_every_value_we_own_is_checked_with_its_key_named(overrides, key, bad):
    cfg = OmegaConf.to_container(compose(*overrides), resolve=True)
    assign(cfg, key, bad)
    names = train_arg_names()
    started = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        check_config(cfg, names)
    assert key in str(err.value) and str(bad) in str(err.value)
    assert time.perf_counter() - started < 2  # before any dataset, model or training


def test_the_walk_covers_the_issues_keys():
    walked = {key for _, key, _ in (c.values for c in cases())}
    assert {
        "logger.mode",
        "aggregate.bootstrap",
        "aggregate.rope",
        "aggregate.min_effect",
        "sweep.stale_after",
        "measure.threads",
        "dataset.generator.n_train",
        "dataset.fraction",
        "train.workers",
    } <= walked


def test_unwritable_paths_name_the_path_and_errno_and_the_check_leaves_nothing_behind(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cfg = OmegaConf.to_container(compose(f"paths.outputs={blocker}/out"), resolve=True)
    with pytest.raises(ConfigError, match=rf"paths.outputs={blocker}/out: not a writable directory \(ENOTDIR"):
        check_config(cfg)
    cfg = OmegaConf.to_container(compose(f"paths.outputs={tmp_path}/new/deeper"), resolve=True)
    check_config(cfg)  # creatable: accepted, and the directories the try made are gone again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "x").write_text("")
    check_config(OmegaConf.to_container(compose(f"paths.outputs={tmp_path}/kept"), resolve=True))
    assert (tmp_path / "kept" / "x").exists() and not (tmp_path / "kept" / "cache").exists()


@pytest.mark.parametrize("imgsz,ok", [(64, True), (33, False), (100, False)])
def test_imgsz_must_be_a_multiple_of_the_stride(imgsz, ok):
    cfg = OmegaConf.to_container(compose(f"train.imgsz={imgsz}"), resolve=True)
    if ok:
        check_config(cfg)
        return
    with pytest.raises(
        ConfigError,
        match=rf"train.imgsz={imgsz} is not a multiple of the model's max stride 32; "
        rf"use {imgsz // 32 * 32} or {imgsz // 32 * 32 + 32}",
    ):
        check_config(cfg)


# The issue's bad inputs to `python -m src.run` (sweeps included): each fails in a few seconds, names the key,
# and leaves no training behind.
ISSUE_INPUTS = [
    (
        ["logger=wandb", "logger.mode=bogus"],
        "logger.mode='bogus' is not a valid choice; valid choices: online, offline, disabled",
    ),
    (["aggregate.bootstrap=-5"], "aggregate.bootstrap must be an integer >= 0, got -5"),
    (["sweep.stale_after=-1"], "sweep.stale_after must be a number > 0, got -1"),
    (["train.imgsz=33"], "train.imgsz=33 is not a multiple"),
    (["paths.outputs=/proc/forbidden"], "paths.outputs=/proc/forbidden: not a writable directory (ENOENT"),
    (["-m", "attn=none,ema", "measure.threads=0"], "measure.threads must be"),  # a sweep: checked before launch
    (["-m", "aggregate.bootstrap=-5,-6"], "aggregate.bootstrap must be"),  # swept: every job fails, none trains
]


@pytest.mark.e2e
@pytest.mark.parametrize("args,named", ISSUE_INPUTS, ids=[" ".join(a) for a, _ in ISSUE_INPUTS])
def test_issue_bad_inputs_fail_before_any_work(args, named, tmp_path):
    keys = {a.split("=", 1)[0] for a in args}
    tiny = [o for o in TINY if o.split("=", 1)[0] not in keys and not (o.startswith("logger=") and "logger" in keys)]
    outputs = next((Path(a.split("=", 1)[1]) for a in args if a.startswith("paths.outputs=")), tmp_path / "out")
    cmd = cli_command(*(a for a in args if not a.startswith("paths.outputs=")), *tiny, outputs=outputs)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=cli_env(tmp_path / "out"), capture_output=True, text=True, timeout=30)
    seconds = time.perf_counter() - started
    assert proc.returncode != 0, proc.stdout[-2000:]
    output = proc.stderr + proc.stdout  # a sweep's job logs go to stdout
    assert named in output, output[-2000:]
    assert "Traceback" not in output
    assert not list(tmp_path.rglob("train")), "a training started"
    print(
        f"{' '.join(args)}: exit {proc.returncode}, {seconds:.1f} s:",
        next(line for line in output.splitlines() if named in line),
    )
