"""`hydra/sweeper=adaptive`: seeds only where the answer is still open (README "Adaptive seeds").

A Hydra sweeper beside the entry point, because it composes launching (src.sweep: the grid, job
states) and reporting (src.aggregate: the table and the stopping rule), neither of which may
import the other. Round 1 launches every grid point at seeds 0..first-1 through the configured
`hydra/launcher`; after each round the sweep dir is aggregated with the table's own code and the
sequential rule (`src.aggregate.sequential`) decides each variant; the undecided ones, and their
block's baseline for the pairing, get `seeds.step` more seeds, until every variant is decided, has
`seeds.max`, or `budget` trainings are spent.

Resuming is replaying: the rounds are a function of the results on disk. A run of the same command
walks the rounds again from round 1, launches only the jobs whose dir holds no finished result
(judged by `src.sweep.state`, as `plan` and the runner judge it), and looks at each round with the
seeds that round had, so it reaches the round the killed run was in and goes on from there.

Hydra instantiates sweepers only from its `hydra_plugins` namespace: `register()` (called by
src/run.py before Hydra starts) publishes the class there under `PLUGIN`, the `_target_` of
conf/hydra/sweeper/adaptive.yaml, without a top-level `hydra_plugins/` folder.
"""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from src.config.study import expand
from src.results import BASELINE, read_result_or_none
from src.results.schema import JOB_DIR
from src.sweep.adaptive import block_of, grid_points, job_number, job_overrides, seed_settings
from src.sweep.state import DONE, job_state, stale_after_of

PLUGIN = "hydra_plugins.yolo_attention_ablations"


@dataclass
class Job:
    point: int
    seed: int
    num: int
    overrides: list[str]
    job_dir: Path
    config_hash: str
    dry_run: bool
    stale_after: float


@dataclass
class Stop:
    reason: str  # sequential.DECIDED / MAX_SEEDS / BUDGET
    round: int
    verdict: str
    seeds: int
    claims: Any = None  # the claim p-values it was decided on (kept for later looks' Holm)


@dataclass
class Design:
    """The grid and the rule's settings; `compose(overrides, num)` gives a job's (dir, config)."""

    points: list[list[str]]
    is_base: list[bool]
    first: int
    step: int
    most: int
    budget: int | None
    alpha: float
    rope: float  # pp
    bootstrap: int
    sweep_dir: Path
    compose: Callable[[list[str], int], tuple[Path, dict[str, Any]]]
    subdir_pattern: str
    jobs: dict[tuple[int, int], Job] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from src.aggregate.sequential import seeds_at_look

        self.counts = seeds_at_look(self.first, self.step, self.most)
        if self.budget is not None and (not isinstance(self.budget, int) or self.budget < 1):
            raise ValueError(
                f"hydra.sweeper.budget must be a whole number of trainings >= 1 or null, got {self.budget!r}"
            )
        self.blocks = [block_of(p) for p in self.points]
        self.base_of: dict[tuple, int] = {}
        for i, b in enumerate(self.blocks):
            if self.is_base[i]:
                self.base_of.setdefault(b, i)
        self.variants = [i for i in range(len(self.points)) if not self.is_base[i]]
        if not self.variants:
            raise ValueError(f"hydra/sweeper=adaptive needs variants to decide; the grid has only attn={BASELINE}")
        alone = [",".join(self.points[v]) for v in self.variants if self.blocks[v] not in self.base_of]
        if alone:
            raise ValueError(
                f"no baseline (attn={BASELINE}) in the grid for {alone[0]}: add {BASELINE} to the attn values "
                "(e.g. hydra.sweeper.params.attn=none,ema,cot)"
            )
        first_round = self.trainings({i: self.first for i in range(len(self.points))})
        if self.budget is not None and self.budget < first_round:
            raise ValueError(
                f"hydra.sweeper.budget={self.budget} is less than round 1 needs ({first_round} trainings: "
                f"{len(self.points)} grid point(s) x seeds.first={self.first}); raise it or lower seeds.first"
            )

    def job(self, point: int, seed: int) -> Job:
        key = (point, seed)
        if key not in self.jobs:
            num = job_number(point, seed, len(self.points))
            overrides = job_overrides(self.points[point], seed, num, self.subdir_pattern)
            job_dir, cfg = self.compose(overrides, num)
            from src.config.identity import config_hash

            self.jobs[key] = Job(
                point, seed, num, overrides, job_dir, config_hash(cfg), bool(cfg.get("dry_run")), stale_after_of(cfg)
            )
        return self.jobs[key]

    def trainings(self, seeds: dict[int, int]) -> int:
        """Trainings of a design (point -> seeds): each variant's, plus one baseline per (block, seed)
        (the baseline at several positions is trained once per seed, see src.sweep.election)."""
        variants = sum(n for i, n in seeds.items() if not self.is_base[i])
        base: dict[tuple, int] = {}
        for i, n in seeds.items():
            if self.is_base[i] or n:
                base[self.blocks[i]] = max(base.get(self.blocks[i], 0), n)
        return variants + sum(base.values())

    def fixed_trainings(self) -> int:
        return len(self.variants) * self.most + len(self.base_of) * self.most


