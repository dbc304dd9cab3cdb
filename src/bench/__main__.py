"""`python -m src.bench [--quick] [--out DIR] [--only a,b]`: run the benchmarks, write BENCH.md and bench.json."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

from src.bench import SECTIONS, report
from src.bench.common import FULL, QUICK, git_commit, machine
from src.runtime import PROJECT_ROOT, set_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every section at its smallest size (1-3 minutes)")
    parser.add_argument("--out", default="outputs/bench", help="output directory (default: outputs/bench)")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated sections: {','.join(SECTIONS)}; the other sections of an earlier "
        "run of the same kind in --out are kept in the report",
    )
    args = parser.parse_args(argv)
    only = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; valid: {', '.join(SECTIONS)}")
    out = Path(args.out)
    out = (out if out.is_absolute() else PROJECT_ROOT / out).resolve()
    set_environment(out)  # matplotlib, ultralytics and onnxruntime write under --out
    mode = QUICK if args.quick else FULL
    cache = out / "cache"  # the embedded dataset, generated once per size and reused by every section

    started = time.perf_counter()
    kept = _earlier_sections(out, mode.quick) if args.only else {}
    bench = {
        "schema": 1,
        "quick": mode.quick,
        "command": "python -m src.bench" + " ".join(["", *(argv if argv is not None else sys.argv[1:])]).rstrip(),
        "machine": machine(),
        "sections": [],
    }
    ran: dict[str, dict] = {}
    for name in only:
        print(f"[bench] {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            section = importlib.import_module(f"src.bench.{name}").run(out, mode, cache)
        except Exception as exc:  # one broken section never hides the others' numbers
            section = {
                "name": name,
                "title": name,
                "error": f"{type(exc).__name__}: {exc}\n\n" + traceback.format_exc()[-3000:],
                "seconds": time.perf_counter() - t0,
            }
            print(f"[bench] {name} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        section.update(date=bench["machine"]["date"], git_commit=git_commit())
        ran[name] = section
        bench["sections"] = [ran.get(n) or kept[n] for n in SECTIONS if n in ran or n in kept]
        bench["kept_from_earlier_run"] = [n for n in SECTIONS if n in kept and n not in ran]
        bench["total_seconds"] = time.perf_counter() - started
        report.write(bench, out)  # after every section: a long run leaves its numbers so far
        for row in section.get("headline", []):
            print(f"[bench]   {row[0]}: {row[1]}" + (f" (target {row[2]})" if row[2] else ""), flush=True)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.1f}s", flush=True)
    bench["total_seconds"] = time.perf_counter() - started
    md, js = report.write(bench, out)
    print(f"[bench] {md} and {js} written; {bench['total_seconds']:.0f}s in all")
    return 1 if any(s.get("error") for s in bench["sections"]) else 0


def _earlier_sections(out: Path, quick: bool) -> dict[str, dict]:
    """Sections of the bench.json already in `out` (same --quick or not), to keep beside a partial re-run."""
    try:
        earlier = json.loads((out / "bench.json").read_text())
    except (OSError, ValueError):
        return {}
    if earlier.get("quick") != quick:
        return {}
    then = earlier.get("machine") or {}
    return {
        s["name"]: {"date": then.get("date"), "git_commit": then.get("git_commit"), **s}
        for s in earlier.get("sections", [])
        if s.get("name") in SECTIONS and not s.get("error")
    }


if __name__ == "__main__":
    sys.exit(main())
