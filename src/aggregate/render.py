"""Write one ablation or cost table as plain text (the terminal), Markdown or LaTeX.

All three lay out the same grid (`_grid`: identity cells, formatted values from columns.py, the
best value per column and block); they differ only in markup and escaping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from src.results.schema import EVAL_CHECKPOINT, EVAL_DEFAULTS, EVAL_SPLIT

from .columns import Column, ablation_columns, cost_columns, has
from .tables import BLOCK, int_text
from .uncertainty import IMAGES, SEEDS


def best_mask(table: pd.DataFrame, columns: list[Column], within: list[str]) -> pd.DataFrame:
    """Boolean frame: True where a cell holds the best value of its column within its block."""
    mask = pd.DataFrame(False, index=table.index, columns=[c.key for c in columns])
    if table.empty:
        return mask
    for c in columns:
        if c.better is None or c.key not in table.columns:
            continue
        vals = pd.to_numeric(table[c.key], errors="coerce")
        groups = vals.groupby([table[k] for k in within], dropna=False)
        best = groups.transform(c.better)
        # a value alone in its block (a lone Δ, a single row) is trivially best: leave it unmarked
        mask[c.key] = (vals == best) & vals.notna() & (groups.transform("count") > 1)
    return mask


@dataclass
class _Grid:
    """A table ready to print: identity cells, value cells, best-value mask, block boundaries."""

    id_headers: list[str]
    id_rows: list[list[str]]
    columns: list[Column]
    cells: list[list[str]]
    mask: np.ndarray
    blocks: list[tuple]


def _grid(table: pd.DataFrame, cost: bool, drop_single_model: bool = False) -> _Grid:
    columns = cost_columns(table) if cost else ablation_columns(table)
    records = table.to_dict("records")  # plain dicts: far cheaper than iterrows
    with_setup = (not cost) and table["setup"].astype(bool).any()
    id_keys = ["model"] + (["imgsz"] if cost else []) + (["setup"] if with_setup else []) + ["pos", "attn"]
    if drop_single_model and table["model"].nunique() == 1:  # the caller names the model in the heading
        id_keys = id_keys[1:]
    id_rows = [[int_text(r[k]) if k == "imgsz" else str(r[k]) for k in id_keys] for r in records]
    cells = [[c.fmt(r) for c in columns] for r in records]
    block_keys = _block_keys(table, cost)
    blocks = [tuple(r[k] for k in block_keys) for r in records]
    mask = best_mask(table, columns, block_keys).to_numpy()
    return _Grid(id_keys, id_rows, columns, cells, mask, blocks)


def _block_keys(table: pd.DataFrame, cost: bool) -> list[str]:
    return ["dataset", "model", "imgsz"] if cost else BLOCK


def render_terminal(table: pd.DataFrame, cost: bool = False) -> str:
    """Plain text, '*' marks the best value of a column (per model)."""
    if table.empty:
        return ""
    g = _grid(table, cost, drop_single_model=True)
    body = [
        ids
        + [v + ("*" if m and v else " " if c.better else "") for v, m, c in zip(vals, mrow, g.columns, strict=False)]
        for ids, vals, mrow in zip(g.id_rows, g.cells, g.mask, strict=False)
    ]
    headers = g.id_headers + [c.short or c.header for c in g.columns]
    aligns = ["l"] * len(g.id_headers) + [("l" if c.align == "c" else "r") for c in g.columns]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]

    def line(vals):
        return "  ".join(
            v.ljust(w) if a == "l" else v.rjust(w) for v, w, a in zip(vals, widths, aligns, strict=False)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    for i, r in enumerate(body):
        if i and g.blocks[i] != g.blocks[i - 1]:
            out.append("")
        out.append(line(r))
    return "\n".join(out)


def md_escape(text: str) -> str:
    return str(text).replace("|", r"\|").replace("*", r"\*").replace("_", r"\_")


_MD_ALIGN = {"l": ":---", "c": ":---:", "r": "---:"}


def md_table(headers: list[str], aligns: str, rows: list[list[str]]) -> str:
    """A Markdown table: the headers escaped here, the cells as given (formatted and escaped);
    `aligns` one letter (l, c, r) per column."""
    lines = [
        "| " + " | ".join(md_escape(h) for h in headers) + " |",
        "|" + "|".join(_MD_ALIGN[a] for a in aligns) + "|",
    ]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def md_rows(id_rows: list[list[str]], cells: list[list[str]], mask) -> list[list[str]]:
    """Markdown cells of a table: the identity cells escaped, the value cells bold where `mask` says."""
    return [
        [md_escape(v) for v in ids] + [f"**{v}**" if m and v else v for v, m in zip(vals, mrow, strict=False)]
        for ids, vals, mrow in zip(id_rows, cells, mask, strict=False)
    ]


def tex_rows(
    id_rows: list[list[str]], cells: list[list[str]], mask, id_text: Callable[[str], str] | None = None
) -> list[list[str]]:
    """LaTeX cells of a table: the identity cells through `id_text` (default `tex_escape`), the values
    as `tex_value`, bold where `mask` says."""
    id_text = id_text or tex_escape
    return [
        [id_text(v) for v in ids]
        + [f"\\textbf{{{tex_value(v)}}}" if m and v else tex_value(v) for v, m in zip(vals, mrow, strict=False)]
        for ids, vals, mrow in zip(id_rows, cells, mask, strict=False)
    ]


def value_aligns(columns: list[Column]) -> str:
    """Markdown alignment of value columns: centred where the column says so, else right."""
    return "".join("c" if c.align == "c" else "r" for c in columns)


def render_markdown(table: pd.DataFrame, cost: bool = False) -> str:
    if table.empty:
        return ""
    g = _grid(table, cost)
    rows = md_rows(g.id_rows, g.cells, g.mask)
    return md_table(
        g.id_headers + [c.header for c in g.columns], "l" * len(g.id_headers) + value_aligns(g.columns), rows
    )


_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))


_TEX_UNICODE = {
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "−": r"$-$",
    "†": r"$^\dagger$",
    "‡": r"$^\ddagger$",
    "·": r"$\cdot$",
    "×": r"$\times$",
    "✓": r"\checkmark{}",  # amssymb; {} keeps the space after it
    "<": r"$<$",  # pdflatex's default font encoding prints ¡ for a text-mode <
    ">": r"$>$",
}


def tex_text(text: str) -> str:
    """Escape prose for LaTeX, also the few non-ASCII symbols our notes use (pdflatex-safe)."""
    out = tex_escape(text)
    for k, v in _TEX_UNICODE.items():
        out = out.replace(k, v)
    return out


def tex_value(text: str) -> str:
    """A formatted number cell -> LaTeX: ± as $\\pm$, signs as math signs, † as a dagger."""
    if not text:
        return ""
    out = tex_escape(text).replace("-", "$-$").replace("+", "$+$")
    out = out.replace("±", r"$\pm$").replace("†", r"$^\dagger$").replace("‡", r"$^\ddagger$")
    return out.replace("<", "$<$")  # p < 0.001


_TEX_ID_HEADERS = {"model": "Model", "imgsz": "Imgsz", "setup": "Setup", "pos": "Position", "attn": "Attention"}


def render_latex(table: pd.DataFrame, dataset: str, cost: bool = False, notes: str = "") -> str:
    """A booktabs table; the ablation's caption says what it was evaluated on."""
    if table.empty:
        return ""
    g = _grid(table, cost)
    spec = "l" * len(g.id_headers) + "".join(c.align for c in g.columns)
    what = "Cost of each attention module" if cost else "Attention ablation"
    caption = (
        f"{what} on {tex_escape(dataset)}; best value per model in bold."
        if cost
        else f"{what} on {tex_escape(dataset)}: mAP in \\%, mean $\\pm$ std over $n$ seeds; "
        f"best value per model in bold. {tex_escape(eval_caption(table))}"
    )
    label = f"tab:{'cost' if cost else 'ablation'}-{''.join(ch if ch.isalnum() else '-' for ch in dataset)}"
    rows = tex_rows(g.id_rows, g.cells, g.mask)
    header = [_TEX_ID_HEADERS[h] for h in g.id_headers] + [c.tex for c in g.columns]
    breaks = {i for i in range(1, len(rows)) if g.blocks[i] != g.blocks[i - 1]}
    return latex_float(caption, label, tabular(spec, header, rows, breaks), notes)


