"""src/aggregate/factorial.py and factorial_render.py on synthetic studies whose effects are known:
y = base + a·[A] + b·[B] + ab·[A][B] + a seed's noise, the same for every subset of that seed, so
each paired contrast is exact; and against the contrasts' definitions computed from the runs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from src.aggregate import factorial as F
from src.aggregate import factorial_render as FR
from src.config.study import CUMULATIVE, FACTORIAL

TWO = {"A": "ema@neck", "B": "cot@backbone_p5"}
THREE = {"A": "ema@neck", "B": "cot@backbone_p5", "C": "se@head"}


def additive_runs(a, b, ab, seeds=(0, 1, 2, 3), base=0.30, noise=None, subsets=None, rng=None):
    """One run per (subset, seed) of y = base + a[A] + b[B] + ab[A][B] + noise[seed] (fractions)."""
    rng = rng or np.random.default_rng(1)
    noise = noise if noise is not None else {s: rng.normal(0, 0.01) for s in seeds}
    rows = []
    for seed in seeds:
        for s in subsets or F.design_subsets(TWO, FACTORIAL):
            A, B = "A" in s, "B" in s
            y = base + a * A + b * B + ab * A * B + noise[seed]
            rows.append(
                dict(subset=s, seed=seed, map50_95=y, map50=y + 0.2, params=2.6e6 + 1e4 * A + 3e4 * B, gflops=6.5)
            )
    return pd.DataFrame(rows)


def random_runs(components, seeds, rng, per_run_noise=0.0):
    """Any (non-additive) mean per subset plus a seed's noise, and optionally noise per run."""
    subsets = F.design_subsets(components, FACTORIAL)
    mean = {s: rng.uniform(0.2, 0.4) for s in subsets}
    rows = []
    for seed in seeds:
        shift = rng.normal(0, 0.01)
        for s in subsets:
            y = mean[s] + shift + rng.normal(0, per_run_noise)
            rows.append(dict(subset=s, seed=seed, map50_95=y, map50=y + 0.1, params=1.0, gflops=1.0))
    return pd.DataFrame(rows)


def by_definition(runs: pd.DataFrame, terms: tuple[str, ...]) -> pd.Series:
    """Per seed, in pp: main X = mean(with X) - mean(without X); X×Y = mean(both or neither) -
    mean(exactly one), straight from the runs."""
    out = {}
    for seed, grp in runs.groupby("seed"):
        if len(terms) == 1:
            on = grp["subset"].map(lambda s: terms[0] in s)
        else:
            on = grp["subset"].map(lambda s: (terms[0] in s) == (terms[1] in s))
        out[seed] = 100 * (grp.loc[on, "map50_95"].mean() - grp.loc[~on, "map50_95"].mean())
    return pd.Series(out)


def effect(effects: pd.DataFrame, name: str) -> dict:
    return effects.set_index("effect").loc[name].to_dict()


# ----------------------------------------------------------------------------- effects
def test_two_components_main_effects_and_interaction_come_out_exactly():
    rng = np.random.default_rng(7)
    a, b, ab = rng.uniform(-0.02, 0.02, 3)
    runs = additive_runs(a, b, ab, rng=rng)
    eff = F.factorial_effects(runs, TWO, FACTORIAL)
    assert list(eff["effect"]) == ["A", "B", "A×B"] and list(eff["kind"]) == ["main", "main", "interaction"]
    expect = {"A": 100 * (a + ab / 2), "B": 100 * (b + ab / 2), "A×B": 100 * ab / 2}
    for name, value in expect.items():
        r = effect(eff, name)
        assert r["effect_map50_95_pp"] == pytest.approx(value, abs=1e-9)
        # the seed's noise cancels in every paired contrast: the interval is a point
        assert r["effect_map50_95_low_pp"] == pytest.approx(value, abs=1e-9)
        assert r["effect_map50_95_high_pp"] == pytest.approx(value, abs=1e-9)
        assert r["effect_map50_pp"] == pytest.approx(value, abs=1e-9)  # mAP50 = mAP50-95 + 0.2
        assert r["n"] == 4 and r["p_value"] < 1e-12 and r["significant"]  # 0 but for rounding
    # the k = 2 convention: (y_AB + y_0 - y_A - y_B) / 2, over the same seed
    y = runs[runs["seed"] == 0].set_index("subset")["map50_95"]
    by_hand = 100 * (y[("A", "B")] + y[()] - y[("A",)] - y[("B",)]) / 2
    assert effect(eff, "A×B")["effect_map50_95_pp"] == pytest.approx(by_hand, abs=1e-9)
    # B's effect with A and without it; their mean is B's main effect, half their difference the interaction
    r = effect(eff, "A×B")
    assert r["with_pp"] == pytest.approx(100 * (b + ab), abs=1e-9)
    assert r["without_pp"] == pytest.approx(100 * b, abs=1e-9)


