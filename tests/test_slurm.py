"""`hydra/launcher=slurm` on a real one-node SLURM cluster (`make slurm-up`, .ci/slurm-cluster):
real sbatch, the real submitit launcher, real tiny trainings. Each way SLURM (or a user) stops a
job ends with every job completed, the sweep's exit status 0 and no epoch trained twice; a job
that SLURM will not bring back is resumed by the next launch. Skipped where no cluster answers.

All tests share one module fixture, so under xdist they run one after another on one worker.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, TINY, home_of, job_dirs, load_result, spawn_cli, training_starts, wait_for

from src.aggregate.adaptive import read_record
from src.aggregate.sequential import MAX_SEEDS

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

CLUSTER = ROOT / ".ci" / "slurm-cluster"
# The node has 2 CPUs and no GPU; `low` is the default partition, `high` pre-empts it.
LAUNCHER = {
    "partition": "low",
    "gpus_per_node": 0,
    "cpus_per_task": 1,
    "mem_gb": 2,
    "timeout_min": 10,
    "signal_delay_s": 30,
}


def sinfo_answers() -> bool:
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def cluster() -> Path:
    """This repository's cluster config (or the caller's SLURM_CONF); skips the module without one."""
    conf = ROOT / "outputs" / "slurm" / "slurm.conf"
    if "SLURM_CONF" not in os.environ and conf.exists():
        os.environ["SLURM_CONF"] = str(conf)
    if not sinfo_answers():
        pytest.skip("no SLURM cluster answers `sinfo`: `make slurm-up` starts one on this machine (root)")
    return Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))


@pytest.fixture
def outputs(cluster, request):
    """Where a test's sweep goes: outputs/slurm/tests/<test>, emptied first (the jobs write there too)."""
    folder = ROOT / "outputs" / "slurm" / "tests" / re.sub(r"[^\w-]+", "_", request.node.name)  # Hydra's grammar
    for old in (folder, home_of(folder)):
        shutil.rmtree(old, ignore_errors=True)
    folder.mkdir(parents=True)
    yield folder
    submitted = submitit_dir(folder)  # a requeued copy may still be queued: it must not
    ids = sorted({d.name.split("_")[0] for d in submitted.iterdir() if d.is_dir()}) if submitted.exists() else []
    if ids:  # hold a CPU into the next test (or be pre-empted by it)
        subprocess.run(["scancel", *ids], capture_output=True, timeout=60)


def slurm(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True, timeout=60).stdout


def launch(
    outputs: Path, cache: Path, *overrides: str, name: str = "launch", **launcher
) -> tuple[subprocess.Popen, Path]:
    """`python -m src.run -m hydra/launcher=slurm ...` in the background; `launcher` changes LAUNCHER."""
    log = outputs / f"{name}.log"
    keys = [f"hydra.launcher.{k}={v}" for k, v in {**LAUNCHER, **launcher}.items()]
    proc = spawn_cli(
        "-m",
        "hydra/launcher=slurm",
        *keys,
        f"hydra.sweep.dir={outputs / 'sweep'}",
        *TINY,
        *overrides,
        outputs=outputs,
        cache=cache,
        log=log,
    )
    return proc, log


def finish(proc: subprocess.Popen, log: Path, timeout: float = 400) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        pytest.fail(f"the launch did not end within {timeout:.0f} s\n{log.read_text()[-3000:]}")
    return log.read_text()


def slurm_job_id(job_dir: Path) -> str:
    """The SLURM id (array_task form) of the job that runs `job_dir`, from its submitit log name."""
    sweep = job_dir.parent
    num = job_dir.name.split("_")[0]
    names = [d.name for d in (sweep / ".submitit").iterdir() if d.is_dir()]  # <array id>_<index>, or <id>
    ids = [n for n in names if n.endswith(f"_{num}")] or [n for n in names if n.isdigit() and num == "0"]
    assert len(ids) == 1, f"job {num}: submitit folders {names}"
    return ids[0]


