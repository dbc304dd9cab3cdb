"""Write factorial.py's table and effects as Markdown, LaTeX and CSV: the table (✓ per component,
the baseline first), the effects below it, a footnote that says the conventions and what the
effects mean. Cells use columns.py's formats, markup render.py's writers, as the ablation table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from . import factorial as F
from .columns import Column, always, mean_std, num, signed_ci, significance
from .render import best_mask, latex_float, md_escape, md_rows, md_table, tabular, tex_rows, tex_text, value_aligns
from .tables import ALPHA, finite

CHECK = "✓"
FILES = ("factorial.md", "factorial.csv", "factorial.tex", "factorial_effects.csv")


def _ci(key: str) -> Callable[[pd.Series], str]:
    """`+1.23 [+0.40, +2.06]` from a value in pp and its `_low_pp` / `_high_pp`."""
    stem = key.removesuffix("_pp")
    return lambda row: (
        signed_ci(row[key], row[f"{stem}_low_pp"], row[f"{stem}_high_pp"], 1.0) if finite(row[key]) else ""
    )


def _p(key: str) -> Callable[[pd.Series], str]:
    """Holm's p as printed: <0.001, 0.012; n/a where the row has a value but no test (one seed)."""

    def fmt(row: pd.Series) -> str:
        if row.get("is_baseline") or not finite(row.get(key)):
            return ""
        p = row.get("p_holm")
        return "n/a" if not finite(p) else "<0.001" if p < 0.001 else f"{p:.3f}"

    return fmt


_HOLM = ("p (Holm)", "$p$ (Holm)")
TABLE = [
    Column("n", "n", "$n$", num("n", 1, 0), None, shown=always),
    Column("map50_95_pp", "mAP50-95 (%)", r"mAP$_{50:95}$", mean_std("map50_95_pp", "map50_95_std_pp", 1), "max", "c"),
    Column("map50_pp", "mAP50 (%)", r"mAP$_{50}$", mean_std("map50_pp", "map50_std_pp", 1), "max", "c"),
    Column("params", "Params (M)", "Params (M)", num("params", 1e-6, 3), None),
    Column("gflops", "GFLOPs", "GFLOPs", num("gflops", 1, 2), None),
    Column(
        "delta_map50_95_pp",
        "Δ mAP50-95 (pp) [95% CI]",
        r"$\Delta$mAP$_{50:95}$ [95\% CI]",
        _ci("delta_map50_95_pp"),
        "max",
        "c",
        shown=always,
    ),
    Column("p_holm", *_HOLM, _p("delta_map50_95_pp"), None, shown=always),
    Column("significant", "sig.", "sig.", significance("delta_map50_95_pp"), None, "c", shown=always),
]
EFFECTS = [
    Column("n", "n", "$n$", num("n", 1, 0), None, shown=always),
    Column(
        "effect_map50_95_pp",
        "mAP50-95 (pp) [95% CI]",
        r"mAP$_{50:95}$ (pp) [95\% CI]",
        _ci("effect_map50_95_pp"),
        None,
        "c",
        shown=always,
    ),
    Column("effect_map50_pp", "mAP50 (pp)", r"mAP$_{50}$ (pp)", num("effect_map50_pp", 1, 2, True), None),
    Column("p_holm", *_HOLM, _p("effect_map50_95_pp"), None, shown=always),
    Column("significant", "sig.", "sig.", significance("effect_map50_95_pp"), None, "c", shown=always),
]


# ============================================================================ the grid
def _table_ids(components: Mapping[str, str]) -> tuple[list[str], list[str], int]:
    """Identity columns (keys, headers, how many are ✓ columns): one per component, the label."""
    return [*components, "label"], [*components, "Variant"], len(components)


_EFFECT_IDS = (["label", "kind"], ["Effect", "Kind"], 0)


def _cells(frame: pd.DataFrame, ids: tuple[list[str], list[str], int], columns: list[Column]):
    """(shown columns, id cells, value cells, best mask); the best over the whole table, as in a paper."""
    columns = [c for c in columns if c.is_shown(frame)]
    records = frame.to_dict("records")
    checks = ids[0][: ids[2]]
    id_cells = [[(CHECK if r[k] else "") if k in checks else str(r[k]) for k in ids[0]] for r in records]
    values = [[c.fmt(r) for c in columns] for r in records]
    mask = best_mask(frame.assign(_table=0), columns, ["_table"]).to_numpy()
    return columns, id_cells, values, mask


