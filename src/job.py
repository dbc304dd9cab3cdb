"""One ablation job: config -> model YAML -> measured model -> trained run -> result.json.

Everything a job does ends in exactly one result.json in its directory, written atomically,
whatever happened: a failure is recorded there instead of propagating, so one bad job never takes
the rest of a sweep down.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import signal
import socket
import subprocess
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from src import PROJECT_ROOT, architecture, attention, coco_eval, data, measure, tracking, ultralytics_glue
from src.placement import Placement
from src.results import COMPLETED, DRY_RUN, FAILED, RESULT_FILE, RUNNING, empty_result, read_result, write_result
from src.validate import validate

log = logging.getLogger(__name__)

# Keys that do not change what is trained; left out of the hashes that identify a run.
_NOT_TRAINING = ("logger", "paths", "dry_run")


class Preempted(Exception):
    """SIGTERM / SIGUSR1 (how SLURM warns before it pre-empts or times out a job)."""


def run_job(cfg: DictConfig, job_dir: Path, overrides: list[str] | None = None,
            placement: Placement | None = None, tracking_group: str | None = None) -> dict[str, Any]:
    """Run one job, or skip / resume it when its directory already holds this config's work."""
    job_dir = Path(job_dir).resolve()
    plain = OmegaConf.to_container(cfg, resolve=True)
    if placement and placement.device is not None:
        plain["train"]["device"] = placement.device
    if placement and placement.threads:
        import torch

        torch.set_num_threads(placement.threads)
    previous = _previous_result(job_dir)
    wanted = DRY_RUN if plain.get("dry_run") else COMPLETED
    if previous and previous["status"] == wanted and previous.get("config_hash") == config_hash(plain):
        log.info("skipped: %s already holds a %s result for this config", job_dir, wanted)
        return previous
    last = job_dir / "train" / "weights" / "last.pt"
    resume = bool(previous and previous["status"] == RUNNING and previous.get("config_hash") == config_hash(plain)
                  and last.exists() and not plain.get("dry_run"))
    try:
        ident = identity(plain)
    except (KeyError, TypeError, ValueError):  # malformed config: validate() below names the problem
        ident = {}
    result = empty_result(**ident, job_dir=str(job_dir), overrides=list(overrides or []),
                          config_hash=config_hash(plain), train_key=train_key(plain),
                          versions=versions(), started_at=_now(), host=socket.gethostname(), pid=os.getpid())
    write_result(job_dir, result)  # announces this job to its siblings (see _trained_baseline)
    baseline = _trained_baseline(plain, job_dir)
    if baseline is not None:
        return baseline
    tracker = tracking.start_job_run(
        plain.get("logger"), plain, job_dir, group=tracking_group or f"run-{job_dir.name}",
        name=run_name(overrides), tags=[ident.get(k) for k in ("dataset", "model", "attn", "pos") if ident.get(k)],
        identity={k: ident[k] for k in ("attn", "pos", "dataset", "model", "seed") if k in ident})
    with _preemption_signals() as received:
        try:
            _run(plain, job_dir, result, resume_from=last if resume else None, on_epoch=tracker.log_epoch)
        except Exception as exc:  # recorded, not raised: see the module docstring
            if received:
                result.update(status=RUNNING, interrupted=True,
                              error=f"interrupted by {received[0]}; re-run the same command to resume")
            else:
                log.error("job failed: %s", exc)
                result["status"] = FAILED
                result["error"] = f"{type(exc).__name__}: {exc}"
                result["traceback"] = "".join(traceback.format_exc().splitlines(keepends=True)[-30:])
        finally:
            result["finished_at"] = _now()
            write_result(job_dir, result)
            tracker.finish(result)
    if received:  # the machine is going away: stop here, do not start the next job of the sweep
        raise SystemExit(f"{job_dir.name}: {result.get('error') or 'interrupted'}")
    return result


