"""What `python -m src.run -m` does when a sweep ends: the table, the figures, the W&B aggregate run,
the exit status. A Hydra callback beside the entry point, because it composes the layers below it
(src.aggregate, torch-free; src.visualize, torch; src.tracking, W&B; src.sweep.outcome, the status),
none of which may import another's.

Registered in conf/config.yaml:

    hydra:
      callbacks:
        aggregate:
          _target_: src.sweep_end.AggregateOnMultirunEnd
          # plots: true   curves: true   quiet: false   out_dir: null   exit_on_problems: true
          # figures: true   figure_images: 4   errors: true   costs: true   costs_onnx: true   costs_rounds: 10

Before the table, `costs` runs the side-by-side cost pass (src/costs: every architecture timed in
this process, on the jobs' device, interleaved; `costs_onnx` adds ONNX Runtime CPU latency), whose
costs.json the table's latency, throughput and memory columns come from.

After the table is printed, `errors` has src.compare write the TIDE error breakdown (errors.md,
errors.csv, `<stem>_errors.png`) and the per-image scores against the baseline (images.csv) from
the jobs' predictions.json (no model loaded); then `figures` has src.visualize draw the heatmap and detection figures
from the jobs' best.pt (only where there are checkpoints; torch is imported then, not before),
and report.md is written again to show them. The aggregation itself never raises (a broken
aggregation must not hide the trained results); `aggregate_sweep` returns what it found as a
`src.sweep.outcome.SweepOutcome`. After the table is printed and
logged, `on_multirun_end` ends the process with exit status 1 when any job failed, is missing,
was interrupted or is corrupt, or when the aggregation failed (`exit_on_problems: false` turns
that off). That is how the sweep's status reaches the shell: Hydra returns nothing from a
multirun, and the jobs themselves never raise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from src.sweep.outcome import SweepOutcome

log = logging.getLogger(__name__)


class AggregateOnMultirunEnd(Callback):
    def __init__(
        self,
        plots: bool = True,
        curves: bool = True,
        quiet: bool = False,
        out_dir: str | None = None,
        exit_on_problems: bool = True,
        figures: bool = True,
        figure_images: int = 4,
        errors: bool = True,
        costs: bool = True,
        costs_onnx: bool = True,
        costs_rounds: int = 10,
    ) -> None:
        self.plots, self.curves, self.quiet, self.out_dir = plots, curves, quiet, out_dir
        self.exit_on_problems = exit_on_problems
        self.figures, self.figure_images, self.errors = figures, figure_images, errors
        self.costs, self.costs_onnx, self.costs_rounds = costs, costs_onnx, costs_rounds

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        outcome = self.aggregate_sweep(config)
        if self.exit_on_problems and outcome.exit_code:
            raise SystemExit(outcome.exit_code)  # Hydra's callback runner lets SystemExit through

    def aggregate_sweep(self, config: Any) -> SweepOutcome:
        """Tables, plots and report of the sweep, printed and logged; never raises."""
        sweep_dir = None
        try:
            sweep_dir = str(config.hydra.sweep.dir)
            if self.costs:
                _cost_pass(config, sweep_dir, onnx=self.costs_onnx, rounds=self.costs_rounds, quiet=self.quiet)
            from src.aggregate.pipeline import aggregate

            options = config.get("aggregate") or {}  # conf/config.yaml `aggregate:`: bootstrap, min_effect
            summary = aggregate(
                [sweep_dir],
                self.out_dir or sweep_dir,
                plots=self.plots,
                curves=self.curves,
                **{k: options[k] for k in ("bootstrap", "min_effect", "rope") if k in options},
            )
            if not self.quiet:
                print(summary.terminal, flush=True)
            printed = False
            if self.errors and summary.n_completed and summary.out_dir is not None:
                printed |= _compare(sweep_dir, summary, quiet=self.quiet)
            if self.figures and summary.n_completed and summary.out_dir is not None:
                printed |= _draw_figures(sweep_dir, summary, self.figure_images, quiet=self.quiet)
            if printed and summary.closing:  # an adaptive sweep's trainings line stays the last one
                print(summary.closing, flush=True)
            _log_aggregate_run(config, sweep_dir, summary)
            if summary.n_problems:
                log.warning(
                    "sweep %s: %d failed, %d missing, %d interrupted, %d corrupt job(s)",
                    sweep_dir,
                    summary.n_failed,
                    summary.n_missing,
                    summary.n_interrupted,
                    summary.n_corrupt,
                )
            return SweepOutcome(sweep_dir=sweep_dir, summary=summary)
        except BaseException as exc:  # noqa: BLE001 - never let reporting hide the trained results
            if isinstance(exc, KeyboardInterrupt):
                log.warning("aggregation of sweep %s interrupted", sweep_dir)
            else:
                log.exception("aggregation of sweep %s failed; the job results are untouched", sweep_dir)
            return SweepOutcome(sweep_dir=sweep_dir, error=f"{type(exc).__name__}: {exc}")


def _cost_pass(config: Any, sweep_dir: str, onnx: bool, rounds: int, quiet: bool = False) -> None:
    """src/costs over the sweep, before the table (which takes its latency columns from it), on the
    jobs' device; a pass that cannot run leaves its reason in costs.json, which the table repeats."""
    try:
        from src.costs.variants import variants_of

        if not variants_of(Path(sweep_dir))[0]:
            return  # no model to time (every job failed): torch is not even imported
        from src.costs.cost_pass import run_costs
        from src.job.measurements import measure_device
        from src.results.costs import SECONDS, VARIANTS

        train = config.get("train") or {}
        costs = run_costs(sweep_dir, device=measure_device(train.get("device")), onnx=onnx, rounds=rounds)
        if not quiet:
            timed = f"{len(costs[VARIANTS])} variant(s) timed side by side in {costs[SECONDS]:.1f}s"
            print(f"Cost pass: {timed}", flush=True)
    except Exception as exc:  # noqa: BLE001 - the table says the pass did not run, and why
        log.exception("cost pass of sweep %s failed", sweep_dir)
        try:
            from src.results.costs import PASS_ERROR, VARIANTS, write_costs

            write_costs(sweep_dir, {PASS_ERROR: f"{type(exc).__name__}: {exc}", VARIANTS: []})
        except OSError:
            pass


