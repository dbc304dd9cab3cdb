"""Write the per-class table (per_class.py's long frame) as text, Markdown and LaTeX: per
(dataset, model, train_key) block, one row per class and one column per variant, AP mean±std
over seeds with Δ against the baseline, best per class marked.
"""

from __future__ import annotations

import math

import pandas as pd

from src.results.schema import variant_label

from . import tables as T
from .render import md_escape, tex_escape, tex_text, tex_value

TERMINAL_MAX_CLASSES = 20  # the sweep's printout shows the table only up to this many classes
_METRICS = {"ap50_95": ("AP50-95", r"AP$_{50:95}$"), "ap50": ("AP50", r"AP$_{50}$")}


def blocks(table: pd.DataFrame):
    """(title, block frame) per (dataset, model, train_key), in table order."""
    for key, block in table.groupby(T.BLOCK, sort=False):
        dataset, model, _ = key
        setup = block["setup"].iloc[0]
        yield f"{dataset} · {model}" + (f" ({setup})" if setup else ""), block


def _variants(block: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(block["pos"], block["attn"], strict=False)))


def _label(pos: str, attn: str, compact: bool = False) -> str:
    if attn == T.BASELINE:
        return T.BASELINE
    return variant_label(attn, pos, "@" if compact else " @ ")


def _grid(block: pd.DataFrame, metric: str, std: bool, delta: bool):
    """Rows: classes; cells: (text, is_best) per variant; plus each class's instances."""
    variants = _variants(block)
    rows = []
    for name, cls in block.groupby("class", sort=False):
        by_variant = {(r["pos"], r["attn"]): r for r in cls.to_dict("records")}
        means = [by_variant[v][f"{metric}_mean"] if v in by_variant else math.nan for v in variants]
        finite = [m for m in means if T.finite(m)]
        best = max(finite) if len(finite) > 1 else None
        cells = []
        for v, mean in zip(variants, means, strict=False):
            r = by_variant.get(v)
            if r is None or not T.finite(mean):
                cells.append(("–" if r is not None else "", False))
                continue
            text = f"{100 * mean:.2f}"
            if std and T.finite(r[f"{metric}_std"]):
                text += f"±{100 * r[f'{metric}_std']:.2f}"
            if delta and T.finite(r["delta_ap50_95"]):
                text += f" ({100 * r['delta_ap50_95']:+.2f})"
            cells.append((text, best is not None and mean == best))
        instances = cls["instances"].dropna()
        rows.append((str(name), str(int(instances.max())) if len(instances) else "0", cells))
    return variants, rows


def footnote(block: pd.DataFrame) -> str:
    seeds = sorted({int(n) for n in block["n"] if n})
    n = (f"n={seeds[0]}" if len(seeds) == 1 else f"n={seeds[0]}-{seeds[-1]}") if seeds else "n=0"
    return (
        f"AP in %, mean ± std over seeds ({n} per cell); (Δ) AP50-95 against the baseline 'none' of the "
        f"same class, in percentage points, paired by seed; best variant per class marked; – : the class "
        f"has no validation instance (AP undefined)."
    )


def render_terminal(table: pd.DataFrame, max_classes: int = TERMINAL_MAX_CLASSES) -> str:
    """Compact: AP50-95 means with Δ, '*' on the best per class; blocks with more classes are
    left to per_class.md."""
    out = []
    for title, block in blocks(table):
        if block["class"].nunique() > max_classes:
            out.append(f"== {title}: per-class AP in per_class.md ({block['class'].nunique()} classes) ==")
            continue
        variants, rows = _grid(block, "ap50_95", std=False, delta=True)
        headers = ["class", "inst"] + [_label(p, a, compact=True) for p, a in variants]
        body = [[name, inst] + [t + ("*" if best else " ") for t, best in cells] for name, inst, cells in rows]
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]

        def line(values, widths=widths):  # class names left, numbers right
            return "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))
            )

        out.append(
            "\n".join(
                [
                    f"== {title}: per-class AP50-95 (%, mean over seeds; (Δ pp) vs none; * best) ==",
                    line(headers),
                    *(line(r).rstrip() for r in body),
                ]
            )
        )
    return "\n\n".join(out)


def render_markdown(table: pd.DataFrame, level: int = 2) -> str:
    """Per block: the AP50-95 table (with Δ) and the AP50 table, best per class in bold."""
    h = "#" * level
    out = []
    for title, block in blocks(table):
        out.append(f"{h} {md_escape(title)}: per-class AP\n")
        for metric, (header, _) in _METRICS.items():
            variants, rows = _grid(block, metric, std=True, delta=metric == "ap50_95")
            heads = ["class", "instances"] + [_label(p, a) for p, a in variants]
            out.append(f"**{header} (%)**\n")
            out.append("| " + " | ".join(md_escape(x) for x in heads) + " |")
            out.append("|:---|---:|" + "|".join([":---:"] * len(variants)) + "|")
            for name, inst, cells in rows:
                vals = [f"**{t}**" if best else t for t, best in cells]
                out.append("| " + " | ".join([md_escape(name), inst, *vals]) + " |")
            out.append("")
        out.append(md_escape(footnote(block)) + "\n")
    return "\n".join(out).rstrip() + "\n" if out else "No per-class results.\n"


def render_latex(table: pd.DataFrame) -> str:
    """One booktabs table per block and metric, best per class in bold."""
    out = ["% Generated by `python -m src.aggregate`. Needs \\usepackage{booktabs}.", ""]
    for title, block in blocks(table):
        for metric, (_, tex) in _METRICS.items():
            variants, rows = _grid(block, metric, std=True, delta=metric == "ap50_95")
            label = "".join(ch if ch.isalnum() else "-" for ch in f"{title}-{metric}")
            out += [
                r"\begin{table}[t]",
                r"\centering",
                r"\small",
                f"\\caption{{Per-class {tex} on {tex_text(title)}: mean $\\pm$ std over seeds in \\%"
                + (", ($\\Delta$ against the baseline in pp)" if metric == "ap50_95" else "")
                + "; best per class in bold.}",
                f"\\label{{tab:per-class-{label}}}",
                f"\\begin{{tabular}}{{lr{'c' * len(variants)}}}",
                r"\toprule",
                " & ".join(["Class", "Instances"] + [tex_escape(_label(p, a)) for p, a in variants]) + r" \\",
                r"\midrule",
            ]
            for name, inst, cells in rows:
                vals = [f"\\textbf{{{tex_value(t)}}}" if best else tex_value(t) for t, best in cells]
                out.append(" & ".join([tex_escape(name), inst, *vals]) + r" \\")
            out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)