def _run(plain: dict[str, Any], job_dir: Path, result: dict[str, Any], resume_from: Path | None,
         on_epoch=None) -> None:
    validate(plain, ultralytics_glue.train_arg_names())
    ultralytics_glue.configure()
    rewrite, model_yaml = write_model_yaml(plain, job_dir)
    result["model_yaml"] = model_yaml.name
    result["inserted_layers"] = sorted(rewrite.inserted)
    if not plain.get("dry_run"):  # a missing dataset fails here, before any model is built
        data_yaml = data.prepare(plain["dataset"], Path(plain["paths"]["cache"]))
        result["data_yaml"] = str(data_yaml)
    model = ultralytics_glue.build_model(model_yaml, nc=len(plain["dataset"]["names"]))
    result.update(measure_model(plain, model, model_yaml, job_dir))
    if plain.get("dry_run"):
        result["status"] = DRY_RUN
        return
    started = time.perf_counter()
    result["resumed_from"] = str(resume_from) if resume_from else None
    metrics, trainer = ultralytics_glue.train(model_yaml, data_yaml, job_dir, train_args(plain), resume_from,
                                              on_epoch=on_epoch, keep_predictions=plain["measure"]["ap_by_size"])
    result["train_seconds"] = round(time.perf_counter() - started, 2)
    result["metrics"] = metrics
    result["transferred"] = getattr(trainer, "transferred", None)
    result.update(learning_curve(job_dir / "train" / "results.csv"))
    if plain["measure"]["ap_by_size"]:
        by_size, result["ap_by_size_from"] = ap_by_size(plain, trainer, data_yaml, job_dir)
        result["metrics"].update(by_size)
    result["status"] = COMPLETED


def _trained_baseline(plain: dict[str, Any], job_dir: Path, poll_seconds: float = 5.0) -> dict[str, Any] | None:
    """The `none` baseline does not depend on `pos`: train it once per (train settings, seed).

    Another job of the same sweep with attn=none, the same train_key and seed has done (or is
    doing) the work: wait for it and record its result here with `reused_from`, instead of
    training the same model again for every position.
    """
    if plain["attn"]["name"] != "none" or plain.get("dry_run"):
        return None
    if not (job_dir.parent / "multirun.yaml").exists():  # a single run: its neighbours are unrelated runs
        return None
    key, seed = train_key(plain), plain["seed"]
    while True:
        owner = None
        for other in sorted(job_dir.parent.glob(f"*/{RESULT_FILE}")):
            if other.parent == job_dir:
                continue
            try:
                res = read_result(other)
            except ValueError:
                continue
            if (res.get("attn"), res.get("train_key"), res.get("seed")) == ("none", key, seed) \
                    and not res.get("reused_from") and not res.get("interrupted"):
                if res["status"] == COMPLETED:
                    reused = {**res, "job_dir": str(job_dir), "reused_from": res["job_dir"],
                              "config_hash": config_hash(plain),
                              "pos": identity(plain)["pos"], "overrides": res.get("overrides")}
                    write_result(job_dir, reused)
                    log.info("baseline already trained in %s: reused", res["job_dir"])
                    return reused
                if res["status"] == RUNNING and _alive(res) and (owner is None or str(other) < owner):
                    owner = str(other)
        if owner is None or owner > str(job_dir / RESULT_FILE):
            return None  # nobody (or only a later job) is training it: this job does
        time.sleep(poll_seconds)


