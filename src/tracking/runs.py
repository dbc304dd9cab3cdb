"""The W&B run lifecycle: open a job's or the aggregate's run, log into it, finish it, tear W&B down.

W&B never fails a training: every failure (import error, bad mode, unwritable dir, no network,
init timeout, a full disk...) logs one warning and turns the tracker into a no-op. Online without
an API key, or when an online start fails, the run falls back to offline (and says so): nothing
is lost, `make sync` uploads it later.

Nothing is written outside the given dir: besides `dir=`, WANDB_CACHE_DIR, WANDB_CONFIG_DIR,
WANDB_DATA_DIR and WANDB_ARTIFACT_DIR point into `<dir>/wandb/.cache|.config|.data|.artifacts`
while the run is open (a value the user set is left alone and wins), and the W&B service process
is shut down after each run when no other run is open, so the next job's service writes its logs
into that job's dir. (Only the service's transient socket/port files go to the system temp dir.)
A self-hosted server set up with `wandb login --host` keeps its base URL in ~/.config/wandb: set
WANDB_BASE_URL (or WANDB_CONFIG_DIR) for such runs.

wandb is imported only when a run starts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from src.results import COMPLETED, DRY_RUN, FAILED
from src.tracking.keys import (
    ABLATION_TABLE,
    CFG,
    EPOCH,
    ERROR,
    JOB_TYPE_AGGREGATE,
    JOB_TYPE_TRAIN,
    PER_CLASS_TABLE,
    PLOT_PREFIX,
    STATUS,
    TRADEOFF_CHART,
    TRADEOFF_X,
    TRADEOFF_Y,
)
from src.tracking.payloads import (
    clean_tags,
    epoch_row,
    identity_scalars,
    plain,
    summary_from_result,
    table_frame,
    tradeoff_frame,
)
from src.tracking.settings import api_key_available, logger_settings

log = logging.getLogger(__name__)

DIR_VARS = {
    "WANDB_CACHE_DIR": ".cache",
    "WANDB_CONFIG_DIR": ".config",
    "WANDB_DATA_DIR": ".data",
    "WANDB_ARTIFACT_DIR": ".artifacts",
}
_FINISHED_OK = (COMPLETED, DRY_RUN)


class JobTracker:
    """One job's W&B run. Every method is safe to call at any time: after a W&B failure (or with
    logger=none) it does nothing. Also a context manager: an exception inside ends the run failed."""

    def __init__(self, run: Any = None, env: _EnvDirs | None = None, label: str = "") -> None:
        self._run = run
        self._env = env
        self._label = label
        self._warned = False
        self._finished = run is None

    @property
    def active(self) -> bool:
        """True while a W&B run is open."""
        return self._run is not None and not self._finished

    @property
    def run_id(self) -> str | None:
        return getattr(self._run, "id", None)

    @property
    def run_dir(self) -> Path | None:
        """The run's own directory (`<job_dir>/wandb/offline-run-...`), None without a run."""
        directory = getattr(getattr(self._run, "settings", None), "sync_dir", None)
        return Path(directory) if directory else None

    def log_epoch(self, epoch: int, values: Mapping[str, Any]) -> None:
        """One history row: `values` (ultralytics' names are fine) at step `epoch`."""
        if not self.active:
            return
        try:
            row = epoch_row(epoch, values)
            self._run.log(row)
        except Exception as exc:  # noqa: BLE001 - W&B must never fail a training
            self._fail("log_epoch", exc)

    def finish(self, result: Mapping[str, Any]) -> None:
        """Final summary from the job's result dict, then end the run (failed unless it completed)."""
        if not self.active:
            return
        try:
            result = dict(result or {})
            for key, value in summary_from_result(result).items():
                self._run.summary[key] = value
            ok = result.get(STATUS) in _FINISHED_OK
            if not ok:
                note = str(result.get(ERROR) or f"job ended with status {result.get(STATUS)!r}")
                if result.get("traceback"):
                    note += "\n\n" + str(result["traceback"])[-4000:]
                self._run.notes = note
            self._close(exit_code=0 if ok else 1)
        except Exception as exc:  # noqa: BLE001
            self._fail("finish", exc)

    def __enter__(self) -> JobTracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self.finish({STATUS: FAILED, ERROR: f"{exc_type.__name__}: {exc}"})
        elif self.active:
            self.finish({STATUS: COMPLETED})

    # ------------------------------------------------------------------------------- internals
    def _close(self, exit_code: int) -> None:
        self._finished = True
        try:
            self._run.finish(exit_code=exit_code)
        finally:
            _release(self._env)
            self._env = None

    def _fail(self, where: str, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "W&B %s failed (%s: %s); W&B logging is off for %s, the training goes on",
                where,
                type(exc).__name__,
                exc,
                self._label or "this job",
            )
        if not self._finished:
            self._finished = True
            try:
                self._run.finish(exit_code=1)
            except Exception:  # noqa: BLE001 - best effort: the run is already broken
                pass
            _release(self._env)
            self._env = None


