from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from src.config.study import register_resolver  # noqa: E402
from src.runtime import set_environment  # noqa: E402

register_resolver()  # a study's ${study_variants:...} sweep, as `python -m src.run` registers it before Hydra

# This test process is an entry point too: what it imports writes under the repo's outputs/.
# Subprocesses get them removed again (see run_cli), so each run sets its own from paths.outputs.
RUNTIME_ENV = set_environment(ROOT / "outputs")

# The smallest real training: a handful of 64 px images, one epoch; not logged, and a sweep's end
# draws no figures or plots and bootstraps 200 resamples. Used by every end-to-end test; a test of
# W&B, figures or plots asks for them after it (`logger=wandb`, `hydra.callbacks.aggregate.plots=true`).
TINY = [
    "dataset.generator.n_train=16",
    "dataset.generator.n_val=8",
    "train.imgsz=64",
    "train.epochs=1",
    "train.batch=8",
    "train.workers=0",
    "measure.latency_runs=3",
    "measure.throughput_batch=2",
    "logger=none",
    "aggregate.bootstrap=200",
    "++hydra.callbacks.aggregate.figures=false",
    "++hydra.callbacks.aggregate.errors=false",
    "++hydra.callbacks.aggregate.plots=false",
    "++hydra.callbacks.aggregate.costs=false",  # the side-by-side cost pass: tests/test_costs.py runs it
    "console=ultralytics",  # ultralytics' own output on the console: tests count its "Starting training for"
]
# What TINY turns off, turned back on: for the tests of W&B runs, figures and plots.
LOGGED_AND_DRAWN = ["logger=wandb", "hydra.callbacks.aggregate.figures=true", "hydra.callbacks.aggregate.plots=true"]


