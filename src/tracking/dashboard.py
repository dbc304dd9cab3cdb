"""A W&B report for one sweep group: `python -m src.tracking.dashboard GROUP [--project P] [--entity E]`.

The report (built with W&B's own `wandb-workspaces` API) has two panel grids:

* the sweep's training runs (group = GROUP, job type "train"): a parallel-coordinates plot
  attn -> pos -> dataset -> mAP50-95, the mAP50-95 and mAP50 curves over epochs grouped by attn
  (mean and standard error over seeds), and a per-run mAP50-95-vs-GFLOPs scatter;
* the sweep's aggregate run (job type "aggregate"): the ablation table and the
  mAP50-95-vs-GFLOPs scatter of the variants.

Every key a panel names comes from src/tracking/keys.py, where the runs' keys are defined.

Offline (the default, and what works without network) it builds the report and prints it (a
summary, or `--json` for the full spec) and says how to publish it: upload the runs with
`make sync SWEEP=...` (`wandb sync`), then re-run with `--online` (or WANDB_MODE=online), which
needs a W&B API key (WANDB_API_KEY or `wandb login`) and saves the report in the project.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from src.runtime import CONF_DIR
from src.tracking import keys as K
from src.tracking.offline import offline_run_dirs, read_offline_run
from src.tracking.settings import api_key_available

TRAIN_RUNSET = "train runs"
AGGREGATE_RUNSET = "aggregate run"
RUNSET_JOB_TYPES = {TRAIN_RUNSET: K.JOB_TYPE_TRAIN, AGGREGATE_RUNSET: K.JOB_TYPE_AGGREGATE}
OFFLINE_ENTITY = "<entity>"  # stands in for the entity in an offline spec when none is known
NO_API_KEY = (
    "no W&B API key: set WANDB_API_KEY (export WANDB_API_KEY=...) or run `wandb login`, then re-run with --online"
)


class DashboardError(RuntimeError):
    """A report that cannot be published (no API key, project not found, ...); says why."""


def default_logger_cfg() -> dict[str, Any]:
    """conf/logger/wandb.yaml (its project and entity are the defaults here)."""
    import yaml

    path = CONF_DIR / "logger" / "wandb.yaml"
    try:
        return yaml.safe_load(path.read_text()) or {}
    except OSError:
        return {}


def title_of(group: str) -> str:
    return f"YOLO11 attention ablation: {group}"[:128]


def build_report(group: str, *, project: str, entity: str, resolve: bool = False):
    """The report object (not saved). `resolve=True` ties its run sets to entity/project, which
    W&B looks up over the network (needed to save); offline they stay relative to the report."""
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    def runset(name: str) -> Any:
        where = {"entity": entity, "project": project} if resolve else {}
        return wr.Runset(
            name=name,
            **where,
            filters=[expr.Metric("Group") == group, expr.Metric("JobType") == RUNSET_JOB_TYPES[name]],
        )

    identity = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(k)) for k in (K.ATTN, K.POS, K.DATASET)]
    train_panels = [
        wr.ParallelCoordinatesPlot(
            title="attn / pos / dataset -> mAP50-95",
            columns=identity
            + [wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(K.MAP50_95), display_name="mAP50-95")],
            layout=wr.Layout(w=24, h=8),
        ),
        *(
            wr.LinePlot(
                title=f"{label} by epoch, grouped by attn",
                x=K.EPOCH,
                y=[key],
                groupby=wr.Config(K.ATTN),
                groupby_aggfunc="mean",
                groupby_rangefunc="stderr",
                layout=wr.Layout(w=12, h=8),
            )
            for key, label in ((K.MAP50_95, "mAP50-95"), (K.MAP50, "mAP50"))
        ),
        wr.ScatterPlot(
            title="mAP50-95 vs GFLOPs (runs)",
            x=wr.SummaryMetric(K.GFLOPS),
            y=wr.SummaryMetric(K.MAP50_95),
            layout=wr.Layout(w=12, h=8),
        ),
    ]
    aggregate_panels = [
        wr.WeavePanelSummaryTable(table_name=K.ABLATION_TABLE, layout=wr.Layout(w=24, h=12)),
        wr.CustomChart(
            query={"summaryTable": {"tableKey": K.TRADEOFF_TABLE}},
            chart_name="wandb/scatter/v0",
            chart_fields={"x": K.TRADEOFF_X, "y": K.TRADEOFF_Y},
            chart_strings={"title": "mAP50-95 vs GFLOPs (variants)"},
            layout=wr.Layout(w=12, h=8),
        ),
    ]
    return wr.Report(
        project=project,
        entity=entity,
        title=title_of(group),
        width="fluid",
        description=f"Sweep group {group}: one run per job (job type train) and the aggregate run.",
        blocks=[
            wr.H2("Training runs"),
            wr.PanelGrid(runsets=[runset(TRAIN_RUNSET)], panels=train_panels),
            wr.H2("Ablation table and cost trade-off"),
            wr.PanelGrid(runsets=[runset(AGGREGATE_RUNSET)], panels=aggregate_panels),
        ],
    )


# ================================================================================ introspection
def _metric_key(metric: Any, default: str) -> tuple[str, str]:
    """(section, name) of a panel's metric: config / summary / history."""
    import wandb_workspaces.reports.v2 as wr

    if isinstance(metric, wr.Config):
        return "config", metric.name
    if isinstance(metric, wr.SummaryMetric):
        return "summary", metric.name
    if isinstance(metric, wr.Metric):
        return default, metric.name
    return default, str(metric)


