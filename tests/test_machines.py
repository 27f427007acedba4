"""One run over several machines (``machines.*``): each machine runs the same command on one run
folder; machine 0 leads (dataset, job file, report), the others join its Accelerate launch with
``--machine_rank``. On one machine the machines are processes: two ``python -m reedit`` with
``machines.rank`` 0 and 1 (what ``srun`` gives each node), and submitit's local executor with
``tasks_per_node=2`` (the code path of ``hydra/launcher=slurm hydra.launcher.nodes=2``).

The fast tests check how a machine finds its place (settings, a ``srun`` step's variables, a
submitit job), the command line each machine runs, and one real two-machine run; the ``scale``
marker holds a rank killed on either machine and the submitit sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, reedit_env
from test_ranks import _wait_for, images, metrics, records, stage_runs

from reedit import machines
from reedit.config import ConfigError
from reedit.distributed import RankJob, command
from reedit.machines import ONE, Machine, machine_of

QUICK = ["dataset=demo", "refiner=none", "judge=none", "progress=false", "executor=identity"]
BUSY = [*QUICK, "model=busy_cpu", "model.work=300000", "model.skew=10"]
SRUN = {  # what srun gives task 1 of a two-node step (one task per node)
    "SLURM_JOB_ID": "4242",
    "SLURM_STEP_ID": "0",
    "SLURM_STEP_NUM_TASKS": "2",
    "SLURM_STEP_NUM_NODES": "2",
    "SLURM_NTASKS": "2",
    "SLURM_PROCID": "1",
    "SLURM_NODEID": "1",
    "SLURM_LOCALID": "0",
}


# ------------------------------------------------------------------------ a machine's place
def test_one_machine_unless_told_or_in_a_job_step():
    assert machine_of(None, env={}) == ONE
    assert machine_of({"count": "auto", "rank": "auto", "start": "auto"}, env={}) == ONE
    # a batch script's own shell (sbatch sets SLURM_NTASKS, but it is no srun step)
    batch = {k: v for k, v in SRUN.items() if k != "SLURM_STEP_NUM_TASKS"}
    assert machine_of({"count": "auto"}, env=batch) == ONE


def test_a_srun_step_gives_the_count_the_rank_and_one_start_name():
    m = machine_of({"count": "auto", "rank": "auto", "start": "auto", "wait_s": 30}, env=SRUN)
    assert (m.count, m.rank, m.start, m.wait_s, m.task) == (2, 1, "4242.0.0", 30.0, "srun step")
    assert not m.leads and m.several
    first = machine_of({}, env={**SRUN, "SLURM_PROCID": "0"})
    assert first.leads and first.start == m.start
    # a requeued job is another start: an earlier start's job file is never taken
    assert machine_of({}, env={**SRUN, "SLURM_RESTART_COUNT": "1"}).start == "4242.0.1"


def test_a_submitit_job_gives_its_tasks_through_submitits_job_environment():
    env = {  # what submitit's local executor gives task 1 of a 2-task job (SlurmExecutor alike)
        "SUBMITIT_EXECUTOR": "local",
        "SUBMITIT_LOCAL_JOB_ID": "977",
        "SUBMITIT_LOCAL_NTASKS": "2",
        "SUBMITIT_LOCAL_GLOBALID": "1",
        "SUBMITIT_LOCAL_LOCALID": "1",
        "SUBMITIT_LOCAL_NODEID": "0",
        "SUBMITIT_LOCAL_JOB_NUM_NODES": "1",
    }
    saved = dict(os.environ)
    os.environ.update(env)  # submitit's JobEnvironment reads os.environ itself
    try:
        m = machine_of({}, env=os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert (m.count, m.rank, m.start, m.task) == (2, 1, "977..0", "submitit job")


@pytest.mark.parametrize(
    "settings, env, message",
    [
        (
            {"count": 2},
            {},
            r"machines.rank: machines.count=2 outside .* machines.rank=0..1",
        ),
        ({"count": 2, "rank": 0}, {}, r"machines.start: outside a Slurm"),
        ({"count": 2, "rank": 2, "start": "a"}, {}, r"machines.rank must be below .*=2, got 2"),
        ({"count": 0}, {}, r"machines.count must be >= 1, got 0"),
        ({"count": "two"}, {}, r"machines.count must be a whole number or auto, got 'two'"),
        ({"count": 2, "rank": 0, "start": "a", "wait_s": 0}, {}, r"machines.wait_s must be > 0"),
        ({"count": 3}, SRUN, r"machines.count=3, but this srun step has 2 task\(s\)"),
    ],
)
def test_wrong_machine_settings_name_the_key(settings, env, message):
    with pytest.raises(ConfigError, match=message):
        machine_of(settings, env=env)


def test_a_bad_machine_setting_fails_at_set_up_with_the_other_problems(compose, monkeypatch):
    from reedit.run import setup

    with pytest.raises(ConfigError, match=r"machines.rank must be below machines.count=2"):
        setup(compose(*QUICK, "model=identity", "machines.count=2", "machines.rank=5"))
    # two tasks on one node would both start ranks on the node's GPUs
    for key, value in {**SRUN, "SLURM_STEP_NUM_NODES": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ConfigError, match=r"srun step runs 2 tasks per node, .* gpus=\[0, 1\]"):
        setup(compose(*QUICK, "model=identity", "gpus=[0,1]"))
    assert setup(compose(*QUICK, "model=identity", "cpu_ranks=2")).world == 4  # CPU ranks may


def test_each_machine_runs_one_accelerate_launch_over_every_machines_ranks(tmp_path):
    job = RankJob({}, str(tmp_path), [], {}, world=4, replicas=[["2"], ["3"]], launch="s1")
    job.machines, job.main, job.port = 2, "node-a", 29123
    cmd = command(job, tmp_path / "job.machine1.pkl", 8, Machine(2, 1, "s1"))

    def value(flag: str) -> str:
        return cmd[cmd.index(flag) + 1]

    assert value("--num_processes") == "4"  # every machine's ranks
    assert value("--num_machines") == "2" and value("--machine_rank") == "1"
    assert value("--main_process_ip") == "node-a" and value("--main_process_port") == "29123"
    assert value("--gpu_ids") == "2,3"  # this machine's own devices
    assert cmd[-3:] == ["-m", "reedit.rank", str(tmp_path / "job.machine1.pkl")]
    one = command(RankJob({}, str(tmp_path), [], {}, world=2), tmp_path / "job.pkl", 1)
    assert "--main_process_ip" not in one and one[one.index("--num_machines") + 1] == "1"


def test_a_follower_stops_waiting_when_another_machine_gives_up(tmp_path):
    m1 = Machine(2, 1, "s9", wait_s=60)
    machines.abort(tmp_path, Machine(2, 0, "s9"), "dataset: no file x.json")
    t0 = time.monotonic()
    with pytest.raises(machines.MachineAborted, match=r"machine 0 of 2 failed: dataset: no file"):
        machines.wait_for(tmp_path / "job.pkl", lambda p: None, tmp_path, m1, "job file")
    assert time.monotonic() - t0 < 5
    # a marker of another start is not this start's
    with pytest.raises(machines.ReeditError, match=r"no job file .* after 0 s"):
        machines.wait_for(
            tmp_path / "job.pkl",
            lambda p: None,
            tmp_path,
            Machine(2, 1, "s10", wait_s=0.2),
            "job file",
        )


# ------------------------------------------------------------------------- real machines
def start(tmp_path: Path, folder: Path, rank: int, *args: str, start: str = "t1"):
    cmd = [sys.executable, "-m", "reedit", *args, "machines.count=2", f"machines.rank={rank}"]
    cmd += [f"machines.start={start}", "machines.wait_s=120", f"run_dir={folder}"]
    return subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=reedit_env(OMP_NUM_THREADS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def both(procs, timeout: float = 600) -> list[tuple[int, str]]:
    out = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=timeout)
            out.append((p.returncode, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return out


def solo(tmp_path: Path, folder: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reedit", *args, f"run_dir={folder}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=reedit_env(OMP_NUM_THREADS="1"),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_two_machines_make_one_launch_and_give_one_processs_results(tmp_path):
    """Two `python -m reedit` (machine 0 and 1, one CPU rank each) on one folder: one run of two
    ranks, the report written once, by machine 0, equal to one process's."""
    solo(tmp_path, tmp_path / "one", *BUSY)
    folder = tmp_path / "two"
    (code0, err0), (code1, err1) = both([start(tmp_path, folder, k, *BUSY) for k in (0, 1)])
    assert code0 == 0, err0[-3000:]
    assert code1 == 0, err1[-3000:]
    assert "machine 0 of 2 (machines.rank, start t1): starting ranks 0-0 of 2 (CPU)" in err0
    assert "machine 1 of 2 (machines.rank, start t1): starting ranks 1-1 of 2 (CPU)" in err1
    assert "report: wrote" in err0 and "report: wrote" not in err1
    assert "dataset:" not in err1  # the samples come with machine 0's job file
    outcomes = [json.loads((folder / "ranks" / f"rank{k}.json").read_text()) for k in (0, 1)]
    assert [o["status"] for o in outcomes] == ["ok", "ok"]
    assert len({o["pid"] for o in outcomes}) == 2
    assert {r["execution"].split("/")[0] for r in stage_runs(folder)} <= {"t1"}
    assert records(folder) == records(tmp_path / "one") and len(records(folder)) == 10
    assert metrics(folder) == metrics(tmp_path / "one")
    assert images(folder) == images(tmp_path / "one")
    assert not list((folder / "ranks").glob("job*.pkl")) and not list(
        (folder / "ranks").glob("abort-*")
    )