def test_three_components_match_the_definitions_on_a_non_additive_study():
    rng = np.random.default_rng(11)
    runs = random_runs(THREE, seeds=[1, 2, 3], rng=rng)
    eff = F.factorial_effects(runs.sample(frac=1, random_state=0), THREE, FACTORIAL)
    assert list(eff["effect"]) == ["A", "B", "C", "A×B", "A×C", "B×C"]  # mains, then pairs, in study order
    for r in eff.to_dict("records"):
        want = by_definition(runs, r["terms"])
        assert want.std() == pytest.approx(0, abs=1e-9)  # seed-constant noise: every seed agrees
        assert r["effect_map50_95_pp"] == pytest.approx(want.mean(), abs=1e-9)
        assert r["effect_map50_95_high_pp"] - r["effect_map50_95_low_pp"] == pytest.approx(0, abs=1e-9)


def test_effect_interval_is_the_t_interval_of_the_per_seed_contrasts_and_holm_spans_all_effects():
    rng = np.random.default_rng(3)
    runs = random_runs(THREE, seeds=range(5), rng=rng, per_run_noise=0.004)
    eff = F.factorial_effects(runs, THREE, FACTORIAL)
    for r in eff.to_dict("records"):
        d = by_definition(runs, r["terms"])
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
        assert r["effect_map50_95_pp"] == pytest.approx(d.mean(), abs=1e-9)
        assert r["effect_map50_95_low_pp"] == pytest.approx(d.mean() - half, abs=1e-9)
        assert r["effect_map50_95_high_pp"] == pytest.approx(d.mean() + half, abs=1e-9)
        assert r["p_value"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue, rel=1e-9)
    from statsmodels.stats.multitest import multipletests

    assert np.allclose(eff["p_holm"], multipletests(eff["p_value"], method="holm")[1])
    assert (eff["significant"] == (eff["p_holm"] < 0.05)).all()


def test_cumulative_steps_are_paired_increments():
    rng = np.random.default_rng(5)
    a, b, ab = rng.uniform(0.001, 0.02, 3)
    chain = F.design_subsets(TWO, CUMULATIVE)
    assert chain == [(), ("A",), ("A", "B")]
    runs = additive_runs(a, b, ab, subsets=chain, rng=rng)
    eff = F.factorial_effects(runs, TWO, CUMULATIVE)
    assert list(eff["effect"]) == ["+A", "+B"] and set(eff["kind"]) == {"step"}
    assert eff["effect_map50_95_pp"].tolist() == pytest.approx([100 * a, 100 * (b + ab)], abs=1e-9)
    assert eff["effect_map50_95_low_pp"].tolist() == pytest.approx([100 * a, 100 * (b + ab)], abs=1e-9)
    assert list(eff["label"]) == ["+ema@neck", "+cot@backbone_p5"]
    md = FR.render_markdown(F.build_factorial(runs, TWO, CUMULATIVE))
    assert "**Steps**" in md and "Holm-adjusted over the 2 steps" in md and "| +ema@neck | step | 4 |" in md


def test_a_missing_subset_is_a_value_error_naming_it_and_the_writer_says_so(tmp_path):
    runs = additive_runs(0.01, 0.0, 0.0)
    runs = runs[runs["subset"] != ("B",)]
    with pytest.raises(ValueError, match=r"missing: \+B$"):
        F.factorial_effects(runs, TWO, FACTORIAL)
    assert F.missing_subsets(runs, TWO, FACTORIAL) == [("B",)]
    md = FR.write_factorial(F.build_factorial(runs, TWO, FACTORIAL), tmp_path)
    assert "No effects" in md and "missing: +B" in md and "**Effects**" not in md
    assert pd.read_csv(tmp_path / "factorial_effects.csv").empty
    assert len(pd.read_csv(tmp_path / "factorial.csv")) == 3  # the table still shows what ran