def panel_keys(panel: Any) -> dict[str, set[str]]:
    """The run keys one panel reads, by section (config, summary, history, table_columns)."""
    import wandb_workspaces.reports.v2 as wr

    keys: dict[str, set[str]] = {"config": set(), "summary": set(), "history": set(), "table_columns": set()}

    def add(metric: Any, default: str) -> None:
        if metric is not None:
            section, name = _metric_key(metric, default)
            keys[section].add(name)

    if isinstance(panel, wr.ParallelCoordinatesPlot):
        for column in panel.columns:
            add(column.metric, "summary")
    elif isinstance(panel, wr.LinePlot):
        add(panel.x, "history")
        for y in panel.y:
            add(y, "history")
        if panel.groupby is not None and not isinstance(panel.groupby, str):
            add(panel.groupby, "config")
    elif isinstance(panel, wr.ScatterPlot):
        for metric in (panel.x, panel.y, panel.z):
            add(metric, "summary")
    elif isinstance(panel, wr.WeavePanelSummaryTable):
        keys["summary"].add(panel.table_name)
    elif isinstance(panel, wr.CustomChart):
        table = (panel.query.get("summaryTable") or {}).get("tableKey")
        if table:
            keys["summary"].add(table)
        keys["table_columns"].update(str(v) for v in (panel.chart_fields or {}).values())
    return keys


def report_keys(report: Any) -> dict[str, dict[str, set[str]]]:
    """Keys read per job type: {"train": {"config": {...}, ...}, "aggregate": {...}}."""
    import wandb_workspaces.reports.v2 as wr

    out: dict[str, dict[str, set[str]]] = {}
    for block in report.blocks:
        if not isinstance(block, wr.PanelGrid):
            continue
        job_type = RUNSET_JOB_TYPES.get(block.runsets[0].name, block.runsets[0].name)
        bucket = out.setdefault(job_type, {"config": set(), "summary": set(), "history": set(), "table_columns": set()})
        for panel in block.panels:
            for section, names in panel_keys(panel).items():
                bucket[section].update(names)
    return out


def spec_of(report: Any, group: str) -> dict[str, Any]:
    """A JSON-able summary of the report: its grids, their filters and panels with their keys."""
    import wandb_workspaces.reports.v2 as wr

    grids = []
    for block in report.blocks:
        if not isinstance(block, wr.PanelGrid):
            continue
        runset = block.runsets[0]
        panels = []
        for panel in block.panels:
            keys = panel_keys(panel)
            panels.append(
                {
                    "type": type(panel).__name__,
                    "title": getattr(panel, "title", None),
                    **{k: sorted(v) for k, v in keys.items() if v},
                }
            )
        grids.append({"runset": runset.name, "filters": runset.filters, "panels": panels})
    return {"title": report.title, "entity": report.entity, "project": report.project, "group": group, "grids": grids}


def viewspec_of(report: Any) -> dict[str, Any]:
    """The report spec exactly as `Report.save()` sends it (offline: run sets not resolved)."""
    return json.loads(report._to_model().spec.model_dump_json(by_alias=True, exclude_none=True))


def render_summary(spec: dict[str, Any]) -> str:
    lines = [f'Report "{spec["title"]}"  (project {spec["project"]}, entity {spec["entity"]})']
    for grid in spec["grids"]:
        lines.append(f"  [{grid['runset']}]  filter: {grid['filters']}")
        for p in grid["panels"]:
            keys = "; ".join(
                f"{s}: {', '.join(p[s])}" for s in ("config", "history", "summary", "table_columns") if p.get(s)
            )
            lines.append(f"    - {p['type']}: {p.get('title') or ''}  ({keys})")
    return "\n".join(lines)


