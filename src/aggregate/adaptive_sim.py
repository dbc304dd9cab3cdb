"""Synthetic studies of the adaptive design against the fixed one: false claims, trainings, decisions.

`python -m src.aggregate.adaptive_sim [--studies N] [--first 2] [--step 1] [--max 10] [--sd PP]`
prints the Markdown table that README "Adaptive seeds" quotes; tests/test_adaptive.py runs the same
`simulate` (vectorised over studies: seconds).

A study is one baseline and `variants` variants with a true Δ mAP50-95 of `effect`, each seed's Δ
normal around it with sd `sd` (default: the `quick` study's seed noise, 3 pp), half of that variance
the baseline seed's (shared by the variants, as in a real block). The adaptive design looks after
`first`, `first + step`, ... seeds with `sequential` (α split over the looks, Holm across the
variants) and gives more seeds to the undecided variants only (and the baseline, for pairing); the
fixed design trains every variant and the baseline at `max` seeds and looks once at α (Holm). The
seed level only: the image level of the table's interval is 5-20x narrower in our studies.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass

import numpy as np

from .sequential import claim_p_values, decide, look_alpha, seeds_at_look
from .tables import ALPHA, DEFAULT_ROPE
from .uncertainty import BETTER, WORSE

QUICK_SEED_SD = 0.030  # sd of a per-seed Δ mAP50-95 in the `quick` study (its paired-t CIs: 2.8 and 3.5 pp)
EFFECTS = (0.0, 0.005, 0.01, 0.02)  # true Δ (fractions): 0, 0.5, 1 and 2 pp


@dataclass(frozen=True)
class Outcome:
    effect: float  # true Δ, fraction
    studies: int
    false_claims: float  # share of studies where some variant was called better or worse wrongly
    trainings: float  # mean trainings per study, adaptive (variants + baseline seeds)
    fixed_trainings: int  # the fixed design's, (variants + 1) x max
    decided: float  # share of variants decided, adaptive
    fixed_decided: float  # the same for the fixed design
    mean_seeds: float  # mean seeds a variant got, adaptive


def simulate(
    effect: float,
    *,
    studies: int = 4000,
    variants: int = 2,
    first: int = 2,
    step: int = 1,
    most: int = 10,
    sd: float = QUICK_SEED_SD,
    rope: float = DEFAULT_ROPE,
    alpha: float = ALPHA,
    shared: float = 0.5,
    naive: bool = False,
    seed: int = 0,
) -> Outcome:
    """Run `studies` synthetic studies at true Δ `effect` (a fraction). `naive`: every look at α, the
    fixed-n rule read after each round (what the split over looks prevents)."""
    counts = seeds_at_look(first, step, most)
    rng = np.random.default_rng(seed)
    own = rng.standard_normal((studies, variants, most))
    base = rng.standard_normal((studies, 1, most))
    d = effect + sd * (np.sqrt(1.0 - shared) * own + np.sqrt(shared) * base)
    a = alpha if naive else look_alpha(alpha, len(counts))

    decided = np.zeros((studies, variants), bool)
    verdict = np.full((studies, variants), "", dtype=object)
    used = np.full((studies, variants), counts[-1])
    frozen = np.full((studies, variants, 3), np.nan)
    for n in counts:
        x = d[..., :n]
        p = claim_p_values(x.mean(-1), x.std(-1, ddof=1) / np.sqrt(n), n - 1, rope)
        p = np.where(decided[..., None], frozen, p)
        rejected, said = decide(p, a)
        new = rejected & ~decided
        verdict[new], used[new], frozen[new] = said[new], n, p[new]
        decided |= new
    x = d
    _, fixed = decide(claim_p_values(x.mean(-1), x.std(-1, ddof=1) / np.sqrt(most), most - 1, rope), alpha)

    wrong = _wrong_claims(verdict, effect, rope)
    return Outcome(
        effect=effect,
        studies=studies,
        false_claims=float(wrong.any(-1).mean()),
        trainings=float((used.sum(-1) + used.max(-1)).mean()),
        fixed_trainings=(variants + 1) * most,
        decided=float(decided.mean()),
        fixed_decided=float(np.isin(fixed, ("better", "worse", "equivalent")).mean()),
        mean_seeds=float(used.mean()),
    )


def _wrong_claims(verdict: np.ndarray, effect: float, rope: float) -> np.ndarray:
    """Where `better` or `worse` was said of a Δ that is not beyond the rope on that side."""
    return ((verdict == BETTER) & (effect <= rope)) | ((verdict == WORSE) & (effect >= -rope))


def table(outcomes: list[Outcome], first: int, step: int, most: int, sd: float) -> str:
    """The README's Markdown table of `outcomes`."""
    lines = [
        f"| true Δ (pp) | false better/worse | trainings, adaptive | fixed ({most} seeds) | saved "
        f"| decided, adaptive | decided, fixed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        saved = 1.0 - o.trainings / o.fixed_trainings
        lines.append(
            f"| {100 * o.effect:.1f} | {100 * o.false_claims:.1f} % | {o.trainings:.2f} | {o.fixed_trainings} "
            f"| {100 * saved:.0f} % | {100 * o.decided:.1f} % | {100 * o.fixed_decided:.1f} % |"
        )
    lines.append(
        f"\n{outcomes[0].studies} studies per row, 2 variants and a baseline each, seed sd {100 * sd:.1f} pp, "
        f"seeds.first={first} seeds.step={step} seeds.max={most}."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.aggregate.adaptive_sim", description=__doc__.split("\n")[0])
    parser.add_argument("--studies", type=int, default=4000)
    parser.add_argument("--first", type=int, default=2)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--max", type=int, default=10, dest="most")
    parser.add_argument("--sd", type=float, default=100 * QUICK_SEED_SD, help="seed sd of a per-seed Δ, pp")
    parser.add_argument("--json", action="store_true", help="the outcomes as JSON lines")
    args = parser.parse_args(argv)
    try:
        outcomes = [
            simulate(e, studies=args.studies, first=args.first, step=args.step, most=args.most, sd=args.sd / 100)
            for e in EFFECTS
        ]
    except ValueError as exc:
        parser.error(str(exc))
    if args.json:
        import json

        print("\n".join(json.dumps(asdict(o)) for o in outcomes))
    else:
        print(table(outcomes, args.first, args.step, args.most, args.sd / 100))
    return 0


if __name__ == "__main__":
    sys.exit(main())