def tabular(
    spec: str, header: list[str], rows: list[list[str]], breaks: set[int] | frozenset = frozenset()
) -> list[str]:
    """The lines of a booktabs tabular, cells as given (LaTeX already); a \\midrule before each row
    index in `breaks`."""
    out = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    for i, row in enumerate(rows):
        if i in breaks:
            out.append(r"\midrule")
        out.append(" & ".join(row) + r" \\")
    return out + [r"\bottomrule", r"\end{tabular}"]


def latex_float(caption: str, label: str, body: list[str], notes: str = "") -> str:
    """A table float around `body` (tabulars), `notes` (plain text) as a footnote below it."""
    out = [r"\begin{table}[t]", r"\centering", r"\small", f"\\caption{{{caption}}}", f"\\label{{{label}}}", *body]
    if notes:
        out += [r"\par\smallskip", f"\\parbox{{\\linewidth}}{{\\footnotesize {tex_text(notes)}}}"]
    out.append(r"\end{table}")
    return "\n".join(out)


def eval_caption(table: pd.DataFrame) -> str:
    """What the table's numbers were measured on, from the results' eval_split / eval_checkpoint
    (results without them: val / best)."""
    if table.empty:
        return ""

    def values(key: str) -> str:
        found = (
            sorted({v.strip() for text in table[key].dropna().astype(str) for v in text.split(",")})
            if key in table.columns
            else []
        )
        return ", ".join(found) or EVAL_DEFAULTS[key]

    return f"Evaluated on the {values(EVAL_SPLIT)} split with the {values(EVAL_CHECKPOINT)} checkpoint."