def _alive(result: dict[str, Any]) -> bool:
    """Is the job that wrote this `running` result still running? Unknowable across hosts: yes."""
    if result.get("host") != socket.gethostname() or not result.get("pid"):
        return True
    try:
        os.kill(int(result["pid"]), 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _previous_result(job_dir: Path) -> dict[str, Any] | None:
    try:
        return read_result(job_dir / RESULT_FILE)
    except ValueError:  # none yet, or unreadable: run the job
        return None


class _preemption_signals:
    """While a job runs, SIGTERM/SIGUSR1 raise Preempted in it; yields the list of signals seen."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name))

    def __enter__(self) -> list[str]:
        self.received: list[str] = []
        self.previous = {}
        try:
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread (e.g. a thread-based launcher): leave signals alone
            pass
        return self.received

    def _handle(self, signum, frame):
        self.received.append(signal.Signals(signum).name)
        raise Preempted(signal.Signals(signum).name)

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def run_name(overrides: list[str] | None) -> str:
    """`attn=cot,pos=neck,seed=1`: the job's own choices, without paths and Hydra internals."""
    keep = [o for o in overrides or [] if not o.startswith(("hydra.", "paths.", "+hydra")) and "/" not in o]
    return ",".join(keep) or "defaults"


def identity(cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": cfg["dataset"]["name"],
        "attn": cfg["attn"]["name"],
        "pos": position_label(cfg["pos"]),
        "model": cfg["model"]["name"],
        "seed": cfg["seed"],
        "epochs": cfg["train"]["epochs"],
        "imgsz": cfg["train"]["imgsz"],
        "attn_params": cfg["attn"].get("params") or {},
        "pos_after": cfg["pos"]["after"],
        "pos_replace": cfg["pos"]["replace"],
    }


def position_label(pos: dict[str, Any]) -> str:
    """The preset's name, unless the user edited its lists (`pos.after=[6,10]`): then say so."""
    preset = _preset_positions().get(pos.get("name"))
    if preset == (pos["after"], pos["replace"]):
        return pos["name"]
    parts = [f"{k}{'-'.join(map(str, pos[k]))}" for k in ("after", "replace") if pos[k]]
    return "custom:" + "+".join(parts) if parts else "custom:none"


def _preset_positions() -> dict[str, tuple[list[int], list[int]]]:
    presets = {}
    for path in sorted((PROJECT_ROOT / "conf" / "pos").glob("*.yaml")):
        spec = yaml.safe_load(path.read_text()) or {}
        presets[spec.get("name", path.stem)] = (list(spec.get("after", [])), list(spec.get("replace", [])))
    return presets


def write_model_yaml(cfg: dict[str, Any], job_dir: Path) -> tuple[architecture.Rewrite, Path]:
    """Rewrite the base graph for this job and save it in the job dir: the model is data."""
    model_cfg, attn = cfg["model"], cfg["attn"]
    base = architecture.load_base(model_cfg["base"])
    if attn["name"] == "none":
        rewrite = architecture.Rewrite(model=base, layer_map={i: i for i in range(len(architecture.layers_of(base)))})
    else:
        cls_name = attention.get_class(attn["name"]).__name__
        params = dict(attn.get("params") or {})
        rewrite = architecture.insert_attention(
            base, model_cfg["scale"], cls_name, lambda c: attention.yaml_args(attn["name"], c, params),
            after=list(cfg["pos"]["after"]), replace=list(cfg["pos"]["replace"]))
    model = dict(rewrite.model)
    if model_cfg.get("weights"):
        weights = Path(model_cfg["weights"]).expanduser().resolve()
        if not weights.is_file():
            raise FileNotFoundError(f"model.weights={model_cfg['weights']}: no such file")
        model[ultralytics_glue.TRANSFER_KEY] = {"weights": str(weights), "layer_map": rewrite.layer_map}
    name = architecture.model_file_name(model_cfg["base"], model_cfg["scale"], attn["name"],
                                        "base" if attn["name"] == "none" else position_label(cfg["pos"]))
    return rewrite, architecture.dump_yaml(model, job_dir / name)


def measure_model(cfg: dict[str, Any], model, model_yaml: Path, job_dir: Path) -> dict[str, Any]:
    """Params (also as added over the plain model), both GFLOPs, latency and, if asked, ONNX export."""
    opts, imgsz = cfg["measure"], cfg["train"]["imgsz"]
    nc = len(cfg["dataset"]["names"])
    base = architecture.load_base(cfg["model"]["base"])
    baseline = ultralytics_glue.build_model({**base, "scale": cfg["model"]["scale"]}, nc=nc)
    figures = measure.cost(model, imgsz, baseline)
    figures.update(measure.latency(model, imgsz, device=measure_device(cfg["train"].get("device")),
                                   threads=opts.get("threads"), runs=opts["latency_runs"],
                                   batch=opts["throughput_batch"]))
    if opts.get("onnx"):
        figures.update(measure.onnx_export(model_yaml, job_dir / "export", imgsz, nc))
    return figures


def measure_device(device: Any) -> str:
    """The device latency is timed on: the job's own (its first GPU for multi-GPU jobs)."""
    import torch

    text = str(device if device is not None else "auto").lower()
    if text in ("auto", "", "none"):
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if text == "cpu" or text == "mps":
        return text
    first = text.split(",")[0].replace("cuda:", "")
    return f"cuda:{first}" if first.isdigit() and torch.cuda.is_available() else "cpu"


def learning_curve(results_csv: Path) -> dict[str, Any]:
    """Where the per-epoch curve is and which epoch was best (by mAP50-95, ultralytics' fitness)."""
    if not results_csv.exists():
        return {"curve": None, "best_epoch": None}
    import csv

    with results_csv.open(newline="") as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    column = "metrics/mAP50-95(B)"
    scored = [row for row in rows if row.get(column) not in (None, "")]
    best = int(float(max(scored, key=lambda row: float(row[column]))["epoch"])) if scored else None
    return {"curve": str(results_csv.relative_to(results_csv.parents[1])), "best_epoch": best}


def ap_by_size(cfg: dict[str, Any], trainer, data_yaml: Path, job_dir: Path) -> tuple[dict[str, Any], str]:
    """mAP75 and COCO AP small/medium/large of the best checkpoint (cached GT, pycocotools), and
    which validation pass the predictions came from.

    They are those of ultralytics' final validation of the best checkpoint; only where it kept
    none (a multi-GPU run) is the checkpoint validated a second time.
    """
    kept, source = ultralytics_glue.final_predictions(trainer), "final_validation"
    if kept is None:
        weights = trainer.best if Path(trainer.best).exists() else trainer.last
        train = cfg["train"]
        kept = ultralytics_glue.validate_with_predictions(
            Path(weights), data_yaml, job_dir, train["imgsz"], train["batch"], train_args(cfg).get("device"))
        source = "second_validation"
    extra, predictions = kept
    gt = coco_eval.cached_ground_truth(data_yaml, list(cfg["dataset"]["names"]), Path(cfg["paths"]["cache"]))
    coco = coco_eval.evaluate(gt, predictions)
    return {"map75": extra.get("map75"), "ap_small": coco["ap_small"], "ap_medium": coco["ap_medium"],
            "ap_large": coco["ap_large"], "coco_map50_95": coco["map50_95"]}, source


def train_args(cfg: dict[str, Any]) -> dict[str, Any]:
    args = dict(cfg["train"])
    if args.get("device") in ("auto", None, ""):
        args.pop("device", None)  # ultralytics picks the first GPU, else the CPU
    args["seed"] = cfg["seed"]
    return args


def config_hash(cfg: dict[str, Any]) -> str:
    """Identifies what a job trains; where it runs (device, loader workers, measuring) is left out."""
    return _hash(_training_part(cfg, _NOT_TRAINING))


def train_key(cfg: dict[str, Any]) -> str:
    """Identifies the training settings a baseline must share to be compared: no attn/pos/seed."""
    return _hash(_training_part(cfg, _NOT_TRAINING + ("attn", "pos", "seed")))


def _training_part(cfg: dict[str, Any], drop: tuple[str, ...]) -> dict[str, Any]:
    part = {k: v for k, v in cfg.items() if k not in drop + ("measure",)}
    if isinstance(part.get("train"), dict):
        part["train"] = {k: v for k, v in part["train"].items() if k not in ("device", "workers", "verbose")}
    return part


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def versions() -> dict[str, str | None]:
    import hydra
    import torch
    import ultralytics

    return {"python": platform.python_version(), "torch": torch.__version__, "ultralytics": ultralytics.__version__,
            "hydra": hydra.__version__, "git_commit": _git_commit()}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