def test_seeds_that_missed_a_subset_are_left_out_of_the_effects_with_a_note(tmp_path):
    runs = additive_runs(0.01, 0.002, 0.004, seeds=(0, 1, 2, 3))
    runs = runs[~((runs["seed"] == 3) & (runs["subset"] == ("A", "B")))]
    eff = F.factorial_effects(runs, TWO, FACTORIAL)
    assert (eff["n"] == 3).all() and set(eff["seeds"]) == {"0 1 2"}
    assert "Seed(s) 3 left out of the effects" in FR.write_factorial(F.build_factorial(runs, TWO, FACTORIAL), tmp_path)
    table = F.factorial_table(runs, TWO, FACTORIAL)
    assert table.set_index("subset").loc["+A+B", "n_pairs"] == 3 and table["n"].tolist() == [4, 4, 4, 3]


def test_one_seed_gives_effects_without_interval_or_test_shown_as_na():
    runs = additive_runs(0.01, 0.002, 0.004, seeds=(0,))
    eff = F.factorial_effects(runs, TWO, FACTORIAL)
    assert eff["effect_map50_95_pp"].notna().all()
    assert eff[["effect_map50_95_low_pp", "effect_map50_95_high_pp", "p_value", "p_holm"]].isna().all().all()
    table = F.factorial_table(runs, TWO, FACTORIAL)
    md = FR.render_markdown(F.Factorial(table, eff, TWO))
    rows = [line for line in md.splitlines() if line.startswith("| ") and ("main" in line or "interaction" in line)]
    assert len(rows) == 3
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert "[n/a]" in cells[3] and cells[-2:] == ["n/a", "n/a"]  # p (Holm) and sig.: never "no"
    assert "| no |" not in md and md.count("[n/a]") == 3 + 3  # three effects, three table rows


def test_inputs_the_design_cannot_hold_are_value_errors():
    runs = additive_runs(0.01, 0.0, 0.0)
    with pytest.raises(ValueError, match="cumulative design has no subset \\+B"):
        F.factorial_table(runs, TWO, CUMULATIVE)
    with pytest.raises(ValueError, match="more than one"):
        F.factorial_table(pd.concat([runs, runs.iloc[:1]]), TWO, FACTORIAL)
    with pytest.raises(ValueError, match="not in the study"):
        F.factorial_table(runs.assign(subset=[("Z",)] * len(runs)), TWO, FACTORIAL)
    with pytest.raises(ValueError, match="unknown study.design"):
        F.factorial_table(runs, TWO, "fractional")
    ragged = runs.copy()
    ragged.loc[ragged["subset"] == ("A", "B"), "seed"] += 10  # every subset ran, never all with one seed
    with pytest.raises(ValueError, match="no seed ran every subset"):
        F.factorial_effects(ragged, TWO, FACTORIAL)


# ----------------------------------------------------------------------------- the table
def test_factorial_rows_in_paper_order_with_a_check_column_per_component():
    rng = np.random.default_rng(2)
    runs = random_runs(THREE, seeds=[0, 1], rng=rng).sample(frac=1, random_state=1)
    runs["subset"] = runs["subset"].map(lambda s: tuple(reversed(s)))  # any order in, the study's order out
    table = F.factorial_table(runs, THREE, FACTORIAL, readable=False)
    assert list(table["label"]) == ["baseline", "+A", "+B", "+C", "+A+B", "+A+C", "+B+C", "+A+B+C"]
    for c in THREE:
        assert table[c].dtype == bool
        assert table[c].tolist() == [c in label for label in table["label"]]
    readable = F.factorial_table(runs, THREE, FACTORIAL)
    assert readable["label"].iloc[4] == "ema@neck + cot@backbone_p5" and readable["label"].iloc[0] == "baseline"


def test_cumulative_rows_follow_the_chain():
    runs = additive_runs(0.01, 0.002, 0.0, subsets=[("A", "B"), (), ("A",)])
    table = F.factorial_table(runs, TWO, CUMULATIVE, readable=False)
    assert list(table["label"]) == ["baseline", "+A", "+A+B"]
    assert table["A"].tolist() == [False, True, True] and table["B"].tolist() == [False, False, True]


