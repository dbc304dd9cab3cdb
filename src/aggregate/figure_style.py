"""How our figures look and where they go: headless matplotlib, one dpi, file names, and the
colour / marker / line style of each variant.

Shared by the ablation plots (plots.py) and src.visualize's checkpoint figures, so every figure
of a sweep names and styles a variant the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

from src.results.schema import variant_label

from .tables import BASELINE

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "h", "<", ">"]
_LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))]
DPI = 130


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed; safe in jobs and CI)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    """Write `fig` as a PNG (parents made), close it, return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    pyplot().close(fig)
    return path


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"


def block_stem(dataset: str, model: str, setup: str = "") -> str:
    """The file-name stem of a block's figures (`<stem>_curves.png`, src.visualize's `<stem>_cam.png`)."""
    return safe_name(f"{dataset}_{model}" + (f"_{setup}" if setup else ""))


# figures src.visualize draws from the checkpoints, per block: (plot key suffix, title)
IMAGE_FIGURES = (
    ("errors", "TIDE error breakdown"),  # drawn by src.compare, from the jobs' predictions.json
    ("cam", "LayerCAM heatmaps"),
    ("module", "attention module heatmaps"),
    ("detections", "detections vs ground truth"),
)


class Style:
    """Consistent colour per attn and marker / line style per pos across a block's plots."""

    def __init__(self, attns, poss):
        import matplotlib

        self.attns = sorted({a for a in attns if a != BASELINE})
        self.poss = sorted({p for p in poss if p != "-"})
        self.has_base = any(a == BASELINE for a in attns)
        cmap = matplotlib.colormaps["tab10" if len(self.attns) <= 10 else "tab20"]
        self.colour = {a: cmap(i % cmap.N) for i, a in enumerate(self.attns)}
        self.colour[BASELINE] = "black"
        self.marker = {p: _MARKERS[i % len(_MARKERS)] for i, p in enumerate(self.poss)}
        self.marker["-"] = "*"
        self.line = {p: _LINESTYLES[i % len(_LINESTYLES)] for i, p in enumerate(self.poss)}
        self.line["-"] = "-"

    @staticmethod
    def label(pos: str, attn: str) -> str:
        return "baseline (none)" if attn == BASELINE else variant_label(attn, pos)

    def legend(self, ax, lines: bool, extra: list | None = None, title: str | None = None):
        """One legend outside the axes: colour = attention, marker/line style = position.

        Two short keys instead of one entry per variant: 40 variants stay readable (and cheap).
        """
        from matplotlib.lines import Line2D

        handles, bold = list(extra or []), []
        if self.has_base:
            handles.append(
                Line2D(
                    [],
                    [],
                    color="black",
                    lw=2 if lines else 0,
                    marker=None if lines else "*",
                    ms=11,
                    ls="-" if lines else "",
                    label="baseline (none)",
                )
            )
        bold.append(len(handles))
        handles.append(Line2D([], [], ls="", label="Attention (colour)"))
        for a in self.attns:
            handles.append(
                Line2D(
                    [],
                    [],
                    color=self.colour[a],
                    lw=2 if lines else 0,
                    marker=None if lines else "o",
                    ls="-" if lines else "",
                    label=a,
                )
            )
        if self.poss:
            bold.append(len(handles))
            handles.append(Line2D([], [], ls="", label="Position (" + ("line" if lines else "marker") + ")"))
            for p in self.poss:
                handles.append(
                    Line2D(
                        [],
                        [],
                        color="0.3",
                        lw=1.4 if lines else 0,
                        ls=self.line[p] if lines else "",
                        marker=None if lines else self.marker[p],
                        label=p,
                    )
                )
        leg = ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
            frameon=False,
            fontsize=8,
            ncol=1 if len(handles) <= 24 else 2,
            title=title,
            title_fontsize=8,
            handlelength=2.4 if lines else 1.5,
        )
        texts = leg.get_texts()
        for i in bold:
            texts[i].set_fontweight("bold")
        return leg