def run_cli(*args: str, outputs: Path, cache: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python -m src.run ...` as a user types it, writing under `outputs`, with an empty HOME
    beside it (see `home_of`) so a test can check that nothing lands in the user's home."""
    return subprocess.run(
        cli_command(*args, outputs=outputs, cache=cache),
        cwd=ROOT,
        env=cli_env(outputs),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn_cli(*args: str, outputs: Path, log: Path, cache: Path | None = None, cwd: Path = ROOT) -> subprocess.Popen:
    """`run_cli` started in the background, stdout and stderr into the file `log` (a pipe nobody
    reads would stall it), in its own process group: for tests that kill it or run two at once."""
    with open(log, "w") as fh:  # the child keeps its own descriptor
        return subprocess.Popen(
            cli_command(*args, outputs=outputs, cache=cache),
            cwd=cwd,
            env=cli_env(outputs),
            stdout=fh,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def cli_command(*args: str, outputs: Path, cache: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "src.run", *args, f"paths.outputs={outputs}"]
    return cmd + ([f"paths.cache={cache}"] if cache is not None else [])


def cli_env(outputs: Path) -> dict[str, str]:
    """The environment of a CLI run: ours without what this test process set for itself, HOME empty."""
    home = home_of(outputs)
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_") and k not in RUNTIME_ENV}
    env.update({"HOME": str(home), "YOLO_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return env


def training_starts(*logs: str) -> int:
    """How many trainings ultralytics started (fresh or resumed) in these logs."""
    return sum(log.count("Starting training for ") for log in logs)


def home_of(outputs: Path) -> Path:
    """The HOME that run_cli gives a run writing under `outputs`."""
    return outputs.with_name(outputs.name + "-home")


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def job_dirs(sweep: Path) -> list[Path]:
    """The job directories of a sweep, in job order."""
    return sorted(
        (d for d in sweep.iterdir() if d.is_dir() and (d / "result.json").exists()),
        key=lambda d: int(d.name.split("_")[0]),
    )


def load_result(job_dir: Path) -> dict:
    return json.loads((job_dir / "result.json").read_text())


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """Dataset cache shared by the end-to-end tests, so the embedded dataset is generated once."""
    return tmp_path_factory.mktemp("cache")


def compose(*overrides: str, return_hydra_config: bool = False):
    """The job config `python -m src.run <overrides>` would get, composed in-process (no subprocess)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=return_hydra_config)


def group_options(group: str) -> list[str]:
    """The options of a config group, as Hydra's search path lists them."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


def position_presets() -> dict[str, dict]:
    """Every `pos` preset as a job gets it (roles or indices), loaded from the configs."""
    from omegaconf import OmegaConf

    return {name: OmegaConf.to_container(compose(f"pos={name}").pos) for name in group_options("pos")}


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout` seconds,
    or as soon as `proc` has exited, with the end of `log`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    pytest.fail(f"condition not met within {timeout:.0f} s (process exit: {proc and proc.poll()})\n{tail}")


def seconds_between(start: str, end: str) -> float:
    """Seconds from one result timestamp (ISO 8601) to another."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def tree_listing(root: Path, exclude: tuple[str, ...] = (".venv",)) -> dict[str, tuple[int, str]]:
    """Every file below `root` (top-level names in `exclude` left out): relative path -> (size,
    sha256); symlinks as their target. Two listings are equal when nothing was added, removed or changed."""
    listing = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in exclude:
            continue
        if path.is_symlink():
            listing[str(rel)] = (-1, os.readlink(path))
        elif path.is_file():
            listing[str(rel)] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return listing


def randomize(module, seed: int = 0):
    """Non-trivial weights and BN statistics (GroupNorm bias included), so equality checks mean something."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return module


def small_model(attn: str | list[str], between: bool = True, inside: bool = True):
    """A small detection model (Conv, C3k2, the module(s), Detect) built by ultralytics from a YAML,
    holding `attn` (or each of a list, one after the other) between layer 1 and Detect and/or (the
    first) inside the C3k2's bottleneck (an AttentionBottleneck): the classes and graph a trained
    model has, built in a fraction of a second."""
    from src import attention
    from src.arch.keys import INSIDE_KEY
    from src.ultralytics_glue.model import build_model

    c = 64  # ema's 32 groups need a channel count above 32
    layers = [[-1, 1, "Conv", [c, 3, 8]], [-1, 1, "C3k2", [c, False]]]  # stride 8: small maps, a cheap build
    names = [attn] if isinstance(attn, str) else list(attn)
    if between:
        layers += [[-1, 1, attention.get_class(a).__name__, attention.yaml_args(a, c)] for a in names]
    spec = {"nc": 2, "backbone": layers, "head": [[[len(layers) - 1], 1, "Detect", ["nc"]]]}
    if inside:
        spec[INSIDE_KEY] = {"layers": [1], "module": names[0], "params": {}, "mode": "branch"}
    return build_model(spec, nc=2)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`: `--dist loadgroup`), the tests that share a module-scoped
    fixture (a training, a built model) go to one worker, so the fixture is built once; every
    other test is dealt out on its own. The `slurm` tests are collected first."""
    for item in items:
        shared = sorted(
            name for name, defs in item._fixtureinfo.name2fixturedefs.items() if defs and defs[-1].scope == "module"
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}:{','.join(shared)}"))
    # the `slurm` chain (one worker, mostly waiting on the scheduler) first, so it overlaps the rest
    items.sort(key=lambda item: item.get_closest_marker("slurm") is None)


def pytest_terminal_summary(terminalreporter):
    """The `slurm` tests by name, outcome and wall time (or why they were skipped): CI shows that
    they ran on the cluster, not just that the suite passed."""
    reports = [
        r
        for key in ("passed", "failed", "skipped", "error")
        for r in terminalreporter.stats.get(key, [])
        if getattr(r, "keywords", {}).get("slurm")
        and r.when in ("call", "setup")
        and (r.when == "call" or r.outcome != "passed")
    ]
    if not reports:
        return
    terminalreporter.section("slurm tests")
    skipped = {r.longrepr[2] for r in reports if r.skipped and isinstance(r.longrepr, tuple)}
    for why in sorted(skipped):  # one line, not one per test
        terminalreporter.line(f"{sum(r.skipped for r in reports)} skipped: {why}")
    for r in sorted((r for r in reports if not r.skipped), key=lambda r: r.nodeid):
        terminalreporter.line(f"{r.outcome:8} {r.duration:6.1f} s  {r.nodeid}")
