"""A study of several components as papers print it: the factorial (every subset: baseline, +A, +B,
+A+B) or cumulative (the chain baseline, +A, +A+B) table, and below it the effects (pure:
DataFrames in, DataFrames out; factorial_render.py writes them).

Input, one row per completed job (duplicates merged before, e.g. by tables.dedupe): `subset`, a
tuple of component names (`()` the baseline), `seed`, `map50_95` and `map50` as fractions (as in
result.json; NaN allowed), `params` and `gflops`; `components`, an ordered mapping name -> readable
label, whose order is the study's; `design`, FACTORIAL or CUMULATIVE.

Every comparison is paired by seed, because seeds share most of the training noise: Δ against the
baseline over the seeds both ran, the factorial contrasts per seed over the seeds that ran every
subset, the cumulative steps over the seeds both neighbours ran. Each is a t interval over seeds
(stats.paired_diff) with Holm's adjustment (uncertainty.holm) over the table's rows or its effects.
Values are in percentage points (pp), as the paper prints them (`*_pp` columns).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from src.config.study import CUMULATIVE, subsets
from src.results import BASELINE
from src.results.schema import PLUS, STUDY, VARIANT

from .stats import Diff, paired_diff
from .tables import ALPHA
from .uncertainty import holm

MAIN, INTERACTION, STEP = "main", "interaction", "step"
PP = 100.0  # fractions (result.json) -> percentage points
METRICS = ("map50_95", "map50")
BASELINE_LABEL = "baseline"
TIMES = "×"
_RESERVED = {"subset", "label", "n", "seeds", "is_baseline", "params", "gflops", "n_pairs", "p_value", "p_holm"}


# ============================================================================ the design
def design_subsets(components: Mapping[str, str], design: str) -> list[tuple[str, ...]]:
    """The subsets a design runs, in paper order (the study's own rule, src/config/study.py)."""
    return subsets(list(components), design)  # StudyError, a ValueError, names a bad design


def subset_label(subset: tuple[str, ...], components: Mapping[str, str], readable: bool = True) -> str:
    """ "baseline", "ema@neck + cot@backbone_p5" (readable) or "+A+B" (the components' names)."""
    if not subset:
        return BASELINE_LABEL
    return " + ".join(components[c] for c in subset) if readable else "".join(f"+{c}" for c in subset)


def missing_subsets(runs: pd.DataFrame, components: Mapping[str, str], design: str) -> list[tuple[str, ...]]:
    """The design's subsets no run has a finite mAP50-95 for, in paper order."""
    df = _normalise(runs, components, design)
    ran = set(df.loc[df["map50_95"].notna(), "subset"])
    return [s for s in design_subsets(components, design) if s not in ran]


def _normalise(runs: pd.DataFrame, components: Mapping[str, str], design: str) -> pd.DataFrame:
    """`runs` with each subset a tuple in the study's order; a ValueError for what the design cannot
    hold (no components, unknown names, a subset off the cumulative chain, a (subset, seed) twice)."""
    subsets = design_subsets(components, design)
    if not components:
        raise ValueError("a factorial table needs at least one component")
    clash = sorted(c for c in components if c in _RESERVED | {"significant", "cell"} or c.endswith("_pp"))
    if clash:
        raise ValueError(f"component names {clash} clash with the table's own columns")
    order = {c: i for i, c in enumerate(components)}
    df = runs.copy()
    for m in (*METRICS, "params", "gflops"):
        df[m] = pd.to_numeric(df[m], errors="coerce").astype(float) if m in df.columns else np.nan
    normal = []
    for s in df["subset"]:
        unknown = [c for c in s if c not in order]
        if unknown:
            raise ValueError(f"subset {tuple(s)} names components not in the study: {unknown}")
        normal.append(tuple(sorted(set(s), key=order.__getitem__)))
    df["subset"] = pd.Series(normal, index=df.index, dtype=object)
    off = sorted({s for s in normal if s not in subsets}, key=len)
    if off:
        names = ", ".join(subset_label(s, components, readable=False) for s in off)
        raise ValueError(f"the {design} design has no subset {names} (the chain adds the components in order)")
    df["cell"] = [subsets.index(s) for s in normal]  # the subset's place in the design: a plain column key
    twice = df[df.duplicated(["subset", "seed"], keep=False)]
    if len(twice):
        pairs = sorted(
            {
                (subset_label(s, components, False), int(seed))
                for s, seed in zip(twice["subset"], twice["seed"], strict=True)
            }
        )
        raise ValueError(f"one run per subset and seed expected; more than one for {pairs} (dedupe first)")
    return df


def _by_seed(df: pd.DataFrame, metric: str, cells: int) -> pd.DataFrame:
    """seed x cell (the design's subsets by place) -> the metric in pp (NaN: no run, or no value)."""
    return df.pivot(index="seed", columns="cell", values=metric).reindex(columns=range(cells)).mul(PP).sort_index()


# ============================================================================ tests shared by both frames
def _tested(prefix: str, metric: str, diffs: list[Diff | None], adjust: bool = True) -> dict:
    """Columns of a list of paired differences (None: not compared): `{prefix}_{metric}_pp` and its
    `_low_pp` / `_high_pp`; with `adjust`, also n, p_value, Holm's p_holm over the list and
    `significant` (p_holm < ALPHA; False where untested, which p_holm NaN tells apart)."""
    nan = Diff(np.nan, np.nan, np.nan, 0, np.nan, np.nan, "paired")
    ds = [d or nan for d in diffs]
    out = {
        f"{prefix}_{metric}_pp": [d.mean for d in ds],
        f"{prefix}_{metric}_low_pp": [d.ci_low for d in ds],
        f"{prefix}_{metric}_high_pp": [d.ci_high for d in ds],
    }
    if adjust:
        p = np.array([d.p_value for d in ds], dtype=float)
        p_holm = holm(p)
        out.update(
            n_pairs=[d.n for d in ds], p_value=p, p_holm=p_holm, significant=np.nan_to_num(p_holm, nan=1.0) < ALPHA
        )
    return out


def _paired(a: pd.Series, b: pd.Series) -> Diff | None:
    """a - b over the seeds where both have a value; None where none does."""
    both = pd.concat([a, b], axis=1).dropna()
    return paired_diff(both.iloc[:, 0], both.iloc[:, 1]) if len(both) else None


# ============================================================================ the table
def factorial_table(
    runs: pd.DataFrame,
    components: Mapping[str, str],
    design: str,
    *,
    readable: bool = True,
) -> pd.DataFrame:
    """One row per subset that ran, in paper order (the baseline first).

    Columns: one bool per component (named by it: ✓ where the row has it), `label`, `subset`
    ("+A+B"), `n` and `seeds`, `map50_95_pp` / `map50_pp` with `_std_pp` (mean and sample std
    over seeds), `params`, `gflops` (means), `delta_map50_95_pp` with `_low_pp` / `_high_pp` (row −
    baseline, paired by seed over the seeds both ran, 95 % t interval), `n_pairs`, `p_value`,
    `p_holm` (Holm over the non-baseline rows) and `significant`. Subsets that did not run have no
    row (`missing_subsets` names them); one seed: no interval, no test.
    """
    df = _normalise(runs, components, design)
    subsets = design_subsets(components, design)
    wide = {m: _by_seed(df, m, len(subsets)) for m in METRICS}
    base = wide["map50_95"][0]  # the baseline is the first subset of either design
    rows, diffs = [], []
    for i in sorted(set(df["cell"])):
        s, runs_s = subsets[i], df[df["cell"] == i]
        row = {c: c in s for c in components}
        row.update(
            label=subset_label(s, components, readable),
            subset=subset_label(s, components, readable=False),
            n=len(runs_s),
            seeds=" ".join(str(int(v)) for v in sorted(runs_s["seed"])),
            is_baseline=not s,
        )
        for m in METRICS:
            row[f"{m}_pp"] = PP * runs_s[m].mean()
            row[f"{m}_std_pp"] = PP * runs_s[m].std(ddof=1) if runs_s[m].count() > 1 else np.nan
        row.update(params=runs_s["params"].mean(), gflops=runs_s["gflops"].mean())
        rows.append(row)
        diffs.append(_paired(wide["map50_95"][i], base) if s else None)
    table = pd.DataFrame(rows)
    return table.assign(**_tested("delta", "map50_95", diffs))


# ============================================================================ the effects
def factorial_effects(
    runs: pd.DataFrame, components: Mapping[str, str], design: str, *, readable: bool = True
) -> pd.DataFrame:
    """The effects below the table, in pp, one row each, Holm-adjusted together.

    factorial: the main effect of each component and every two-way interaction, the 2^k contrasts:
    main X = mean of the runs with X − mean of the runs without X; interaction X×Y = mean of the
    runs where X and Y are both present or both absent − mean of those where exactly one is (k = 2:
    (y_AB + y_0 − y_A − y_B) / 2, half the gain of both beyond the two single gains). Each seed's
    contrast is taken over that seed's runs, on the seeds that ran every subset, then the mean over
    seeds with a t interval (n − 1 dof) and p-value. `with_pp` / `without_pp` of an interaction: the
    second component's effect with and without the first (their mean is its main effect, half their
    difference the interaction). Higher interactions are not reported.
    cumulative: each step's increment, row i − row i−1, paired over the seeds both ran.
    A subset of the design that did not run is a ValueError naming it (a contrast without it is
    not defined); so is a factorial in which no seed ran every subset.
    Columns: effect, kind (main / interaction / step), terms and term_labels, label, n, seeds,
    effect_map50_95_pp with _low_pp / _high_pp, n_pairs, p_value, p_holm, significant,
    effect_map50_pp with _low_pp / _high_pp (seeds with mAP50 everywhere; no test), with_pp, without_pp.
    """
    df = _normalise(runs, components, design)
    missing = missing_subsets(df, components, design)
    if missing:
        names = ", ".join(subset_label(s, components, readable=False) for s in missing)
        raise ValueError(f"the {design} effects need every subset of the design; missing: {names}")
    subsets = design_subsets(components, design)
    wide = {m: _by_seed(df, m, len(subsets)) for m in METRICS}
    if design == CUMULATIVE:
        rows, diffs = _steps(wide, subsets, components, readable)
    else:
        rows, diffs = _contrasts(wide, subsets, components, readable)
    frame = pd.DataFrame(rows)
    frame = frame.assign(**_tested("effect", "map50_95", [d["map50_95"] for d in diffs]))
    return frame.assign(**_tested("effect", "map50", [d["map50"] for d in diffs], adjust=False))


def _steps(wide, subsets, components, readable) -> tuple[list[dict], list[dict]]:
    rows, diffs = [], []
    for cur in range(1, len(subsets)):
        prev, added = cur - 1, subsets[cur][-1]
        y = wide["map50_95"]
        seeds = y.index[y[cur].notna() & y[prev].notna()]
        name = components[added] if readable else added
        rows.append(
            dict(effect=f"+{added}", kind=STEP, terms=(added,), term_labels=(name,), label=f"+{name}", **_seeds(seeds))
        )
        diffs.append({m: _paired(wide[m][cur], wide[m][prev]) for m in METRICS})
    return rows, diffs


def _contrasts(wide, subsets, components, readable) -> tuple[list[dict], list[dict]]:
    names = list(components)
    complete = wide["map50_95"].dropna()
    if complete.empty:
        raise ValueError("no seed ran every subset of the factorial design: no contrast is defined")
    terms = [(c,) for c in names] + list(itertools.combinations(names, 2))
    half = 2 ** (len(names) - 1)
    rows, diffs = [], []
    for t in terms:
        weights = np.array([np.prod([1 if c in s else -1 for c in t]) for s in subsets]) / half  # ±1 / 2^(k-1)
        names_t = tuple(components[c] if readable else c for c in t)
        row = dict(
            effect=TIMES.join(t),
            kind=MAIN if len(t) == 1 else INTERACTION,
            terms=t,
            term_labels=names_t,
            label=f" {TIMES} ".join(names_t),
            **_seeds(complete.index),
        )
        row.update(with_pp=np.nan, without_pp=np.nan)
        if len(t) == 2:
            row.update(with_pp=_simple(complete, subsets, t, True), without_pp=_simple(complete, subsets, t, False))
        rows.append(row)
        diffs.append({m: _contrast(wide[m].dropna(), weights) for m in METRICS})
    return rows, diffs


def _contrast(y: pd.DataFrame, weights: np.ndarray) -> Diff | None:
    """Mean over seeds of each seed's contrast Σ w·y, with its t interval; None without a seed."""
    if y.empty:
        return None
    per_seed = y.to_numpy() @ weights
    return paired_diff(per_seed, np.zeros_like(per_seed))


def _simple(y: pd.DataFrame, subsets, pair: tuple[str, str], with_first: bool) -> float:
    """Mean over seeds of the second component's effect among the runs with (or without) the first."""
    first, second = pair
    among = [(first in s) == with_first for s in subsets]
    w = np.array([(1 if second in s else -1) * a for s, a in zip(subsets, among, strict=True)], float)
    return float((y.to_numpy() @ (w / (w > 0).sum())).mean())


def _seeds(seeds) -> dict:
    return {"n": len(seeds), "seeds": " ".join(str(int(s)) for s in seeds)}


def effects_findings(effects: pd.DataFrame) -> list[str]:
    """Sentences for the footnote: the effects whose CI excludes 0, and for each such interaction
    how the second component's gain depends on the first ("B only helps together with A")."""
    if effects.empty:
        return []
    lines = []
    lo, hi = effects["effect_map50_95_low_pp"], effects["effect_map50_95_high_pp"]
    clear = effects[(lo > 0) | (hi < 0)]
    single = clear[clear["kind"] != INTERACTION]
    if len(single):
        what = "steps" if (effects["kind"] == STEP).any() else "main effects"
        said = ", ".join(f"{r['label']} {r['effect_map50_95_pp']:+.2f} pp" for r in single.to_dict("records"))
        lines.append(f"The {what} whose 95% CI excludes 0: {said}.")
    for r in clear[clear["kind"] == INTERACTION].to_dict("records"):
        first, second = r["term_labels"]
        w, wo = r["with_pp"], r["without_pp"]
        if w > 0 >= wo:
            how = f"{second} only helps together with {first}"
        elif wo > 0 >= w:
            how = f"{second} only helps without {first}"
        elif r["effect_map50_95_pp"] > 0:
            how = "together they gain more than the sum of their single gains"
        else:
            how = "together they gain less than the sum of their single gains (the gains overlap)"
        lines.append(
            f"{r['label']}: {second} adds {w:+.2f} pp with {first} and {wo:+.2f} pp without it "
            f"(interaction {r['effect_map50_95_pp']:+.2f} pp, 95% CI [{r['effect_map50_95_low_pp']:+.2f}, "
            f"{r['effect_map50_95_high_pp']:+.2f}]): {how}."
        )
    if not (effects["kind"] == INTERACTION).any() or (clear["kind"] == INTERACTION).any():
        return lines
    if (effects["n"] >= 2).all():
        lines.append("No interaction's 95% CI excludes 0: no evidence that the components' gains do not add up.")
    return lines


def unused_seeds(runs: pd.DataFrame, effects: pd.DataFrame) -> list[int]:
    """Seeds that ran but are in no effect (a factorial seed that missed a subset)."""
    used = {int(s) for text in effects.get("seeds", pd.Series(dtype=str)) for s in str(text).split()}
    return sorted({int(s) for s in runs["seed"]} - used)


# ============================================================================ both, for the writers
@dataclass
class Factorial:
    """What factorial_render.py writes: the table, the effects (no rows where they are not defined
    yet), the components and notes on what the effects leave out."""

    table: pd.DataFrame
    effects: pd.DataFrame
    components: Mapping[str, str]
    notes: list[str] = field(default_factory=list)


def build_factorial(
    runs: pd.DataFrame, components: Mapping[str, str], design: str, *, readable: bool = True
) -> Factorial:
    """The table and its effects. A study still running (a subset missing, no seed with every
    subset) has a table but no effects yet: a note says why instead of an error."""
    table = factorial_table(runs, components, design, readable=readable)
    notes: list[str] = []
    try:
        effects = factorial_effects(runs, components, design, readable=readable)
    except ValueError as e:  # only what the effects need beyond the table: factorial_table accepted the runs
        effects = pd.DataFrame(columns=["effect", "kind", "label", "n", "seeds"])
        notes.append(f"No effects: {e}.")
    unused = ", ".join(map(str, unused_seeds(runs, effects))) if (effects["kind"] == MAIN).any() else ""
    if unused:
        notes.append(f"Seed(s) {unused} left out of the effects: they did not run every subset.")
    return Factorial(table, effects, components, notes)


def studies(runs: pd.DataFrame) -> list[tuple[str, Mapping[str, str], str, pd.DataFrame]]:
    """The studies in a frame of completed runs (result.json's VARIANT and STUDY, flattened by
    collect): per (dataset, model, study), a title, its components (name -> label, in the study's
    order), its design and its runs with their `subset`. A variant written out (`ema@neck+...`)
    counts as the subset whose labels it names."""
    needed = {VARIANT, f"{STUDY}.components", f"{STUDY}.design"}
    if runs.empty or not needed <= set(runs.columns):
        return []
    rows = runs[runs[f"{STUDY}.components"].notna() & runs[VARIANT].notna()]
    out = []
    keys = ["dataset", "model", f"{STUDY}.components", f"{STUDY}.design"]
    for (dataset, model, listed, design), block in rows.groupby(keys, sort=False):
        components = dict(json.loads(listed))
        by_label = {label: name for name, label in components.items()}
        named = [
            () if v == BASELINE else tuple(by_label.get(part, part) for part in str(v).split(PLUS))
            for v in block[VARIANT]
        ]
        out.append((f"{dataset} {model}", components, design, block.assign(subset=named)))
    return out