def check_against_runs(report: Any, sweep_dir: str | os.PathLike) -> list[str]:
    """Panel keys that no offline run of the sweep logged (empty = every panel has data)."""
    logged: dict[str, dict[str, set[str]]] = {}
    for run_dir in offline_run_dirs(sweep_dir):
        run = read_offline_run(run_dir)
        bucket = logged.setdefault(
            run["run"].get("job_type", ""), {"config": set(), "summary": set(), "history": set()}
        )
        bucket["config"].update(run["config"])
        bucket["summary"].update(run["summary"])
        for row in run["history"]:
            bucket["history"].update(row)
    missing = []
    for job_type, sections in report_keys(report).items():
        have = logged.get(job_type)
        if have is None:
            missing.append(f"no {job_type} run under {sweep_dir}")
            continue
        for section in ("config", "summary", "history"):
            missing += [f"{job_type} {section}: {k}" for k in sorted(sections[section] - have[section])]
    return missing


# ========================================================================================== CLI
def publish(group: str, project: str, entity: str | None) -> str:
    """Save the report in W&B; returns its URL. Raises DashboardError with the reason."""
    if not api_key_available():
        raise DashboardError(NO_API_KEY)
    try:
        import wandb

        entity = entity or os.environ.get("WANDB_ENTITY") or wandb.Api().default_entity
        report = build_report(group, project=project, entity=entity, resolve=True)
        report.save()
        return report.url
    except DashboardError:
        raise
    except Exception as exc:  # noqa: BLE001 - say what went wrong, in one line
        raise DashboardError(
            f"could not publish the report to {entity}/{project}: {type(exc).__name__}: {exc}. "
            f"Are the runs synced (make sync SWEEP=...)?"
        ) from exc


def _publish_help(group: str, sweep: str | None) -> str:
    if sweep:
        dirs = offline_run_dirs(sweep)
        upload = (
            f"make sync SWEEP={sweep}    ({len(dirs)} offline run(s): "
            f"wandb sync {sweep}/*/wandb/offline-run-* {sweep}/wandb/offline-run-*)"
        )
    else:
        upload = (
            "make sync SWEEP=outputs/sweeps/<dir>    "
            "(= wandb sync <dir>/*/wandb/offline-run-* <dir>/wandb/offline-run-*)"
        )
    return (
        "Offline: nothing was published. To publish this report:\n"
        f"  1. upload the sweep's runs:  {upload}\n"
        f"  2. with WANDB_API_KEY set (or after `wandb login`):  python -m src.tracking.dashboard {group} --online"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.tracking.dashboard", description=__doc__.split("\n")[0])
    parser.add_argument("group", help="the sweep's W&B group (experiment name + sweep timestamp)")
    parser.add_argument("--project", help="W&B project (default: logger.project of conf/logger/wandb.yaml)")
    parser.add_argument("--entity", help="W&B entity (default: logger.entity, WANDB_ENTITY, your default)")
    parser.add_argument("--online", action="store_true", help="save the report in W&B (also WANDB_MODE=online)")
    parser.add_argument("--json", action="store_true", help="offline: print the full spec as JSON")
    parser.add_argument("--sweep", help="the sweep dir: check the panel keys against its offline runs")
    args = parser.parse_args(argv)

    defaults = default_logger_cfg()
    project = args.project or defaults.get("project") or K.DEFAULT_PROJECT
    entity = args.entity or defaults.get("entity") or os.environ.get("WANDB_ENTITY")
    online = args.online or os.environ.get("WANDB_MODE", "").strip().lower() == "online"
    if online:
        try:
            url = publish(args.group, project, entity)
        except DashboardError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2 if str(exc) == NO_API_KEY else 1
        print(f"report saved: {url}")
        return 0

    report = build_report(args.group, project=project, entity=entity or OFFLINE_ENTITY)
    spec = spec_of(report, args.group)
    if args.json:
        print(json.dumps({**spec, "viewspec": viewspec_of(report)}, indent=2))
    else:
        print(render_summary(spec))
    status = 0
    if args.sweep:
        missing = check_against_runs(report, args.sweep)
        for line in missing:
            print(f"warning: panel key not in the runs: {line}", file=sys.stderr)
        status = 1 if missing else 0
    print(_publish_help(args.group, args.sweep), file=sys.stderr if args.json else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
