"""One home per fact: result keys, statuses, job-dir file names and the baseline's name are spelled
in src/results/ only; everyone else imports them. Walks the string constants of every module (not
its docstrings or comments), so a new literal copy fails here with its file and line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HOME = SRC / "results"

# The common ones: a copy of any of these outside src/results/ is a second home.
RESULT_KEYS = {
    "reused_from",
    "train_seconds",
    "deferred_to",
    "deferred_because",
    "epochs_done",
    "train_key",
    "config_hash",
    "job_dir",
    "finished_at",
    "started_at",
    "matches_file",
    "pr_curve_file",
}
STATUSES = {"completed", "failed", "running", "deferred", "missing", "corrupt"}
JOB_FILES = {"result.json", "results.csv", "best.pt", "last.pt", "matches.npz", "pr_curve.csv", "predictions.json"}
BASELINE = "none"
# `"none"` meaning something else than the baseline attention: matplotlib's "no colour / no marker",
# the `logger=none` and `device` choices. A line that says so in one of these words is not a copy.
OTHER_NONES = ("facecolors=", "mfc=", "fmt=", "logger", "device", "text in", 'or "none"', '"null"')


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _copies(path: Path) -> list[str]:
    return [
        f"{path.relative_to(SRC.parent)}:{line}: {what} {value!r} (import it from src.results)"
        for line, what, value in _findings(path)
    ]


def _findings(path: Path) -> list[tuple[int, str, str]]:
    text = path.read_text()
    tree = ast.parse(text)
    lines = text.splitlines()
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in skip:
            continue
        value, line = node.value, lines[node.lineno - 1]
        what = None
        if value in RESULT_KEYS:
            what = "result key"
        elif value in STATUSES:
            what = "status"
        elif any(value == f or value.endswith("/" + f) for f in JOB_FILES) or "train/weights" in value:
            what = "job-dir path"
        elif value == BASELINE and not any(word in line for word in OTHER_NONES):
            what = "baseline name"
        if what:
            found.append((node.lineno, what, value))
    return found


def test_no_result_key_status_path_or_baseline_name_is_spelled_outside_its_home():
    copies = [c for path in sorted(SRC.rglob("*.py")) if HOME not in path.parents for c in _copies(path)]
    assert copies == [], "\n".join(copies)


@pytest.mark.parametrize(
    "snippet,expected",
    [
        ('x = result["reused_from"]', "result key"),
        ('if status == "completed": pass', "status"),
        ('p = d / "train/weights/best.pt"', "job-dir path"),
        ('if attn == "none": pass', "baseline name"),
        ('ax.scatter(facecolors="none")', None),
        ('def f():\n    """completed"""', None),
    ],
)
def test_the_check_sees_copies_and_not_docstrings(tmp_path, snippet, expected):
    """The scan itself: it finds each kind of copy and passes docstrings and other meanings of none."""
    fake = SRC / "_probe_one_home.py"
    try:
        fake.write_text(snippet + "\n")
        found = _findings(fake)
    finally:
        fake.unlink(missing_ok=True)
    assert [what for _, what, _ in found] == ([expected] if expected else []), found
