"""The adaptive sweeper: its stopping rule (simulated), its rounds (on synthetic result trees, the
table's real aggregation), its job numbering and plan, and one sweep through the submitit launcher."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, TINY, run_cli

from src.adaptive_sweeper import Design, Rounds
from src.aggregate import aggregate
from src.aggregate.adaptive import read_record
from src.aggregate.adaptive_sim import QUICK_SEED_SD, simulate
from src.aggregate.sequential import (
    BUDGET,
    DECIDED,
    MAX_SEEDS,
    claim_p_values,
    holm_reject,
    planned_looks,
    seeds_at_look,
)
from src.aggregate.uncertainty import holm
from src.config.identity import config_hash
from src.results import BASELINE, COMPLETED, DRY_RUN, empty_result, write_result
from src.sweep.adaptive import dir_number, grid_points, job_number
from src.sweep.grid import basic_sweep_jobs, sweep_arguments


# ============================================================================ the rule, simulated
@pytest.mark.parametrize("most", [6, 10])
def test_no_more_than_five_percent_false_claims_at_the_quick_noise(most):
    """The issue's bar: at a true Δ of 0 and the quick study's seed noise, `better`/`worse` in <= 5 %."""
    out = simulate(0.0, studies=3000, most=most, sd=QUICK_SEED_SD)
    assert out.false_claims <= 0.05
    assert out.trainings <= out.fixed_trainings


def test_reading_the_fixed_interval_after_every_round_inflates_false_claims_the_split_does_not():
    """With the rope at 0 (plain significance) and 9 looks, the naive rule is wrong far more than α."""
    kwargs = dict(studies=3000, most=10, sd=0.01, rope=0.0)
    naive, split = simulate(0.0, naive=True, **kwargs), simulate(0.0, **kwargs)
    assert naive.false_claims > 0.08
    assert split.false_claims <= 0.05


def test_clear_effects_stop_early_and_save_trainings():
    """Low noise, a 2 pp effect: decided in early rounds, fewer trainings than the fixed design."""
    out = simulate(0.02, studies=2000, most=10, sd=0.005)
    assert out.decided > 0.95
    assert out.trainings < 0.7 * out.fixed_trainings
    assert out.false_claims == 0.0


def test_holm_reject_is_statsmodels_holm_row_by_row():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.08, (120, 4))
    p[rng.uniform(size=p.shape) < 0.2] = np.nan
    got = holm_reject(p, 0.05)
    for row, rejected in zip(p, got, strict=True):
        want = np.nan_to_num(holm(row), nan=1.0) <= 0.05
        assert list(rejected) == list(want)


def test_claim_p_values_say_what_the_t_interval_says():
    from scipy import stats

    rng = np.random.default_rng(2)
    mean, se, dof = rng.normal(0, 0.02, 400), rng.uniform(0.001, 0.02, 400), rng.integers(1, 9, 400)
    rope, a = 0.005, 0.05
    half = stats.t.ppf(1 - a / 2, dof) * se
    lo, hi = mean - half, mean + half
    p = claim_p_values(mean, se, dof, rope)
    assert np.array_equal(p[:, 0] < a, lo > rope)
    assert np.array_equal(p[:, 1] < a, hi < -rope)
    assert np.array_equal(p[:, 2] < a, (lo > -rope) & (hi < rope))


def test_looks_and_bad_seed_settings():
    assert planned_looks(2, 1, 10) == 9 and seeds_at_look(2, 2, 7) == [2, 4, 6, 7]
    for bad, name in (((1, 1, 6), "seeds.first"), ((2, 0, 6), "seeds.step"), ((4, 1, 3), "seeds.max")):
        with pytest.raises(ValueError, match=name):
            seeds_at_look(*bad)


# ============================================================================ job numbers and grid
def test_job_numbers_are_the_basic_sweepers_with_the_seed_first():
    grid = ["attn=none,ema,cot", "pos=neck,backbone", "train.epochs=3"]
    points = grid_points(None, grid)
    basic = basic_sweep_jobs(sweep_arguments(None, ["seed=0,1,2,3", *grid]))
    for i, point in enumerate(points):
        for s in range(4):
            assert basic[job_number(i, s, len(points))] == [f"seed={s}", *point]
    with pytest.raises(ValueError, match="seed=0,1"):
        grid_points({"attn": "none,ema"}, ["seed=0,1"])


# ============================================================================ rounds on synthetic results
EFFECT = {BASELINE: (0.0, 0.0), "ema": (0.20, 0.001), "cot": (0.0, 0.03)}  # (true Δ, sd of its own noise)


class Study:
    """A sweep dir whose jobs 'train' by writing the result a job with that seed would have."""

    def __init__(self, root):
        self.root, self.launched = root, []

    def compose(self, overrides, num):
        task = sorted(o for o in overrides if not o.startswith("hydra."))
        values = dict(o.split("=", 1) for o in task)
        cfg = {"attn": {"name": values["attn"]}, "seed": int(values["seed"]), "dry_run": False}
        return self.root / f"{num}_{','.join(task)}", cfg

    def launch(self, batch):
        for overrides in batch:
            job_dir, cfg = self.compose(overrides, dir_number(overrides))
            attn, seed = cfg["attn"]["name"], cfg["seed"]
            rng = np.random.default_rng(seed)
            base = 0.40 + 0.03 * rng.standard_normal()
            effect, sd = EFFECT[attn]
            own = np.random.default_rng([seed, len(attn)]).standard_normal()
            r = empty_result(dataset="toy", attn=attn, pos="neck", model="yolo11n", seed=seed, epochs=10, imgsz=320)
            r.update(status=COMPLETED, train_key="tk", config_hash=config_hash(cfg))
            r["metrics"] = {"map50": 0.6, "map50_95": base + effect + sd * own, "precision": 0.5, "recall": 0.4}
            write_result(job_dir, r)
            self.launched.append(job_dir.name)

    def design(self, budget=None, most=5):
        points = [[f"attn={a}"] for a in (BASELINE, "ema", "cot")]
        is_base = [True, False, False]
        return Design(points, is_base, 2, 1, most, budget, 0.05, 0.5, 0, self.root, self.compose, "${hydra.job.num}_x")


def _rows(record):
    return {r["attn"]: r for r in record["rows"]}


def test_rounds_decide_the_clear_variant_early_and_give_the_open_one_max_seeds(tmp_path):
    study = Study(tmp_path)
    record = Rounds(study.design(), study.launch, log=lambda *_: None).run()
    rows = _rows(record)
    assert (rows["ema"]["stop"], rows["ema"]["round"], rows["ema"]["seeds"], rows["ema"]["verdict"]) == (
        DECIDED,
        1,
        2,
        "better",
    )
    assert (rows["cot"]["stop"], rows["cot"]["round"], rows["cot"]["seeds"]) == (MAX_SEEDS, 4, 5)
    assert record["trainings"] == 2 + 5 + 5 < record["fixed_trainings"] == 15
    assert len(study.launched) == 12
    assert sorted(int(n.split("_")[0]) for n in study.launched) == [0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 14]

    # the table says how each row ended, and its last line the trainings against the fixed design
    summary = aggregate([tmp_path], plots=False, bootstrap=0)
    table = summary.ablation.set_index("attn")
    assert table.loc["ema", "adaptive_stop"] == DECIDED and table.loc["cot", "adaptive_seeds"] == 5
    assert "better, round 1" in summary.terminal and "max seeds, round 4" in summary.terminal
    assert summary.terminal.splitlines()[-1].startswith("adaptive: 12 trainings in 4 round(s) against 15")

    # a second run of the same sweep launches nothing and says the same
    def must_not_launch(batch):
        raise AssertionError(f"launched {batch}")

    again = Rounds(study.design(), must_not_launch, log=lambda *_: None).run()
    assert again == record


def test_a_killed_sweeper_resumes_at_the_round_it_reached(tmp_path):
    study = Study(tmp_path)
    calls = []

    def killed_in_round_3(batch):
        calls.append(batch)
        if len(calls) == 3:
            raise KeyboardInterrupt
        study.launch(batch)

    with pytest.raises(KeyboardInterrupt):
        Rounds(study.design(), killed_in_round_3, log=lambda *_: None).run()
    before = len(study.launched)
    record = Rounds(study.design(), study.launch, log=lambda *_: None).run()
    assert before == 6 + 2 and len(study.launched) - before == 4  # rounds 3 and 4 only
    assert _rows(record)["cot"]["seeds"] == 5


def test_budget_stops_the_open_variant(tmp_path):
    study = Study(tmp_path)
    record = Rounds(study.design(budget=8), study.launch, log=lambda *_: None).run()
    cot = _rows(record)["cot"]
    assert (cot["stop"], cot["seeds"], cot["round"]) == (BUDGET, 3, 2)
    assert record["trainings"] == 8
    with pytest.raises(ValueError, match="budget=5 is less than round 1 needs"):
        study.design(budget=5)


def test_a_grid_without_its_baseline_is_refused(tmp_path):
    study = Study(tmp_path)
    with pytest.raises(ValueError, match="no baseline"):
        Design([["attn=ema"]], [False], 2, 1, 4, None, 0.05, 0.5, 0, tmp_path, study.compose, "x")


# ============================================================================ plan, then Hydra's launcher
@pytest.mark.e2e
def test_the_sweeper_launches_through_submitit_and_records_the_rounds(tmp_path, shared_cache):
    """`plan=true` lists round 1 and the most the sweep can cost; then, through hydra/launcher=local,
    three of round 1's four jobs are already done (dry runs recorded as a launch would have), so the
    sweep launches the fourth through submitit and nothing else."""
    from src.sweep.plan import plan_and_note, render

    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "hydra/sweeper=adaptive",
        "hydra/launcher=local",
        "attn=none,ema",
        "hydra.sweeper.seeds.max=2",
        "dry_run=true",
        "measure.onnx=false",
        f"hydra.sweep.dir={sweep}",
        *TINY,
    ]
    sweep_dir, planned, note = plan_and_note(
        True, "config", [*args[1:], f"paths.outputs={tmp_path}", f"paths.cache={shared_cache}"]
    )
    assert [p.num for p in planned] == [0, 1, 2, 3] and "at most 4 job(s), 4 trainings" in note
    assert not sweep_dir.exists() and "4 new" in render(sweep_dir, planned, note)
    jobs = [(p.num, p.overrides, p.job_dir, p.cfg) for p in planned]
    for _, _, job_dir, cfg in jobs[:3]:
        r = empty_result(dataset="shapes", attn=cfg["attn"]["name"], pos="neck", model="yolo11n", seed=cfg["seed"])
        r.update(status=DRY_RUN, config_hash=config_hash(cfg), pid=-1)
        write_result(job_dir, r)
    proc = run_cli(*args, outputs=tmp_path, cache=shared_cache, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "round 1: 4 job(s) (3 already done)" in proc.stdout
    ran = json.loads((jobs[3][2] / "result.json").read_text())
    assert ran["status"] == DRY_RUN and ran["pid"] not in (-1, None)
    assert [p.name for p in (sweep / ".submitit").iterdir()]  # launched by submitit
    assert jobs[3][2].name.startswith("3_") and "attn=ema" in jobs[3][2].name and "seed=1" in jobs[3][2].name
    record = read_record(sweep)
    assert record["rounds"] == 1 and record["rows"][0]["stop"] == MAX_SEEDS and record["trainings"] == 4
    assert proc.stdout.strip().splitlines()[-1].startswith("adaptive: 4 trainings in 1 round(s) against 4")


def test_raising_seeds_max_later_keeps_every_finished_job(tmp_path):
    study = Study(tmp_path)
    first = Rounds(study.design(most=3), study.launch, log=lambda *_: None).run()
    assert _rows(first)["cot"]["stop"] == MAX_SEEDS and len(study.launched) == 6 + 2
    record = Rounds(study.design(most=5), study.launch, log=lambda *_: None).run()
    assert len(study.launched) == 8 + 4 and len(set(study.launched)) == 12  # seeds 3 and 4 only, nothing twice
    assert _rows(record)["cot"]["seeds"] == 5


def test_bad_settings_are_a_config_error_before_anything_is_written(tmp_path, capsys):
    """The sweeper itself (Hydra's config loader, no launcher): exit 2 naming the value, no sweep dir."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import HydraContext, RunMode

    from src.adaptive_sweeper import AdaptiveSweeper

    sweep = tmp_path / "sweep"
    cases = [
        ({"seeds": {"max": 4}}, ["seed=0,1"], "drop seed=0,1"),
        ({"seeds": {"first": 1}}, [], "seeds.first must be a whole number >= 2, got 1"),
        ({"seeds": {"last": 3}}, [], "seeds.last is not a setting; valid: first, step, max"),
        ({"budget": 3}, [], "budget=3 is less than round 1 needs (4 trainings"),
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3", job_name="run"):
        loader = GlobalHydra.instance().config_loader()
        for settings, arguments, message in cases:
            cfg = loader.load_configuration(
                "config", ["hydra/sweeper=adaptive", f"hydra.sweep.dir={sweep}"], run_mode=RunMode.MULTIRUN
            )
            sweeper = AdaptiveSweeper(params={"attn": "none,ema"}, **settings)
            sweeper.hydra_context, sweeper.config = HydraContext(config_loader=loader, callbacks=None), cfg
            with pytest.raises(SystemExit) as stopped:
                sweeper.sweep(arguments)
            assert stopped.value.code == 2
            assert message in capsys.readouterr().err
    assert not sweep.exists()
