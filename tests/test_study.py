"""Several modules in one model and factorial studies (issue 26): the variant config, its checks,
the job it runs, and the factorial table aggregated from a result tree."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.aggregate import aggregate
from src.config import study as S
from src.config.checks import ConfigError, check_config, check_values
from src.config.identity import config_hash, identity, train_key
from src.results import empty_result, read_result, write_result
from src.results.schema import ENTRIES, STUDY, VARIANT, variant_label
from tests.conftest import TINY, compose, run_cli

TWO = {"A": "ema@neck", "B": "cot@backbone_p5"}


def plain(*overrides: str) -> dict:
    return OmegaConf.to_container(compose(*overrides), resolve=True)


# ----------------------------------------------------------------------------- the variant config
def test_subsets_in_paper_order_and_the_sweep_values():
    assert S.subsets(["A", "B", "C"]) == [
        (),
        ("A",),
        ("B",),
        ("C",),
        ("A", "B"),
        ("A", "C"),
        ("B", "C"),
        ("A", "B", "C"),
    ]
    assert S.subsets(["A", "B", "C"], S.CUMULATIVE) == [(), ("A",), ("A", "B"), ("A", "B", "C")]
    assert S.study_variants(TWO) == "none,A,B,A+B"
    assert S.study_variants({**TWO, "C": "se@neck"}, S.CUMULATIVE) == "none,A,A+B,A+B+C"


@pytest.mark.parametrize(
    "cfg, needle",
    [
        (
            {"variant": "A+Q", "study": {"components": TWO}},
            "unknown component 'Q'; valid choices: A, B, <attn>@<pos>",
        ),
        ({"variant": "ema@nek"}, "unknown pos 'nek' in a variant; valid choices: backbone, backbone_p5"),
        ({"variant": "emma@neck"}, "unknown attn 'emma' in a variant; valid choices: capacity, cbam"),
        ({"variant": "ema@neck+ema@neck"}, "ema@neck is named twice"),
        ({"study": {"components": {"A": "ema"}}}, "study.components.A='ema': write a component as <attn>@<pos>"),
        (
            {"study": {"components": TWO, "design": "full"}},
            "unknown study.design 'full'; valid choices: factorial",
        ),
        ({"study": {"components": {"A+B": "ema@neck"}}}, "study.components.A+B: a name has no + or @"),
    ],
)
def test_bad_variants_and_studies_are_named_before_any_work(cfg, needle):
    with pytest.raises(ConfigError, match=None) as err:
        check_values(cfg)
    assert needle in str(err.value)


def test_one_entry_variant_is_the_attn_pos_job_and_two_entries_spell_themselves_out():
    single = plain("attn=ema", "pos=neck")
    one = S.expand(plain("variant=A", f"+study.components.A={TWO['A']}"))
    assert (one["attn"], one["pos"]) == (single["attn"], single["pos"]) and ENTRIES not in one
    assert config_hash(one) == config_hash(single)  # the same model: the same job
    two = S.expand(plain("variant=ema@neck+cot@backbone_p5"))
    assert two["attn"]["name"] == "ema+cot" and two["pos"]["name"] == "neck+backbone_p5"
    assert [e["attn"]["name"] for e in two[ENTRIES]] == ["ema", "cot"]
    assert two[ENTRIES][1]["pos"]["after"] == "backbone_p5"  # conf/pos/backbone_p5.yaml, as a preset holds it
    base = S.expand(plain("variant=none", "attn=ema"))
    assert base["attn"]["name"] == "none" and train_key(base) == train_key(two) == train_key(single)
    assert variant_label(two["attn"]["name"], two["pos"]["name"]) == "ema@neck + cot@backbone_p5"


def test_the_one_module_job_keeps_its_identity_keys():
    ident = identity(plain("attn=ema", "pos=neck"))
    assert VARIANT not in ident and STUDY not in ident and ident["attn"] == "ema" and ident["pos"] == "neck"
    cfg = S.expand(plain("variant=B", "+study.components.A=ema@neck", "+study.components.B=cot@backbone_p5"))
    assert identity(cfg)[VARIANT] == "B"
    assert identity(cfg)[STUDY] == {"design": "factorial", "components": [["A", "ema@neck"], ["B", "cot@backbone_p5"]]}


def test_conflicting_entries_fail_in_the_checks_naming_both():
    cfg = S.expand(plain("variant=cot@replace_c2psa+ema@backbone_p5"))
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert "'cot@replace_c2psa' and 'ema@backbone_p5' conflict at base layer 10" in str(err.value)
    arch = check_config(S.expand(plain("variant=ema@neck+se@backbone_p5")))
    assert [p.after for p in arch.entry_positions] == [[16, 19, 22], [10]]


# ----------------------------------------------------------------------------- the factorial table
def write_study_tree(root: Path, effects: dict, seeds=(0, 1, 2), design="factorial") -> None:
    """A sweep dir of completed results, one per (subset, seed): mAP50-95 = 0.30 + the effects of
    the subset's components + a seed offset shared by every subset of a seed (so paired contrasts
    are exact)."""
    listed = [[n, label] for n, label in TWO.items()]
    for k, (subset, seed) in enumerate((s, seed) for s in S.subsets(list(TWO), design) for seed in seeds):
        value = 0.30 + 0.01 * seed + sum(effects.get(frozenset(t), 0.0) for t in _terms(subset))
        attn = "+".join(TWO[c].split("@")[0] for c in subset) or "none"
        pos = "+".join(TWO[c].split("@")[1] for c in subset) or "neck"
        r = empty_result(dataset="toy", attn=attn, pos=pos, model="yolo11n", seed=seed, epochs=10, imgsz=64)
        r.update(status="completed", train_key="tk", params=2_600_000 + 1000 * len(subset), gflops=6.5)
        r["metrics"] = {"map50_95": value, "map50": value + 0.2, "precision": 0.5, "recall": 0.5}
        r[VARIANT], r[STUDY] = S.variant_name(subset), {"design": design, "components": listed}
        write_result(root / str(k), r)


def _terms(subset):
    return [(c,) for c in subset] + [(a, b) for i, a in enumerate(subset) for b in subset[i + 1 :]]


def test_effects_from_a_result_tree_come_out_exactly(tmp_path):
    a, b, ab = 0.02, -0.01, 0.03  # A helps, B alone hurts, together they add 3 pp more
    write_study_tree(tmp_path, {frozenset({"A"}): a, frozenset({"B"}): b, frozenset({"A", "B"}): ab})
    summary = aggregate([tmp_path], tmp_path, plots=False, bootstrap=0)
    assert [t for t, _ in summary.factorials] == ["toy yolo11n"]
    effects = pd.read_csv(tmp_path / "factorial_effects.csv").set_index("kind")
    main = effects.loc["main"].set_index("effect")["effect_map50_95_pp"]
    # 2^k contrasts: main A = a + ab/2, main B = b + ab/2, interaction = ab/2 (in pp)
    assert main["A"] == pytest.approx(100 * (a + ab / 2), abs=1e-9)
    assert main["B"] == pytest.approx(100 * (b + ab / 2), abs=1e-9)
    assert effects.loc["interaction", "effect_map50_95_pp"] == pytest.approx(100 * ab / 2, abs=1e-9)
    table = pd.read_csv(tmp_path / "factorial.csv")
    assert list(table["label"]) == ["baseline", "ema@neck", "cot@backbone_p5", "ema@neck + cot@backbone_p5"]
    assert table["delta_map50_95_pp"].iloc[1:].tolist() == pytest.approx([100 * a, 100 * b, 100 * (a + b + ab)])
    tex = (tmp_path / "factorial.tex").read_text()
    assert "\\checkmark" in tex and "\\toprule" in tex and "\\bottomrule" in tex
    assert "cot@backbone_p5 only helps together with ema@neck" in summary.terminal
    assert "factorial study" in (tmp_path / "report.md").read_text().lower()


def test_cumulative_study_reports_its_steps(tmp_path):
    write_study_tree(tmp_path, {frozenset({"A"}): 0.02, frozenset({"B"}): 0.01}, design="cumulative")
    aggregate([tmp_path], tmp_path, plots=False, bootstrap=0)
    effects = pd.read_csv(tmp_path / "factorial_effects.csv")
    assert effects["kind"].tolist() == ["step", "step"]
    assert effects["effect_map50_95_pp"].tolist() == pytest.approx([2.0, 1.0])


# ----------------------------------------------------------------------------- end to end
@pytest.mark.e2e
def test_factorial_quick_trains_every_subset_and_prints_the_table(tmp_path, shared_cache):
    out = tmp_path / "out"
    plan = run_cli("-m", "experiment=factorial_quick", "plan=true", outputs=out, cache=shared_cache)
    assert plan.returncode == 0 and "plan: 8 job(s)" in plan.stdout, plan.stdout + plan.stderr  # 4 subsets x 2 seeds
    args = ["-m", "experiment=factorial_quick", *TINY, "seed=0", f"hydra.sweep.dir={out / 'fq'}"]  # one seed: 4 jobs
    proc = run_cli(*args, outputs=out, cache=shared_cache, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "factorial study" in proc.stdout and "| ✓ | ✓ | ema@neck + cot@backbone_p5 |" in proc.stdout
    for name in ("factorial.md", "factorial.csv", "factorial.tex", "factorial_effects.csv"):
        assert (out / "fq" / name).is_file(), name
    both = [read_result(d / "result.json") for d in (out / "fq").iterdir() if d.is_dir() and "variant=A+B" in d.name]
    assert len(both) == 1
    r = both[0]
    assert r["model_yaml"] == "yolo11n-ema-neck-cot-backbone_p5.yaml" and r[VARIANT] == "A+B"
    assert [e["label"] for e in r[ENTRIES]] == ["ema@neck", "cot@backbone_p5"]
    assert [e["pos_after"] for e in r[ENTRIES]] == [[16, 19, 22], [10]]
    assert sum(e["params_added"] for e in r[ENTRIES]) == r["params_added"] > 0
    assert all(e["gflops_exact_added"] > 0 for e in r[ENTRIES])
    effects = pd.read_csv(out / "fq" / "factorial_effects.csv")
    assert effects["kind"].tolist() == ["main", "main", "interaction"] and (effects["n"] == 1).all()
    assert effects["effect_map50_95_low_pp"].isna().all()  # one seed: the effect, no interval (n/a)


def test_a_bad_variant_on_the_command_line_exits_2_before_any_dir(tmp_path):
    proc = run_cli("variant=ema@nek", outputs=tmp_path / "out")
    assert proc.returncode == 2 and "unknown pos 'nek' in a variant" in proc.stderr
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.e2e
def test_the_adaptive_sweeper_takes_a_factorial_study(tmp_path, shared_cache):
    """variant=none is the block's baseline and every other subset a variant of it: one round of 2
    seeds (seeds.max=2), so the sweep ends after it with every subset trained and looked at."""
    adaptive = ["hydra/sweeper=adaptive", "~hydra.sweeper.params.seed", "hydra.sweeper.seeds.first=2"]
    sweep = tmp_path / "fqa"
    args = [
        "-m",
        "experiment=factorial_quick",
        *adaptive,
        "hydra.sweeper.seeds.max=2",
        *TINY,
        f"hydra.sweep.dir={sweep}",
    ]
    proc = run_cli(*args, outputs=tmp_path, cache=shared_cache, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((sweep / "adaptive.json").read_text())
    assert [r["point"] for r in record["rows"]] == ["variant=A", "variant=B", "variant=A+B"]
    assert record["trainings"] == record["fixed_trainings"] == 8 and "factorial study" in proc.stdout


def test_result_json_entries_round_trip(tmp_path):
    """result.json's `entries` survive the atomic write and the aggregator's flattening."""
    r = empty_result(dataset="toy", attn="ema+se", pos="neck+backbone_p5", model="yolo11n", seed=0, epochs=1, imgsz=64)
    r[ENTRIES] = [{"label": "ema@neck", "params_added": 1}, {"label": "se@backbone_p5", "params_added": 2}]
    write_result(tmp_path / "0", r)
    assert read_result(tmp_path / "0" / "result.json")[ENTRIES] == r[ENTRIES]
    runs = aggregate([tmp_path], write=False).runs
    assert json.loads(runs.loc[0, ENTRIES])[1]["label"] == "se@backbone_p5"
