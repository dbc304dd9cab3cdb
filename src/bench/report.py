"""BENCH.md and bench.json from one bench run: the same numbers, as tables and as data.

A bench run is a dict: `machine`, `command`, `quick`, `total_seconds`, `sections` (each with
`name, title, about, headline, tables, notes, figures, seconds`, or `name, title, error`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from src.files import atomic_write_text

REPRODUCE = """\
```bash
make bench                                   # = .venv/bin/python -m src.bench  (about 10-15 min on 2 cores)
.venv/bin/python -m src.bench --quick        # every section at its smallest size, 1-3 min
.venv/bin/python -m src.bench --only modules,aggregation --out outputs/bench-x
```
Run it on a quiet machine: every figure is a wall-clock time."""


def md_cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = "n/a" if math.isnan(value) else f"{value:.3g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(md_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s" if seconds >= 60 else f"{seconds:.1f}s"


def render_markdown(bench: dict[str, Any]) -> str:
    m = bench.get("machine", {})
    out = ["# Benchmarks", ""]
    if bench.get("quick"):
        out += [
            "> **--quick run**: every section at its smallest size; the numbers only show that the bench "
            "works. Run `make bench` for the real figures.",
            "",
        ]
    out += [
        f"`{bench.get('command', 'python -m src.bench')}`: {_duration(bench.get('total_seconds'))} in all, "
        f"{m.get('date', '')}.",
        "",
    ]
    kept = bench.get("kept_from_earlier_run") or []
    if kept:
        out += [f"Kept from an earlier run: {', '.join(kept)} (date and commit under each section).", ""]
    out += [
        "## Machine",
        "",
        md_table(
            ["", ""],
            [
                ["CPU", m.get("cpu")],
                ["cores", m.get("cores")],
                ["torch threads", m.get("torch_threads")],
                ["GPU", m.get("gpu") or "none (everything on the CPU)"],
                ["python", m.get("python")],
                ["torch", m.get("torch")],
                ["ultralytics", m.get("ultralytics")],
                ["platform", m.get("platform")],
                ["git commit", f"{m.get('git_commit')}{' (uncommitted changes)' if m.get('git_dirty') else ''}"],
                ["date (UTC)", m.get("date")],
                [
                    "load average at start (1, 5, 15 min)",
                    ", ".join(map(str, m.get("load_avg_at_start") or [])) or "n/a",
                ],
            ],
        ),
        "",
    ]
    out += [
        "## How to reproduce",
        "",
        REPRODUCE,
        "",
        "Each figure is a median over repeated runs; each comparison is the median of per-repeat ratios "
        "of runs made back to back (A B A B ...), so drift of the machine hits both sides.",
        "",
    ]
    headline = [row for s in bench.get("sections", []) for row in s.get("headline", [])]
    errors = [s for s in bench.get("sections", []) if s.get("error")]
    if headline:
        out += ["## Summary", "", md_table(["figure", "value", "target"], headline), ""]
    for s in errors:
        out += [f"**{s.get('title', s.get('name'))} failed**: {s['error'].splitlines()[0]}", ""]
    for s in bench.get("sections", []):
        out += [f"## {s.get('title', s.get('name'))}", ""]
        if s.get("error"):
            out += ["Failed:", "", "```", s["error"].strip()[-3000:], "```", ""]
            continue
        if s.get("about"):
            out += [s["about"], ""]
        for table in s.get("tables", []):
            if table.get("title"):
                out += [f"**{table['title']}**", ""]
            out += [md_table(table["columns"], table["rows"]), ""]
        for note in s.get("notes", []):
            out.append(f"- {note}")
        when = f"; run {s['date']} at commit {s.get('git_commit')}" if kept and s.get("date") else ""
        out += ["", f"_Section time: {_duration(s.get('seconds'))}{when}._", ""]
    return "\n".join(out).rstrip() + "\n"


def write(bench: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write BENCH.md and bench.json into out_dir; returns their paths."""
    out_dir = Path(out_dir)
    md, js = out_dir / "BENCH.md", out_dir / "bench.json"
    atomic_write_text(js, json.dumps(bench, indent=2, sort_keys=False, default=str) + "\n")
    atomic_write_text(md, render_markdown(bench))
    return md, js