def test_table_delta_is_paired_by_seed_in_pp_with_holm_over_the_rows():
    rng = np.random.default_rng(9)
    a, b, ab = rng.uniform(0.001, 0.02, 3)
    runs = additive_runs(a, b, ab, rng=rng)
    table = F.factorial_table(runs, TWO, FACTORIAL).set_index("subset")
    expect = {"+A": a, "+B": b, "+A+B": a + b + ab}
    for key, value in expect.items():
        assert table.loc[key, "delta_map50_95_pp"] == pytest.approx(100 * value, abs=1e-9)
        assert table.loc[key, "delta_map50_95_low_pp"] == pytest.approx(100 * value, abs=1e-9)
    means = runs.groupby(runs["subset"].map(lambda s: F.subset_label(s, TWO, False)))["map50_95"].mean()
    assert table["map50_95_pp"].to_dict() == pytest.approx((100 * means).to_dict())
    assert table.loc["+B", "params"] == pytest.approx(2.63e6)
    base = table.loc["baseline"]
    assert math.isnan(base["delta_map50_95_pp"]) and math.isnan(base["p_holm"]) and not base["significant"]

    noisy = random_runs(TWO, seeds=range(4), rng=rng, per_run_noise=0.005)
    t = F.factorial_table(noisy, TWO, FACTORIAL)
    from statsmodels.stats.multitest import multipletests

    assert np.allclose(t["p_holm"].iloc[1:], multipletests(t["p_value"].iloc[1:], method="holm")[1])
    wide = noisy.pivot(index="seed", columns="subset", values="map50_95")
    d = 100 * (wide[("A", "B")] - wide[()])
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert t["delta_map50_95_high_pp"].iloc[3] == pytest.approx(d.mean() + half, abs=1e-9)


# ----------------------------------------------------------------------------- rendering
def test_latex_has_checkmarks_booktabs_rules_and_the_baseline_first(tmp_path):
    runs = additive_runs(0.01, 0.002, 0.004)
    FR.write_factorial(F.build_factorial(runs, TWO, FACTORIAL), tmp_path)
    assert all((tmp_path / f).is_file() for f in FR.FILES)
    tex = (tmp_path / "factorial.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 2 and tex.count(r"\toprule") == 2 and tex.count(r"\bottomrule") == 2
    assert r"\checkmark" in tex and "✓" not in tex and "×" not in tex and r"$\times$" in tex
    assert "<" not in tex.replace("$<$", "")  # pdflatex's default encoding prints ¡ for a text-mode <
    first_row = tex.split(r"\midrule", 1)[1].strip().splitlines()[0]
    assert "baseline" in first_row and r"\checkmark" not in first_row
    both = next(line for line in tex.splitlines() if "ema@neck + cot" in line)
    assert both.count(r"\checkmark") == 2
    csv = pd.read_csv(tmp_path / "factorial.csv")
    assert csv["A"].tolist() == [False, True, False, True] and "is_baseline" not in csv
    effects = pd.read_csv(tmp_path / "factorial_effects.csv")
    assert effects["effect"].tolist() == ["A", "B", "A×B"]


def test_markdown_states_the_convention_and_reads_an_interaction():
    # B hurts alone (-0.3 pp) and helps with A (+0.5 pp): "B only helps together with A"
    runs = additive_runs(0.01, -0.003, 0.008)
    table = F.factorial_table(runs, TWO, FACTORIAL)
    eff = F.factorial_effects(runs, TWO, FACTORIAL)
    md = FR.render_markdown(F.Factorial(table, eff, TWO))
    assert md.splitlines()[0].startswith("| A | B | Variant |")
    assert md.splitlines()[2].startswith("|  |  | baseline |")
    assert "(y\\_AB + y\\_0 − y\\_A − y\\_B)/2" in md
    assert "cot@backbone\\_p5 only helps together with ema@neck" in md
    assert "adds +0.50 pp with ema@neck and -0.30 pp without it" in md
    # no interaction (ab = 0): an interval [0, 0] that does not exclude 0, no sentence about it
    eff = F.factorial_effects(additive_runs(0.01, 0.003, 0.0), TWO, FACTORIAL)
    lines = F.effects_findings(eff)
    assert lines[-1].startswith("No interaction's 95% CI excludes 0") and not any("only helps" in x for x in lines)


def test_design_subsets_are_every_subset_by_size():
    got = F.design_subsets(THREE, FACTORIAL)
    assert got == [s for k in range(4) for s in itertools.combinations("ABC", k)]
    assert len(got) == 8 and got[4] == ("A", "B")
