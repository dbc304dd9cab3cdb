"""The side-by-side cost pass: `python -m src.costs SWEEP [--device ...]`, and at the end of every
multirun (src/sweep_end.py). Every architecture of a sweep is timed in one process on one device,
interleaved, so the table's latency, throughput, ONNX Runtime and memory columns compare like with
like; a job's own timing stays in its result.json as a diagnostic (README "How we measure").

variants.py   one model per architecture of the sweep (torch-free)
timing.py     interleaved timing rounds, medians and quartiles
memory.py     inference peak memory (CUDA allocator, or torch.profiler's CPU allocations)
onnx_cpu.py   ultralytics' ONNX export, timed under onnxruntime on the CPU
cost_pass.py  the pass itself: build, time, write costs.json / costs.csv
"""