def _compare(sweep_dir: str, summary: Any, quiet: bool = False) -> bool:
    """src.compare's error breakdown and per-image scores (no model loaded), then report.md again."""

    def step():
        from src.compare import compare_sweep

        return compare_sweep(sweep_dir, out_dir=summary.out_dir)

    return _extra_step(
        sweep_dir, summary, step, "Error breakdown and per-image scores ({n} files)", "error breakdown", quiet
    )


def _draw_figures(sweep_dir: str, summary: Any, images: int, quiet: bool = False) -> bool:
    """src.visualize's figures, then report.md again to embed them."""

    def step():
        from src.visualize import draw_sweep

        return draw_sweep(sweep_dir, images=images, out_dir=summary.out_dir)

    return _extra_step(sweep_dir, summary, step, "Drew {n} figure(s) from the checkpoints", "figures", quiet)


def _extra_step(sweep_dir: str, summary: Any, step, done: str, what: str, quiet: bool) -> bool:
    """One step after the table that writes more files (`step()` -> (files, notes); `done` may say
    `{n}`, the number of files); report.md is written again to show them. Returns whether it printed
    a line. A failure is logged only: the table and the results stand."""
    import time

    started = time.perf_counter()
    try:
        files, notes = step()
        summary.notes.extend(notes)
        if files:
            from src.aggregate.pipeline import write_report

            summary.files.update(files)
            write_report(summary)
            if not quiet:
                print(
                    f"{done.format(n=len(files))} in {time.perf_counter() - started:.1f}s: "
                    + ", ".join(p.relative_to(summary.out_dir).as_posix() for p in files.values()),
                    flush=True,
                )
                return True
    except Exception:  # noqa: BLE001 - these files are extra; the table and results stand
        log.exception("%s of sweep %s failed; the tables and results are untouched", what, sweep_dir)
    return False


def _log_aggregate_run(config: Any, sweep_dir: str, summary: Any) -> None:
    """The sweep's `aggregate` W&B run (table, plots, scatter), in the jobs' group."""
    from src import tracking

    logger_cfg = config.get("logger")
    if not logger_cfg or logger_cfg.get("name") == "none":
        return
    from src.config.identity import study_name

    group = tracking.group_name(study_name(config.hydra.runtime.choices, config.hydra.job.config_name), Path(sweep_dir))
    plots = [Path(p) for name, p in (summary.files or {}).items() if str(p).endswith(".png")]
    tracking.log_aggregate(
        logger_cfg,
        group=group,
        out_dir=Path(sweep_dir),
        table=summary.ablation,
        plots=plots,
        per_class=summary.per_class,
    )