class Rounds:
    """The round loop, with the launch passed in: `launch(batch of job overrides)` runs them."""

    def __init__(self, design: Design, launch: Callable[[list[list[str]]], None], log=print) -> None:
        self.d, self.launch, self.log = design, launch, log
        self.seeds = {i: 0 for i in range(len(design.points))}
        self.stops: dict[int, Stop] = {}
        self.keys: dict[int, tuple] = {}  # point -> its table row's key (VARIANT)
        self.last_verdict: dict[int, str] = {}
        self.rounds = 0

    def run(self) -> dict[str, Any]:
        from src.aggregate.sequential import BUDGET, MAX_SEEDS, look_alpha

        d = self.d
        alpha = look_alpha(d.alpha, len(d.counts))
        for r, target in enumerate(d.counts, 1):
            active = [v for v in d.variants if v not in self.stops]
            if not active:
                break
            want = {i: target for i in range(len(d.points))} if r == 1 else self._wanted(active, target)
            if d.budget is not None and r > 1:
                want, dropped = self._within_budget(active, target)
                for v in dropped:
                    self.stops[v] = Stop(BUDGET, r - 1, self.last_verdict.get(v, ""), self.seeds[v])
                if not any(v in want for v in active):
                    break
            self.rounds = r
            self._launch_round(r, want)
            self._look(r, alpha)
            if target == d.most:
                for v in d.variants:
                    if v not in self.stops:
                        self.stops[v] = Stop(MAX_SEEDS, r, self.last_verdict.get(v, ""), self.seeds[v])
            self._write()
        return self._write()

    # ------------------------------------------------------------------ one round
    def _wanted(self, active: list[int], target: int) -> dict[int, int]:
        """Seeds per point after this round: the active variants and their blocks' baselines at `target`."""
        want = {v: target for v in active}
        for v in active:
            want[self.d.base_of[self.d.blocks[v]]] = target
        return want

    def _within_budget(self, active: list[int], target: int) -> tuple[dict[int, int], list[int]]:
        """The variants (in grid order) whose next seeds, with their baseline's, fit in the budget."""
        d, kept, dropped = self.d, {}, []
        for v in active:
            trial = {**self.seeds, **kept, v: target, d.base_of[d.blocks[v]]: target}
            if d.trainings(trial) <= d.budget:
                kept.update({v: target, d.base_of[d.blocks[v]]: target})
            else:
                dropped.append(v)
        return kept, dropped

    def _launch_round(self, r: int, want: dict[int, int]) -> None:
        d = self.d
        jobs = sorted((d.job(i, s) for i, t in want.items() for s in range(self.seeds[i], t)), key=lambda j: j.num)
        for i, t in want.items():
            self.seeds[i] = max(self.seeds[i], t)
        todo = [j for j in jobs if not self._done(j)]
        self.log(
            f"[adaptive] round {r}: {len(jobs)} job(s) ({len(jobs) - len(todo)} already done), "
            f"{d.trainings(self.seeds)} trainings in the design so far"
        )
        if todo:
            self.launch([j.overrides for j in todo])

    @staticmethod
    def _done(job: Job) -> bool:
        previous = read_result_or_none(job.job_dir)
        return job_state(job.job_dir, previous, job.config_hash, job.dry_run, job.stale_after).kind == DONE

    # ------------------------------------------------------------------ the look
    def _look(self, r: int, alpha: float) -> None:
        """Aggregate the design's jobs as the table does and decide each block's variants."""
        import numpy as np

        from src.aggregate import tables as T
        from src.aggregate.collect import collect
        from src.aggregate.sequential import CLAIMS, DECIDED, decide
        from src.aggregate.test_set import CACHE_DIR

        d = self.d
        where = {os.path.abspath(d.jobs[(i, s)].job_dir): i for i in self.seeds for s in range(self.seeds[i])}
        collected = collect([d.sweep_dir])
        runs = collected.runs
        if runs.empty:
            return
        runs = runs[runs[JOB_DIR].astype(str).map(os.path.abspath).isin(where)]
        ablation, _ = T.build_ablation(
            runs,
            collected.metric_columns,
            bootstrap=d.bootstrap,
            cache_dir=d.sweep_dir / CACHE_DIR,
            rope=d.rope / 100,
        )
        prepared = T.prepare(runs)
        for row in prepared.itertuples(index=False):
            point = where.get(os.path.abspath(str(getattr(row, JOB_DIR))))
            if point is not None and not d.is_base[point]:
                self.keys.setdefault(point, tuple(getattr(row, k) for k in T.VARIANT))
        if ablation.empty:
            return
        claim_cols = [f"p_{c}" for c in CLAIMS]
        rows = {tuple(r_[k] for k in T.VARIANT): r_ for r_ in ablation.to_dict("records")}
        by_block: dict[tuple, list[int]] = {}
        for v in d.variants:
            if v in self.keys and self.keys[v] in rows:
                by_block.setdefault(self.keys[v][: len(T.BLOCK)], []).append(v)
        for members in by_block.values():
            claims = np.array(
                [
                    self.stops[v].claims
                    if v in self.stops and self.stops[v].claims is not None
                    else [rows[self.keys[v]][c] for c in claim_cols]
                    for v in members
                ],
                float,
            )
            rejected, verdicts = decide(claims, alpha)
            for v, rej, said, c in zip(members, rejected, verdicts, claims, strict=True):
                if v in self.stops:
                    continue
                self.last_verdict[v] = str(said)
                if rej:
                    self.stops[v] = Stop(DECIDED, r, str(said), self.seeds[v], list(c))

    # ------------------------------------------------------------------ the record
    def _write(self) -> dict[str, Any]:
        from src.aggregate.adaptive import (
            FIXED,
            POINT,
            ROUND,
            ROUNDS,
            ROWS,
            SEEDS,
            SETTINGS,
            STOP,
            TRAININGS,
            VERDICT,
            write_record,
        )
        from src.aggregate.tables import VARIANT

        d = self.d
        rows = []
        seen = [dict(o.split("=", 1) for o in p if "=" in o) for p in d.points]
        varying = {k for k in set().union(*seen) if len({s.get(k) for s in seen}) > 1}
        for v in d.variants:
            stop = self.stops.get(v)
            label = ",".join(o for o in d.points[v] if o.split("=", 1)[0] in varying) or ",".join(d.points[v])
            row = {POINT: label, SEEDS: self.seeds[v]}
            row.update({STOP: stop.reason, ROUND: stop.round, VERDICT: stop.verdict} if stop else {STOP: ""})
            if v in self.keys:
                row.update(dict(zip(VARIANT, (str(k) for k in self.keys[v]), strict=True)))
            rows.append(row)
        record = {
            SETTINGS: {"first": d.first, "step": d.step, "max": d.most, "budget": d.budget, "alpha": d.alpha},
            ROUNDS: self.rounds,
            TRAININGS: d.trainings(self.seeds),
            FIXED: d.fixed_trainings(),
            ROWS: rows,
        }
        write_record(d.sweep_dir, record)
        return record