def group_name(experiment: str, sweep_dir: Path) -> str:
    """The W&B group of a sweep: the experiment (Hydra config name) and the sweep directory's name."""
    return f"{experiment}-{Path(sweep_dir).name}"


def start_job_run(
    logger_cfg: Mapping[str, Any] | None,
    cfg: Mapping[str, Any],
    job_dir: Path,
    *,
    group: str,
    name: str,
    tags: Sequence[str],
    identity: Mapping[str, Any] | None = None,
) -> JobTracker:
    """Open this job's run under `<job_dir>/wandb/` (a no-op tracker for logger=none or on failure).

    `cfg` is the resolved Hydra config (a plain dict, or a DictConfig); `identity` optionally
    overrides the top-level scalars derived from it (e.g. pos="custom:after6").
    """
    label = f"job {name!r}"
    try:
        settings = logger_settings(logger_cfg)
        if settings is None:
            return JobTracker()
        resolved = plain(cfg)
        config = {
            **identity_scalars(resolved),
            **{k: v for k, v in dict(identity or {}).items() if v is not None},
            CFG: resolved,
        }
        run, env = _init(
            settings,
            Path(job_dir),
            label,
            group=group,
            name=name,
            job_type=JOB_TYPE_TRAIN,
            tags=[*tags, *settings["tags"]],
            config=config,
        )
    except Exception as exc:  # noqa: BLE001
        _warn_start(label, exc)
        return JobTracker()
    if run is None:
        return JobTracker()
    tracker = JobTracker(run, env, label)
    try:
        run.define_metric(EPOCH)
        run.define_metric("*", step_metric=EPOCH)
    except Exception as exc:  # noqa: BLE001
        tracker._fail("define_metric", exc)
    return tracker


def log_aggregate(
    logger_cfg: Mapping[str, Any] | None,
    *,
    group: str,
    out_dir: Path,
    table: Any,
    plots: Sequence[Path],
    per_class: Any = None,
) -> None:
    """The sweep's aggregate run (job_type="aggregate", same group) under `<out_dir>/wandb/`:
    the ablation table, the per-class table (per_class.csv's rows), the plots (PNG, the heatmap and
    detection figures included) and a mAP50-95-vs-GFLOPs scatter. Never raises."""
    label = f"the aggregate of {group!r}"
    try:
        settings = logger_settings(logger_cfg)
        if settings is None:
            return
        run, env = _init(
            settings,
            Path(out_dir),
            label,
            group=group,
            name="aggregate",
            job_type=JOB_TYPE_AGGREGATE,
            tags=["aggregate", *settings["tags"]],
            config={"group": group, "rows": int(len(table)) if table is not None else 0},
        )
    except Exception as exc:  # noqa: BLE001
        _warn_start(label, exc)
        return
    if run is None:
        return
    tracker = JobTracker(run, env, label)
    try:
        import wandb

        payload: dict[str, Any] = {}
        if table is not None:
            payload[ABLATION_TABLE] = wandb.Table(dataframe=table_frame(table))
            scatter = tradeoff_frame(table)
            if len(scatter):
                payload[TRADEOFF_CHART] = wandb.plot.scatter(
                    wandb.Table(dataframe=scatter), TRADEOFF_X, TRADEOFF_Y, title="mAP50-95 vs GFLOPs"
                )
        if per_class is not None and len(per_class):
            from src.aggregate.per_class import csv_frame

            payload[PER_CLASS_TABLE] = wandb.Table(dataframe=table_frame(csv_frame(per_class)))
        for path in plots or ():
            path = Path(path)
            if path.suffix.lower() == ".png" and path.is_file():
                key = f"{PLOT_PREFIX}{path.stem}"
                if key in payload:  # same file name in another folder
                    key = f"{PLOT_PREFIX}{path.parent.name}/{path.stem}"
                payload[key] = wandb.Image(str(path))
        if payload:
            run.log(payload)
    except Exception as exc:  # noqa: BLE001
        tracker._fail("log_aggregate", exc)
    tracker.finish({STATUS: COMPLETED})