def _md(frame: pd.DataFrame, ids: tuple[list[str], list[str], int], columns: list[Column]) -> str:
    columns, id_cells, values, mask = _cells(frame, ids, columns)
    rows = md_rows(id_cells, values, mask)
    aligns = "c" * ids[2] + "l" * (len(ids[0]) - ids[2]) + value_aligns(columns)
    return md_table([*ids[1], *(c.header for c in columns)], aligns, rows)


def _tex(frame: pd.DataFrame, ids: tuple[list[str], list[str], int], columns: list[Column]) -> list[str]:
    columns, id_cells, values, mask = _cells(frame, ids, columns)
    rows = tex_rows(id_cells, values, mask, tex_text)  # ✓ and × in the identity cells
    spec = "c" * ids[2] + "l" * (len(ids[0]) - ids[2]) + "".join(c.align for c in columns)
    return tabular(spec, [*(tex_text(h) for h in ids[1]), *(c.tex for c in columns)], rows)


# ============================================================================ footnotes
def table_note(table: pd.DataFrame) -> str:
    """What the table's cells are (plain text)."""
    tested = int((~table["is_baseline"] & table["p_value"].notna()).sum())
    return (
        f"{CHECK} = the component is in the model. n = seeds; mAP mean ± sample std over seeds, in %. "
        "Δ = row − baseline, paired by seed over the seeds both ran, in percentage points, with its t "
        "95% CI over seeds (n−1 dof; seeds only, not the evaluation images); p and sig. "
        f"(p < {ALPHA:g}) Holm-adjusted over the {tested} tested row(s); n/a = one seed, no test. "
        "Best mAP and Δ in bold."
    )


def effects_note(effects: pd.DataFrame) -> str:
    """The convention the effects follow, and their intervals (plain text)."""
    if effects.empty:
        return ""
    steps = (effects["kind"] == F.STEP).all()
    ci = f"95% t CI over seeds (n−1 dof), p Holm-adjusted over the {len(effects)} {'steps' if steps else 'effects'}"
    if steps:
        return f"Steps: each row − the row above it, paired by seed over the seeds both ran, in pp of mAP; {ci}."
    return (
        "Effects in pp of mAP, the 2^k contrasts taken per seed over the n seeds that ran every subset, "
        "then averaged: main effect of X = mean of the runs with X − mean of the runs without X; "
        "interaction X × Y = mean of the runs with both or neither − mean of the runs with exactly one, "
        "for two components (y_AB + y_0 − y_A − y_B)/2, half the gain of both beyond the two single gains; "
        f"{ci}; n/a = one seed, no test."
    )


# ============================================================================ documents
def render_markdown(f: F.Factorial) -> str:
    """The table, the effects below it, the footnote and the findings, as Markdown."""
    out = [_md(f.table, _table_ids(f.components), TABLE), "", md_escape(table_note(f.table)), ""]
    if not f.effects.empty:
        kind = "Steps" if (f.effects["kind"] == F.STEP).all() else "Effects"
        out += [f"**{kind}**", "", _md(f.effects, _EFFECT_IDS, EFFECTS), "", md_escape(effects_note(f.effects))]
        out += [""] + [f"- {md_escape(line)}" for line in F.effects_findings(f.effects)]
    out += [f"- {md_escape(line)}" for line in f.notes]
    return "\n".join(out).rstrip() + "\n"


def render_latex(f: F.Factorial, caption: str = "Factorial ablation") -> str:
    """One booktabs float: the table, the effects as a second tabular below it, the footnote."""
    body = _tex(f.table, _table_ids(f.components), TABLE)
    if not f.effects.empty:
        body += [r"\par\medskip", *_tex(f.effects, _EFFECT_IDS, EFFECTS)]
    parts = [table_note(f.table), effects_note(f.effects), *F.effects_findings(f.effects), *f.notes]
    cap = f"{tex_text(caption)}: mAP in \\%, mean $\\pm$ std over $n$ seeds; $\\Delta$ and effects in pp."
    head = "% Generated by src.aggregate.factorial_render. Needs \\usepackage{booktabs} and \\usepackage{amssymb}."
    return "\n".join([head, "", latex_float(cap, "tab:factorial", body, " ".join(p for p in parts if p)), ""])


def write_factorial(f: F.Factorial, out_dir: str | Path, caption: str = "Factorial ablation") -> str:
    """Write FILES into `out_dir` and return the Markdown (factorial_effects.csv has no rows where
    the effects are not defined yet)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = render_markdown(f)
    (out / FILES[0]).write_text(md)
    f.table.drop(columns=["is_baseline"]).to_csv(out / FILES[1], index=False)
    (out / FILES[2]).write_text(render_latex(f, caption))
    f.effects.drop(columns=["terms", "term_labels"], errors="ignore").to_csv(out / FILES[3], index=False)
    return md
