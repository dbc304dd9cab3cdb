"""A SIGTERM is honoured wherever it lands in a job (setup, mid-epoch, validation, the final save):
nothing between the handler and the job's end swallows it; the job records itself as interrupted
with a command that really resumes it (the sweep's own directory, though it was timestamped), and
that command resumes it without training an epoch twice. The signal comes from the job itself at
the chosen point, so the point is hit every time."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, TINY, cli_command, cli_env, job_dirs, load_result

from src.job.preemption import owned_by_submitit, preemption_signals

pytestmark = pytest.mark.e2e

# python -c: run `python -m src.run` with SIGTERM sent to itself at POINT (argv[1]); the patches go
# in once set_environment has run, so ultralytics is imported as the entry point imports it.
SIGNAL_AT_POINT = """
import os, runpy, signal, sys
import src.runtime
point = sys.argv.pop(1)
calls = {}

def term_at(owner, name, when=lambda *a, **k: True):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        if when(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)
    setattr(owner, name, wrapped)

def nth(event, n):
    def when(self, name):
        calls[name] = calls.get(name, 0) + (name == event)
        return name == event and calls[name] == n
    return when

def patch():
    from src.job import runner
    from ultralytics.engine import trainer, validator
    if point == "setup":
        term_at(runner, "measure_model")
    elif point == "mid-epoch":  # epoch 2's first batch: epoch 1's last.pt is there
        term_at(trainer.BaseTrainer, "run_callbacks", lambda self, e: e == "on_train_batch_end" and self.epoch == 1)
    elif point == "validation":  # epoch 2's validation
        term_at(validator.BaseValidator, "run_callbacks", nth("on_val_batch_start", 2))
    elif point == "final save":  # after the last epoch: the optimizer strip and final validation
        term_at(trainer.BaseTrainer, "final_eval")

set_environment = src.runtime.set_environment
def set_environment_then_patch(*args):
    changed = set_environment(*args)
    patch()
    return changed
src.runtime.set_environment = set_environment_then_patch
sys.argv = ["src.run", *sys.argv[1:]]
runpy.run_module("src.run", run_name="__main__", alter_sys=True)
"""


def epochs_of(job_dir) -> list[str]:
    rows = (job_dir / "train" / "results.csv").read_text().splitlines()[1:]
    return [row.split(",")[0].strip() for row in rows]


@pytest.mark.parametrize("point", ["setup", "mid-epoch", "validation", "final save"])
def test_sigterm_anywhere_in_a_job_is_honoured_and_its_command_resumes_it(tmp_path, shared_cache, point):
    args = ["-m", "attn=none", *TINY, "train.epochs=2"]
    cmd = cli_command(*args, outputs=tmp_path, cache=shared_cache)
    started = time.time()
    first = subprocess.run(
        [sys.executable, "-c", SIGNAL_AT_POINT, point, *cmd[3:]],
        cwd=ROOT,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode != 0, first.stderr[-3000:]
    sweep = next((tmp_path / "sweeps").iterdir())  # a ${now:...} dir: a re-run would get a new one
    job = job_dirs(sweep)[0]
    interrupted = load_result(job)
    assert interrupted["status"] == "running" and interrupted["interrupted"], interrupted
    assert "Starting training" not in first.stdout + first.stderr or point != "setup"
    done_before = epochs_of(job) if (job / "train" / "results.csv").exists() else []
    assert done_before == {"setup": [], "mid-epoch": ["1"], "validation": ["1"], "final save": ["1", "2"]}[point]

    error = interrupted["error"]
    assert error.startswith("interrupted by SIGTERM; to resume: python -m src.run -m "), error
    resume = shlex.split(error.split("to resume: ", 1)[1])
    assert f"hydra.sweep.dir={sweep}" in resume and "attn=none" in resume
    again = subprocess.run(
        [sys.executable, *resume[1:]], cwd=ROOT, env=cli_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert [d.name for d in sweep.iterdir() if d.is_dir()] == [job.name]  # resumed in place, no new dir
    done = load_result(job)
    assert done["status"] == "completed", done
    assert epochs_of(job) == ["1", "2"]  # no epoch trained twice, none lost
    if point != "setup":
        assert done["resumed_from"].endswith("last.pt")
    print(f"{point}: {time.time() - started:.1f} s")


def test_under_submitit_its_handlers_stay_and_its_requeue_is_noted(monkeypatch):
    """Under submitit, SIGTERM stays submitit's (ignored), and its requeue signal is noted, then handed on."""
    from submitit.core.job_environment import SignalHandler

    seen = []
    handler = SignalHandler.__new__(SignalHandler)
    monkeypatch.setattr(SignalHandler, "checkpoint_and_try_requeue", lambda self, signum, frame: seen.append(signum))
    monkeypatch.setattr(SignalHandler, "bypass", lambda self, signum, frame: None)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)}
    try:
        signal.signal(signal.SIGTERM, handler.bypass)
        signal.signal(signal.SIGUSR2, handler.checkpoint_and_try_requeue)
        assert owned_by_submitit(signal.getsignal(signal.SIGUSR2)) and not owned_by_submitit(signal.SIG_DFL)
        with preemption_signals() as received:
            assert owned_by_submitit(signal.getsignal(signal.SIGTERM))  # not ours
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGUSR2)
            signal.raise_signal(signal.SIGUSR1)
        assert received == ["SIGUSR2", "SIGUSR1"] and seen == [signal.SIGUSR2, signal.SIGUSR1]
        assert owned_by_submitit(signal.getsignal(signal.SIGUSR2))  # put back
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def test_a_resumed_epoch_replaces_the_row_its_killed_run_left(tmp_path):
    """Killed between results.csv's row for epoch 4 and epoch 4's last.pt: the resumed run trains
    epoch 4 again, and its row replaces the old one instead of following it."""
    from src.ultralytics_glue.trainer import drop_rows_from

    csv = tmp_path / "results.csv"
    csv.write_text("epoch,time\n1,2.5\n2,5.1\n3,7.7\n4,10.2\n")
    drop_rows_from(csv, 4)
    assert csv.read_text() == "epoch,time\n1,2.5\n2,5.1\n3,7.7\n"
    drop_rows_from(csv, 5)  # nothing from epoch 5 on: unchanged
    assert csv.read_text() == "epoch,time\n1,2.5\n2,5.1\n3,7.7\n"
    drop_rows_from(tmp_path / "none.csv", 1)  # a run's first epoch: no file yet
