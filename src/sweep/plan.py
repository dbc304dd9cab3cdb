"""`python -m src.run -m <sweep> plan=true`: every job of a sweep, its state, the compute left.

It starts nothing and writes nothing. Hydra writes multirun.yaml and each job's `.hydra/` the
moment it launches, so the plan never launches: it composes the sweep as Hydra's basic sweeper
does (the same config loader, override parser and `split_arguments`, `hydra.sweeper.params`
first), takes each job's dir from `hydra.sweep.dir` / `hydra.sweep.subdir` with its job number,
and judges what the dir holds with `src.sweep.state`, as the runner will. The `none` baselines are
then assigned as the runner's election would (`src.job.baseline`). Estimates are the median
`train_seconds` of finished, non-copied jobs with the same training settings (train_key), the
same attention where there are such, found under the sweep dir and `paths.outputs`.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.config.identity import config_hash, train_key
from src.config.study import expanded, register_resolver
from src.results import BASELINE, COMPLETED, JobDir, read_result, read_result_or_none
from src.results.schema import ATTN, EPOCHS_DONE, REUSED_FROM, STATUS, TRAIN_KEY, TRAIN_SECONDS
from src.runtime import CONF_DIR
from src.sweep import adaptive as A
from src.sweep.clock import format_seconds
from src.sweep.discover import discover
from src.sweep.election import elect
from src.sweep.grid import basic_sweep_jobs, sweep_arguments
from src.sweep.state import (
    DEFERRED_STATE,
    DONE,
    ELSEWHERE,
    FAILED_STATE,
    NEW,
    RESUMABLE,
    JobState,
    job_state,
    stale_after_of,
)
from src.ultralytics_glue.names import read_results_csv

TRUE = ("true", "1", "yes", "on")
ORDER = (DONE, RESUMABLE, FAILED_STATE, ELSEWHERE, DEFERRED_STATE, NEW)
TRAINS = (NEW, FAILED_STATE, RESUMABLE)  # the states whose jobs will train in the next run


@dataclass
class Planned:
    num: int
    overrides: list[str]
    job_dir: Path
    cfg: dict[str, Any]  # the job's resolved config, as the runner gets it
    previous: dict[str, Any] | None
    state: JobState
    estimate: float | None = None  # seconds of training the next run will spend on it
    estimate_from: int = 0  # finished jobs the estimate comes from


def wants_plan(argv: list[str]) -> bool:
    """Whether the command line asks for a plan (`plan=true`) instead of a launch."""
    return any(
        a.split("=", 1)[0].lstrip("+") == "plan" and a.split("=", 1)[-1].strip().lower() in TRUE
        for a in argv
        if "=" in a and not a.startswith("-")
    )


def parse_argv(argv: list[str]) -> tuple[bool, str, list[str]]:
    """(multirun, config name, overrides without `plan=...`) of a `python -m src.run` command line."""
    multirun, config_name, overrides, rest = False, "config", [], list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in ("-m", "--multirun"):
            multirun = True
        elif arg in ("-cn", "--config-name"):
            config_name = rest.pop(0)
        elif arg.startswith("--config-name="):
            config_name = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            raise SystemExit(f"plan=true: {arg} is not supported here (only -m, -cn and overrides)")
        elif arg.split("=", 1)[0].lstrip("+") != "plan":
            overrides.append(arg)
    return multirun, config_name, overrides


def sweep_jobs(multirun: bool, config_name: str, overrides: list[str]) -> tuple[Path, list[tuple]]:
    """The sweep dir and each job's (number, overrides, dir, resolved config), composed as Hydra
    would launch them, without launching."""
    sweep_dir, jobs, _ = sweep_jobs_and_note(multirun, config_name, overrides)
    return sweep_dir, jobs


def sweep_jobs_and_note(multirun: bool, config_name: str, overrides: list[str]) -> tuple[Path, list[tuple], str]:
    """`sweep_jobs` and a note on what the sweep may add (an adaptive sweep: its later rounds)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    note = ""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="run"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(
            config_name=config_name, overrides=overrides, run_mode=RunMode.MULTIRUN if multirun else RunMode.RUN
        )
        numbered = None
        if multirun and A.is_adaptive(master.hydra.sweeper):
            numbered, note = _adaptive_round_one(master, OverridesParser.create(config_loader=loader))
        elif multirun:
            target = str(master.hydra.sweeper.get("_target_", ""))
            if not target.endswith("BasicSweeper"):
                raise SystemExit(f"plan=true knows Hydra's basic sweeper and hydra/sweeper=adaptive, not {target}")
            batches = basic_sweep_jobs(
                sweep_arguments(master.hydra.sweeper.get("params"), master.hydra.overrides.task),
                OverridesParser.create(config_loader=loader),
            )
        else:
            batches = [list(master.hydra.overrides.task)]
        numbered = numbered if numbered is not None else list(enumerate(batches))
        jobs = []
        for num, job_overrides in numbered:
            where, cfg = compose_job(loader, master, job_overrides, num, multirun)
            shown = [o for o in job_overrides if not o.startswith(f"{A.SUBDIR_KEY}=")]
            jobs.append((num, shown, where, cfg))
        sweep_dir = Path(master.hydra.sweep.dir if multirun else master.hydra.run.dir).absolute()
    return sweep_dir, jobs, note