def footnote(table: pd.DataFrame, marks: str = "* in the terminal, bold in md/tex") -> str:
    """Which intervals and tests were used and what the marks mean (plain text, no markup)."""
    if table.empty:
        return ""
    variants = table.loc[~table["is_baseline"]]
    tests = variants["test"]
    n_welch = int((tests == "welch").sum())
    n_paired = int(((tests == "paired") & (variants["n_pairs"] >= 2)).sum())  # one pair: no t-test
    rope = 100 * float(table["rope"].dropna().iloc[0]) if has(table, "rope") else float("nan")
    parts = [
        "n = seeds (runs after merging duplicates); mAP mean ± sample std over seeds, in %.",
        "Δ = variant − baseline 'none' of the same dataset, model and training config, in percentage points, "
        "with its 95% CI over seeds and images: the seed level's t interval combined, replicate by replicate, "
        "with the paired bootstrap over evaluation images (every seed on the same image draws); "
        "P(Δ>0) = that interval's probability of a gain.",
        f"verdict, against ±{rope:g} pp of no practical interest: better / worse = the whole CI above +{rope:g} / "
        f"below −{rope:g}, equivalent = the whole CI inside ±{rope:g}, undecided = otherwise.",
        "The 95% CIs are unadjusted, while sig. is Holm-adjusted (p < 0.05) per baseline block, over the "
        "variants sharing the baseline (raw p in the CSV); n/a = no test (one seed).",
    ]
    covers = variants["delta_ci_covers"] if "delta_ci_covers" in variants.columns else pd.Series(dtype=object)
    if (covers == IMAGES).any():
        parts.append("‡ one seed: the CI covers the images only, not the seed, so no verdict (n/a).")
    if (covers == SEEDS).any():
        parts.append(
            f"{int((covers == SEEDS).sum())} row(s) without matches.npz (or --bootstrap 0): "
            "their CI covers the seeds only."
        )
    if n_paired:
        parts.append(f"Paired t-test on per-seed differences (t with n−1 dof) for {n_paired} row(s).")
    if n_welch:
        parts.append(f"† Welch's unpaired t-test (seeds do not match the baseline) for {n_welch} row(s).")
    if not (n_paired or n_welch or (tests == "paired").any()):
        parts.append("No Δ: no completed baseline (attn=none) to compare with.")
    parts.append(f"Best value per column and model marked ({marks}).")
    return " ".join(parts)