@pytest.mark.scale
@pytest.mark.parametrize("victim", [0, 1])
def test_a_rank_killed_on_either_machine_stops_both_and_a_rerun_completes(tmp_path, victim):
    args = [*QUICK, "model=busy_cpu", "model.work=3000000"]
    solo(tmp_path, tmp_path / "one", *args)
    folder = tmp_path / "two"
    procs = [start(tmp_path, folder, k, *args) for k in (0, 1)]
    try:
        edits = folder / "records" / f"edit.rank{victim}.jsonl"
        _wait_for(lambda: edits.is_file() and edits.read_text().count("\n") >= 1, 300, "edits")
        pid = json.loads((folder / "ranks" / f"rank{victim}.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        (code0, err0), (code1, err1) = both(procs, timeout=120)  # no hang on either machine
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert (code0, code1) == (2, 2), (err0[-2000:], err1[-2000:])
    killed = f"rank {victim} ended without finishing (killed"
    other = (err1, err0)[victim]  # the machine whose ranks were fine names the other one
    assert killed in (err0, err1)[victim]
    assert f"machine {victim} of 2 failed: {killed}" in other
    assert f"rerun with run_dir={folder}" in other
    assert 1 <= len([k for k in records(folder) if k[0] == "edit"]) < 10
    (code0, err0), (code1, err1) = both(
        [start(tmp_path, folder, k, start="t2") for k in (0, 1)]  # the folder's own settings
    )
    assert (code0, code1) == (0, 0), (err0[-2000:], err1[-2000:])
    assert records(folder) == records(tmp_path / "one")
    assert metrics(folder, "executions") == metrics(tmp_path / "one", "executions")


@pytest.mark.scale
def test_the_big_run_example_on_submitit_local_is_one_run_over_two_machines(tmp_path):
    """multirun_examples/big_run_slurm.sh with LAUNCHER=submitit_local: each job is one submitit
    job of two tasks (``hydra.launcher.tasks_per_node=2``); each task runs the Hydra job, task
    0 leads and task 1 follows: the code path of ``hydra/launcher=slurm hydra.launcher.nodes=2``,
    where srun starts one task per node."""
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        ["bash", str(ROOT / "multirun_examples" / "big_run_slurm.sh"), *BUSY, "seed=1,2"]
        + [f"hydra.sweep.dir={sweep}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=reedit_env(
            OMP_NUM_THREADS="1",
            LAUNCHER="submitit_local",
            NODES="2",
            MODEL="busy_cpu",
            PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin",
        ),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sweep: 2 jobs, 0 failed" in proc.stderr
    jobs = [json.loads(x) for x in (sweep / "jobs.jsonl").read_text().splitlines()]
    assert sorted(j["num"] for j in jobs) == [0, 1]  # one line a job: machine 0 speaks for it
    for job in jobs:
        folder = Path(job["run_dir"])
        log = (folder / "reedit.log").read_text()
        assert "machine 0 of 2 (submitit job" in log and "machine 1 of 2 (submitit job" in log
        assert "machine 1 of 2: its ranks are done" in log
        assert log.count("report: wrote") == 1
        outcomes = [json.loads((folder / "ranks" / f"rank{k}.json").read_text()) for k in (0, 1)]
        assert [o["status"] for o in outcomes] == ["ok", "ok"]
        assert len({o["pid"] for o in outcomes}) == 2
        assert len(records(folder)) == 10 and metrics(folder)["stages"]["edit"]["ok"] == 10
    submitit_jobs = [p for p in (sweep / ".submitit").iterdir() if p.name != "%j"]
    for folder in submitit_jobs:  # one log per task: the two "nodes"
        names = {p.name.split("_", 1)[1] for p in folder.iterdir()}
        assert {"0_log.err", "1_log.err", "0_result.pkl"} <= names


def test_only_the_task_srun_started_reads_the_step_not_a_process_that_inherited_it():
    import os

    mine = {**SRUN, "SLURM_TASK_PID": str(os.getpid())}
    assert machines.is_step_task(mine) and machine_of({}, env=mine).count == 2
    parent = {**SRUN, "SLURM_TASK_PID": str(os.getppid())}  # srun bash -c "python -m reedit"
    assert machines.is_step_task(parent)
    elsewhere = {**SRUN, "SLURM_TASK_PID": "1"}  # e.g. a Ray worker of a cluster in the step
    assert not machines.is_step_task(elsewhere) and machine_of({}, env=elsewhere) == ONE


def test_the_first_machine_to_fail_is_the_one_named(tmp_path):
    m0, m1 = Machine(2, 0, "s3"), Machine(2, 1, "s3")
    machines.abort(tmp_path, m1, "rank 1 killed")
    machines.abort(tmp_path, m0, "rank 0 stopped because machine 1 failed")
    said = json.loads(machines.abort_path(tmp_path, m0).read_text())
    assert said["machine"] == 1 and said["error"] == "rank 1 killed"
    assert not list((tmp_path / "ranks").glob(".*tmp"))  # no temporary file left
    with pytest.raises(machines.MachineAborted, match=r"a rerun needs a new machines.start"):
        machines.check(tmp_path, m0)


def test_a_follower_that_fails_at_set_up_tells_machine_0(compose, tmp_path):
    from reedit.run import run

    over = [*QUICK, "model=identity", "machines.count=2", "machines.rank=1"]
    with pytest.raises(ConfigError, match=r"cpu_ranks must be >= 1"):
        run(compose(*over, "machines.start=s4", "cpu_ranks=0"), run_dir=tmp_path)
    said = json.loads(machines.abort_path(tmp_path, Machine(2, 1, "s4")).read_text())
    assert said["machine"] == 1 and "cpu_ranks must be >= 1" in said["error"]