def compose_job(loader, master, overrides, num: int, multirun: bool = True) -> tuple[Path, dict[str, Any]]:
    """One job's dir and resolved config as its launcher will compose them (number `num`)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict, read_write

    cfg = loader.load_sweep_config(master, list(overrides)) if multirun else master.copy()
    with open_dict(cfg):
        cfg.hydra.job.num = cfg.hydra.job.id = num
    HydraConfig.instance().set_config(cfg)
    where = Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir) if multirun else Path(cfg.hydra.run.dir)
    task = cfg.copy()
    with read_write(task), open_dict(task):  # as Hydra hands it to the job
        del task["hydra"]
    return where.absolute(), expanded(OmegaConf.to_container(task, resolve=True))  # as the job expands it


def _adaptive_round_one(master, parser) -> tuple[list[tuple[int, list[str]]], str]:
    """Round 1 of an adaptive sweep (every point at seeds 0..first-1) and the most it can cost."""
    from omegaconf import OmegaConf

    sweeper = master.hydra.sweeper
    try:
        first, _, most = A.seed_settings(sweeper.get("seeds"))
        points = A.grid_points(sweeper.get("params"), master.hydra.overrides.task, parser)
    except ValueError as exc:
        raise SystemExit(f"config error: {exc}") from None
    pattern = OmegaConf.to_container(master.hydra.sweep, resolve=False)["subdir"]
    jobs = [
        (A.job_number(i, s, len(points)), A.job_overrides(p, s, A.job_number(i, s, len(points)), pattern))
        for s in range(first)
        for i, p in enumerate(points)
    ]
    budget = sweeper.get("budget")
    defaults = (str(master.get("attn", {}).get("name")), master.get("variant"))
    bases = {A.block_of(p) for p in points if A.trains_baseline(p, *defaults)}
    variants = sum(not A.trains_baseline(p, *defaults) for p in points)
    trainings = (variants + len(bases)) * most
    note = (
        f"round 1 of an adaptive sweep: {len(points)} grid point(s) x seeds 0..{first - 1}; later rounds add "
        f"seeds to undecided variants (and their baseline) up to seeds.max={most}: at most {len(points) * most} "
        f"job(s), {trainings} trainings (the fixed design)"
        + (f"; budget={budget} trainings" if budget is not None else "")
    )
    return jobs, note


def plan(multirun: bool, config_name: str, overrides: list[str]) -> tuple[Path, list[Planned]]:
    """Every job of the sweep with its state and estimate."""
    sweep_dir, planned, _ = plan_and_note(multirun, config_name, overrides)
    return sweep_dir, planned


def plan_and_note(multirun: bool, config_name: str, overrides: list[str]) -> tuple[Path, list[Planned], str]:
    """`plan` and what the sweep may add beyond these jobs (an adaptive sweep's later rounds)."""
    sweep_dir, jobs, note = sweep_jobs_and_note(multirun, config_name, overrides)
    planned = []
    for num, job_overrides, job_dir, cfg in jobs:
        previous = read_result_or_none(job_dir)
        state = job_state(job_dir, previous, config_hash(cfg), bool(cfg.get("dry_run")), stale_after_of(cfg))
        planned.append(Planned(num, job_overrides, job_dir, cfg, previous, state))
    assign_baselines(planned)
    estimate(planned, reference_results([sweep_dir, *{Path(p.cfg["paths"]["outputs"]) for p in planned}]))
    return sweep_dir, planned, note


def assign_baselines(planned: list[Planned]) -> None:
    """As the runner's election will (`src.sweep.election`): per (train_key, seed), the baseline job
    that holds (or will do) the training keeps its state; its twins become `deferred to a baseline`
    naming it."""
    groups: dict[tuple, list[Planned]] = {}
    for p in planned:
        if p.cfg["attn"]["name"] == BASELINE and not p.cfg.get("dry_run"):
            groups.setdefault((train_key(p.cfg), p.cfg["seed"]), []).append(p)
    for members in groups.values():
        elected = elect(members, _owner_kind)
        trainer = elected[0] if elected else next((p for p in members if p.state.kind in TRAINS), None)
        if trainer is None or len(members) < 2:
            continue
        what = {DONE: "done", ELSEWHERE: "running elsewhere"}.get(trainer.state.kind, "trains it in this run")
        for p in members:
            if p is not trainer and p.state.kind not in (DONE, ELSEWHERE):
                p.state = JobState(DEFERRED_STATE, f"job {trainer.num}, {what}")


def _owner_kind(p: Planned) -> str:
    """A planned job's state in the election's terms: a copied baseline is done but owns nothing."""
    return NEW if p.state.kind == DONE and (p.previous or {}).get(REUSED_FROM) else p.state.kind


def reference_results(roots: list[Path]) -> list[dict[str, Any]]:
    """Finished trainings (not copies) under `roots`, for estimates."""
    files, _, _ = discover([str(r) for r in roots if r.exists()])
    found = []
    for path in files:
        try:
            res = read_result(path)
        except (ValueError, OSError):
            continue
        if res[STATUS] == COMPLETED and not res.get(REUSED_FROM) and res.get(TRAIN_SECONDS):
            found.append(res)
    return found


def estimate(planned: list[Planned], finished: list[dict[str, Any]]) -> None:
    """Set each training job's estimate: the median over finished jobs with its train_key (its
    attention where there are such), scaled to the epochs left for a resumable one."""
    for p in planned:
        if p.state.kind not in TRAINS or p.cfg.get("dry_run"):
            continue
        key = train_key(p.cfg)
        same = [r[TRAIN_SECONDS] for r in finished if r.get(TRAIN_KEY) == key]
        alike = [r[TRAIN_SECONDS] for r in finished if r.get(TRAIN_KEY) == key and r.get(ATTN) == p.cfg["attn"]["name"]]
        basis = alike or same
        if not basis:
            continue
        left = 1.0
        if p.state.kind == RESUMABLE:
            epochs = p.cfg["train"]["epochs"] or 1
            done = (p.previous or {}).get(EPOCHS_DONE) or len(read_results_csv(JobDir(p.job_dir).results_csv))
            left = max(0.0, 1 - done / epochs)
        p.estimate, p.estimate_from = statistics.median(basis) * left, len(basis)


def render(sweep_dir: Path, planned: list[Planned], note: str = "") -> str:
    """The plan as printed: one line per job, the counts, the compute the next run needs."""
    varying = _varying_keys(planned)
    lines = [f"plan: {len(planned)} job(s) -> {sweep_dir}" + ("" if sweep_dir.exists() else " (does not exist yet)")]
    for p in planned:
        label = ",".join(o for o in p.overrides if o.split("=", 1)[0] in varying) or ",".join(p.overrides) or "defaults"
        est = f"  ~{format_seconds(p.estimate)}" if p.estimate is not None else ""
        lines.append(f"  {p.num:>3}  {label:<40} {p.state}{est}")
    counts = {k: sum(p.state.kind == k for p in planned) for k in ORDER}
    lines.append("  " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    to_train = [p for p in planned if p.state.kind in TRAINS and not p.cfg.get("dry_run")]
    known = [p for p in to_train if p.estimate is not None]
    if to_train:
        total = sum(p.estimate for p in known)
        some = f" for {len(known)} of them" if len(known) < len(to_train) else ""
        lines.append(
            f"  compute for the {len(to_train)} job(s) to train: "
            + (
                f"~{format_seconds(total)} of training{some} (median of finished jobs with the same training settings)"
                if known
                else "no estimate (no finished job with the same training settings yet)"
            )
        )
    if note:
        lines.append(f"  {note}")
    lines.append("  nothing was started or written; drop plan=true to launch")
    return "\n".join(lines)


def _varying_keys(planned: list[Planned]) -> set[str]:
    """The override keys whose values differ between jobs: what tells the jobs apart."""
    seen = [dict(o.split("=", 1) for o in p.overrides if "=" in o) for p in planned]
    return {k for k in set().union(*seen) if len({s.get(k) for s in seen}) > 1} if seen else set()


def main(argv: list[str]) -> int:
    register_resolver()  # a study's ${study_variants:...} sweep
    sweep_dir, planned, note = plan_and_note(*parse_argv(argv))
    print(render(sweep_dir, planned, note), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
