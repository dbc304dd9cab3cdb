"""`python -m src.costs SWEEP [--device auto|cpu|cuda|cuda:N] [--threads N] [--no-onnx] ...`

Times every architecture of a sweep side by side and writes SWEEP/costs.json and costs.csv; then
rebuild the table with `python -m src.aggregate SWEEP` (or `--aggregate` here) to show them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.costs", description=__doc__.split("\n\n")[1])
    parser.add_argument("sweep", help="a sweep dir (outputs/sweeps/<dir>)")
    parser.add_argument("--device", default="auto", help="auto (first GPU, else CPU) | cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the sweep's measure.threads)")
    parser.add_argument("--batch", type=int, default=None, help="throughput batch (default: the sweep's)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="batch-1 runs per model per round (default 3)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime latency")
    parser.add_argument("--aggregate", action="store_true", help="rebuild the sweep's tables afterwards")
    args = parser.parse_args(argv)
    for name in ("threads", "batch", "rounds", "runs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name}={value}: must be a positive integer")
    if not Path(args.sweep).is_dir():
        parser.error(f"{args.sweep}: no such sweep directory")
    from src.costs.cost_pass import check_device, run_costs

    try:
        device = check_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    costs = run_costs(
        args.sweep,
        device=device,
        threads=args.threads,
        batch=args.batch,
        rounds=args.rounds,
        runs_per_round=args.runs,
        onnx=not args.no_onnx,
    )
    print(describe(costs, args.sweep))
    if args.aggregate:
        from src.aggregate.pipeline import aggregate

        print(aggregate([args.sweep]).terminal)
    return 0 if costs["variants"] else 1


def describe(costs: dict, sweep: str) -> str:
    """A few lines: how many variants were timed, on what, where the file is, what was left out."""
    from src.results import costs as C
    from src.results.schema import LATENCY_MS, MEM_MB_BATCH, MEM_MB_BATCH1, ONNX_CPU_MS, THROUGHPUT_IPS

    lines = [
        f"Timed {len(costs[C.VARIANTS])} variant(s) side by side on {costs[C.DEVICE]} in {costs[C.SECONDS]:.1f}s "
        f"-> {C.costs_path(sweep)}"
    ]
    for row in costs[C.VARIANTS]:
        onnx = f", ONNX CPU {row[ONNX_CPU_MS]:.2f} ms" if row.get(ONNX_CPU_MS) is not None else ""
        lines.append(
            f"  {row['attn']}@{row['pos']} {row['imgsz']}px: {row[LATENCY_MS]:.2f} ms "
            f"[{row[LATENCY_MS + C.LOW]:.2f}, {row[LATENCY_MS + C.HIGH]:.2f}], "
            f"{row[THROUGHPUT_IPS]:.1f} img/s{onnx}, {row[MEM_MB_BATCH1]:.0f}/{row[MEM_MB_BATCH]:.0f} MiB"
        )
    lines += [f"  skipped {s[C.JOB]}: {s[C.REASON]}" for s in costs[C.SKIPPED]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