def checkpointed(outputs: Path, job: int = 0):
    """The job dir once epoch 1's last.pt is there."""

    def ready():
        dirs = [d for d in (outputs / "sweep").glob(f"{job}_*") if (d / "train" / "weights" / "last.pt").exists()]
        return dirs[0] if dirs else None

    return ready


def submitit_dir(outputs: Path) -> Path:
    return outputs / "sweep" / ".submitit"


def job_logs(outputs: Path) -> str:
    """What the SLURM jobs of a test's sweep printed, every run of every job (submitit's logs)."""
    return "".join(p.read_text() for p in sorted(submitit_dir(outputs).rglob("*_log.*")))


def epochs_of(job_dir: Path) -> list[int]:
    rows = (job_dir / "train" / "results.csv").read_text().splitlines()[1:]
    return [int(float(row.split(",")[0])) for row in rows]


def assert_all_completed(outputs: Path, log_text: str, epochs: int, n_jobs: int = 1) -> list[dict]:
    """Every job completed with epochs 1..N each trained once, and the table covers them."""
    dirs = job_dirs(outputs / "sweep")
    assert len(dirs) == n_jobs, log_text[-3000:]
    results = [load_result(d) for d in dirs]
    assert [r["status"] for r in results] == ["completed"] * n_jobs, [r.get("error") for r in results]
    for d in dirs:
        assert epochs_of(d) == list(range(1, epochs + 1)), d
    assert (outputs / "sweep" / "ablation.csv").exists()
    return results


# Trainings that are still running when the stop takes effect. SIGUSR2 acts at once: ~1-2 s epochs
# will do (a SIGKILL test with them once found the job done). submitit ignores SIGTERM, and SLURM's
# SIGKILL follows it KillWait=5 s after a requeue, and after a pre-emption GraceTime=5 s, which
# slurmctld enforced 16-20 s late here: ~5-8 s and ~8-12 s epochs, or the job would finish before the
# kill, skipping the resume. LONGEST leaves ~35 s of training after epoch 1's checkpoint (5 epochs of
# ~7 s on an idle 2-core machine): 384 images x 4 epochs (16 s left) once finished first, when the
# jobs got faster.
FAST = ["dataset.generator.n_train=64", "train.epochs=3"]
LONGER = ["dataset.generator.n_train=256", "train.epochs=3"]
LONGEST = ["dataset.generator.n_train=512", "train.epochs=6"]


def pre_empt_and_resume(outputs: Path, cache: Path, stop, training: list[str]) -> tuple[str, dict]:
    """Launch one training job, `stop(slurm id)` it once epoch 1's checkpoint exists, and wait for
    the launch: it must exit 0 with the job completed, resumed from last.pt, no epoch trained twice."""
    proc, log = launch(outputs, cache, "attn=ema", *training)
    job_dir = wait_for(checkpointed(outputs), 300, proc, log)
    stop(slurm_job_id(job_dir))
    text = finish(proc, log)
    assert proc.returncode == 0, text[-3000:]
    result = assert_all_completed(outputs, text, int(training[-1].split("=")[1]))[0]
    assert result["resumed_from"] and result["resumed_from"].endswith("last.pt"), result
    return text, result


# ------------------------------------------------------------------------------- the array
def test_a_dry_run_sweep_runs_as_a_slurm_array_and_aggregates(outputs, shared_cache):
    proc, log = launch(outputs, shared_cache, "attn=none,ema", "dry_run=true")
    text = finish(proc, log)
    assert proc.returncode == 0, text[-3000:]
    results = [load_result(d) for d in job_dirs(outputs / "sweep")]
    assert [r["status"] for r in results] == ["dry_run", "dry_run"]
    ids = [slurm_job_id(d) for d in job_dirs(outputs / "sweep")]
    array = {i.split("_")[0] for i in ids}
    assert len(array) == 1 and sorted(i.split("_")[1] for i in ids) == ["0", "1"]  # one array, two tasks
    states = slurm("sacct", "-n", "-X", "-P", "-j", array.pop(), "-o", "JobID,State")
    rows = dict(line.split("|") for line in states.split())
    assert sorted(rows) == sorted(ids) and set(rows.values()) <= {"COMPLETED", "COMPLETING", "RUNNING"}, states
    assert (outputs / "sweep" / "ablation.csv").exists() and "Aggregated 2 job(s)" in text