class AdaptiveSweeper(Sweeper):
    """Hydra's Sweeper API: `setup` gets the launcher, `sweep` runs the rounds through it."""

    def __init__(
        self,
        params: dict[str, str] | None = None,
        seeds: dict[str, int] | None = None,
        budget: int | None = None,
        alpha: float = 0.05,
    ) -> None:
        super().__init__()
        self.params = dict(params or {})
        self.seeds, self.budget, self.alpha = seeds, budget, alpha
        self.hydra_context = self.config = self.launcher = None
        self.launched = 0

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from src.aggregate.pipeline import DEFAULT_BOOTSTRAP
        from src.aggregate.tables import DEFAULT_ROPE

        cfg = self.config
        sweep_dir = Path(str(cfg.hydra.sweep.dir))
        options = cfg.get("aggregate") or {}
        try:
            first, step, most = seed_settings(self.seeds)
            points = grid_points(
                self.params, arguments, OverridesParser.create(config_loader=self.hydra_context.config_loader)
            )
            pattern = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["subdir"]
            is_base = [self._attn(p) == BASELINE for p in points]
            rope = options.get("rope")
            bootstrap = options.get("bootstrap")
            design = Design(
                points,
                is_base,
                first,
                step,
                most,
                self.budget,
                float(self.alpha),
                float(rope if rope is not None else 100 * DEFAULT_ROPE),
                int(bootstrap if bootstrap is not None else DEFAULT_BOOTSTRAP),
                sweep_dir,
                self._compose,
                str(pattern),
            )
        except ValueError as exc:
            print(f"config error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, sweep_dir / "multirun.yaml")
        record = Rounds(design, self._launch).run()
        return record

    def _attn(self, point: list[str]) -> str:
        """The attention a grid point trains (its config's `attn.name`, a `variant=` spelled out)."""
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, [*point, "seed=0"])
        if cfg.get("variant") is None:
            return str(cfg.attn.name)
        study = OmegaConf.to_container(cfg.study, resolve=True) if cfg.get("study") is not None else None
        plain = {"variant": cfg.variant, "study": study, "attn": {"name": str(cfg.attn.name)}, "pos": {}}
        return str(expand(plain)["attn"]["name"])

    def _compose(self, overrides: list[str], num: int) -> tuple[Path, dict[str, Any]]:
        from hydra.core.hydra_config import HydraConfig

        from src.sweep.plan import compose_job

        try:
            return compose_job(self.hydra_context.config_loader, self.config, overrides, num)
        finally:
            HydraConfig.instance().set_config(self.config)

    def _launch(self, batch: list[list[str]]) -> None:
        self.validate_batch_is_legal(batch)
        self.launcher.launch(batch, initial_job_idx=self.launched)
        self.launched += len(batch)


def register() -> None:
    """Publish AdaptiveSweeper as `PLUGIN.AdaptiveSweeper` and register it with Hydra's plugins."""
    from hydra.core.plugins import Plugins

    module = sys.modules.get(PLUGIN)
    if module is None:
        module = sys.modules[PLUGIN] = types.ModuleType(PLUGIN, "this project's Hydra plugins (src.adaptive_sweeper)")
    if not hasattr(module, "AdaptiveSweeper"):
        module.AdaptiveSweeper = type("AdaptiveSweeper", (AdaptiveSweeper,), {"__module__": PLUGIN})
    Plugins.instance().register(module.AdaptiveSweeper)
