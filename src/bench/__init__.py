"""Performance benchmarks: `python -m src.bench [--quick] [--out outputs/bench]` (`make bench`).

Writes BENCH.md (tables) and bench.json (the same numbers) into the output directory:
1. overhead.py     framework overhead: `python -m src.run` against plain ultralytics, whole processes
2. modules.py      attention modules alone: forward+backward time and peak memory, ours vs the seeds'
3. throughput.py   training images/s per attention variant at the default embedded-dataset settings
4. aggregation.py  aggregating 1,000 and 10,000 result files, plots on and off
5. sweep.py        a 4-job sweep with the basic and the parallel launcher
6. bootstrap.py    test-set bootstrap: 1,000 image resamples of one job, embedded- and COCO-sized
7. load.py         a 200-job dry-run sweep through the parallel launcher (8 with --quick)
8. costs.py        the side-by-side cost pass over `make run`'s variants: wall time and run-to-run spread

seed_reference.py holds the seeds' original EMA and CoTAttention (reference implementations).
"""

from __future__ import annotations

SECTIONS = ("overhead", "modules", "throughput", "aggregation", "sweep", "bootstrap", "load", "costs")