def test_the_adaptive_sweeper_launches_each_round_as_a_slurm_array(outputs, shared_cache):
    """hydra/sweeper=adaptive through the SLURM launcher: round 1 (2 seeds x none, ema) is one array;
    dry runs decide nothing, so round 2 adds seed 2 for ema and its baseline as a second array."""
    proc, log = launch(
        outputs,
        shared_cache,
        "hydra/sweeper=adaptive",
        "attn=none,ema",
        "hydra.sweeper.seeds.max=3",
        "dry_run=true",
        "measure.onnx=false",  # ~2 s a job; the rounds are what this test is about
    )
    text = finish(proc, log)
    assert proc.returncode == 0, text[-3000:]
    dirs = job_dirs(outputs / "sweep")
    assert [load_result(d)["status"] for d in dirs] == ["dry_run"] * 6
    tasks = [p.name.split("_") for p in submitit_dir(outputs).iterdir() if p.is_dir() and "_" in p.name]
    arrays = {}
    for array, task in tasks:
        arrays.setdefault(array, []).append(int(task))
    assert sorted(sorted(t) for t in arrays.values()) == [[0, 1], [0, 1, 2, 3]]  # one array per round
    record = read_record(outputs / "sweep")
    assert record["rounds"] == 2 and record["trainings"] == 6 and record["rows"][0]["stop"] == MAX_SEEDS
    assert text.strip().splitlines()[-1].startswith("adaptive: 6 trainings in 2 round(s)")


# --------------------------------------------------------------------- signals and pre-emption
def test_scancel_usr2_requeues_and_the_job_resumes(outputs, shared_cache):
    pre_empt_and_resume(outputs, shared_cache, lambda job: slurm("scancel", "--signal=USR2", job), FAST)
    logs = job_logs(outputs)
    assert "Caught signal SIGUSR2" in logs and training_starts(logs) == 2  # the first run, and the resumed one


def test_scontrol_requeue_and_the_job_resumes(outputs, shared_cache):
    pre_empt_and_resume(outputs, shared_cache, lambda job: slurm("scontrol", "requeue", job), LONGER)
    assert "REQUEUED" in slurm(
        "sacct", "-n", "-P", "-D", "-X", "-o", "State", "-j", slurm_job_id(job_dirs(outputs / "sweep")[0])
    )


def pre_empt_by_partition(job: str) -> None:
    """A job of the high partition that needs both CPUs: SLURM pre-empts (requeues) the low one."""
    slurm("sbatch", "--parsable", "-p", "high", "-c", "2", "--mem=100M", "-o", "/dev/null", "--wrap", "sleep 2")


@pytest.fixture(params=["off", "on"], ids=["without-user-signal", "with-preempt_send_user_signal"])
def user_signal(cluster, request):
    """slurmctld with and without SlurmctldParameters=preempt_send_user_signal (clusters differ)."""
    if cluster.resolve() != (ROOT / "outputs" / "slurm" / "slurm.conf").resolve() or os.geteuid() != 0:
        pytest.skip("switching preempt_send_user_signal restarts this repository's cluster (root)")
    subprocess.run([str(CLUSTER), "user-signal", request.param], check=True, capture_output=True, timeout=120)
    yield request.param
    if request.param == "on":
        subprocess.run([str(CLUSTER), "user-signal", "off"], check=True, capture_output=True, timeout=120)


