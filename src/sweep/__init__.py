"""Sweeps run by several launches and machines at once: locks, heartbeats, job states, the plan.

`lock` keeps at most one live training per job dir (an flock held for the job's life) and
serialises the baseline election of a sweep; `heartbeat` keeps a running job's result.json fresh
(its mtime is the heartbeat); `state` judges what a job dir holds (done, resumable, running
elsewhere, ...) the same way for the runner, the aggregator, the progress lines and `plan`, which
lists a sweep's jobs before launch (`python -m src.run -m ... plan=true`). Standard library only
(plus Hydra for `plan`): the aggregator imports it on machines that only have the results.
"""