# ==================================================================================== W&B calls
def _init(settings: dict[str, Any], directory: Path, label: str, **run_args: Any) -> tuple[Any, _EnvDirs | None]:
    """wandb.init into `directory/wandb`; online falls back to offline when it cannot start."""
    import wandb

    directory = directory.resolve()
    (directory / "wandb").mkdir(parents=True, exist_ok=True)
    run_args["tags"] = clean_tags(run_args["tags"])
    mode = settings["mode"]
    if mode == "online" and not api_key_available():
        log.warning(
            "W&B: no API key (set WANDB_API_KEY or run `wandb login`): %s logs offline; "
            "upload it later with `make sync`",
            label,
        )
        mode = "offline"
    env = _EnvDirs(directory / "wandb")
    try:
        try:
            run = _wandb_init(wandb, settings, directory, mode, run_args)
        except Exception as exc:  # noqa: BLE001
            if mode != "online":
                raise
            log.warning(
                "W&B online start failed for %s (%s: %s); logging offline instead (`make sync` uploads it later)",
                label,
                type(exc).__name__,
                exc,
            )
            run = _wandb_init(wandb, settings, directory, "offline", run_args)
    except BaseException:
        _release(env)
        raise
    return run, env


def _wandb_init(wandb: Any, settings: dict[str, Any], directory: Path, mode: str, run_args: dict[str, Any]):
    options = dict(
        silent=True,
        console="off",
        init_timeout=settings["init_timeout"],
        x_disable_stats=not settings["system_metrics"],
    )
    if settings["finish_timeout"] > 0:
        options["finish_timeout"] = settings["finish_timeout"]
    try:
        wb_settings = wandb.Settings(**options)
    except Exception:  # noqa: BLE001 - an option this wandb does not know: keep the essentials
        wb_settings = wandb.Settings(silent=True)
    return wandb.init(
        project=settings["project"],
        entity=settings["entity"],
        dir=str(directory),
        mode=mode,
        reinit="create_new",
        settings=wb_settings,
        **run_args,
    )


class _EnvDirs:
    """Points W&B's cache/config/data/artifact dirs into `base` until released (user values win)."""

    def __init__(self, base: Path) -> None:
        self.set: dict[str, str] = {}
        for var, sub in DIR_VARS.items():
            if not os.environ.get(var):
                os.environ[var] = self.set[var] = str(base / sub)

    def restore(self) -> None:
        for var, value in self.set.items():
            if os.environ.get(var) == value:
                del os.environ[var]
        self.set = {}


def _release(env: _EnvDirs | None) -> None:
    """After a run: stop the W&B service when no run is left open, then restore the env vars."""
    try:
        from wandb.sdk import wandb_setup

        singleton = getattr(wandb_setup, "_singleton", None)
        if singleton is not None:
            open_run = getattr(singleton, "most_recent_active_run", None)  # a property in wandb 0.31
            if callable(open_run):
                open_run = open_run()
            if open_run is None:
                import wandb

                wandb.teardown()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - teardown may sys.exit on a service error
        log.debug("wandb teardown: %s", exc)
    finally:
        if env is not None:
            env.restore()


def _warn_start(label: str, exc: BaseException) -> None:
    log.warning(
        "W&B could not start a run for %s (%s: %s); the training goes on without W&B", label, type(exc).__name__, exc
    )