def test_partition_preemption_requeues_and_the_job_resumes(outputs, shared_cache, user_signal):
    pre_empt_and_resume(outputs, shared_cache, pre_empt_by_partition, FAST if user_signal == "on" else LONGEST)
    states = slurm("sacct", "-n", "-P", "-D", "-X", "-o", "State", "-j", slurm_job_id(job_dirs(outputs / "sweep")[0]))
    assert "PREEMPTED" in states or "REQUEUED" in states, states


def test_time_limit_requeues_and_the_job_resumes(outputs, shared_cache):
    """timeout_min=2 with signal_delay_s=60: submitit gets SIGUSR2 30-60 s into the run (slurmctld
    checks time limits every 30 s and warns up to one check early), checkpoints and requeues; the
    requeued job resumes. Every run past ~30 s could be signalled again (two to four runs,
    122-238 s), so once the first signal is in, the test lifts the job's time limit (`scontrol
    update`, as root): exactly one time-out, one resume. ~70 s of training (512 images x 10 epochs
    of ~7 s on an idle machine): the first run is still training when the signal comes, with at
    least one epoch's last.pt. Where the limit cannot be raised (not root), further runs may follow."""
    proc, log = launch(
        outputs,
        shared_cache,
        "attn=ema",
        "train.epochs=10",
        "dataset.generator.n_train=512",
        timeout_min=2,
        signal_delay_s=60,
        max_num_timeout=6,
    )
    wait_for(lambda: submitit_dir(outputs).exists() and "this job is timed-out" in job_logs(outputs), 200, proc, log)
    job = slurm_job_id(job_dirs(outputs / "sweep")[0])
    raised = subprocess.run(["scontrol", "update", f"JobId={job}", "TimeLimit=10"], capture_output=True, timeout=60)
    text = finish(proc, log, timeout=400)
    assert proc.returncode == 0, text[-3000:]
    result = assert_all_completed(outputs, text, 10)[0]
    assert result["resumed_from"].endswith("last.pt"), result
    if raised.returncode == 0:
        assert training_starts(job_logs(outputs)) == 2  # the first run and the resumed one, no more


def test_a_job_killed_outright_is_resumed_by_the_next_launch(outputs, shared_cache):
    proc, log = launch(outputs, shared_cache, "attn=ema", *LONGER)  # FAST ones finished before the kill once
    job_dir = wait_for(checkpointed(outputs), 300, proc, log)
    slurm("scancel", "--signal=KILL", slurm_job_id(job_dir))
    text = finish(proc, log)
    assert proc.returncode != 0, text[-3000:]
    killed = load_result(job_dir)  # named, with the way back, in the table and in its result.json
    assert killed["status"] == "running" and killed["interrupted"], killed
    assert "without a result" in killed["error"] and f"hydra.sweep.dir={outputs / 'sweep'}" in killed["error"]
    assert "job 0: SLURM ended job" in text and "to resume: python -m src.run -m " in text
    again, log2 = launch(outputs, shared_cache, "attn=ema", *LONGER, name="again")
    text2 = finish(again, log2)
    assert again.returncode == 0, text2[-3000:]
    result = assert_all_completed(outputs, text2, 3)[0]  # LONGER: 3 epochs
    assert result["resumed_from"].endswith("last.pt")


def test_two_launches_of_one_sweep_train_each_job_once(outputs, shared_cache):
    first, log1 = launch(outputs, shared_cache, "attn=none,ema", name="first")
    wait_for(lambda: len(list((outputs / "sweep").glob("*/result.json"))) == 2, 300, first, log1)
    second, log2 = launch(outputs, shared_cache, "attn=none,ema", name="second")
    texts = [finish(first, log1), finish(second, log2)]
    assert first.returncode == 0 and second.returncode == 0, [t[-2000:] for t in texts]
    assert_all_completed(outputs, texts[1], 1, n_jobs=2)
    assert training_starts(job_logs(outputs)) == 2 and len(list(submitit_dir(outputs).rglob("*_log.out"))) == 4
