"""One run over several machines: each machine runs the same ``python -m reedit`` on one shared
run folder and starts its own ranks; together they are one Accelerate launch
(``--num_machines/--machine_rank/--main_process_ip``).

Machine 0 leads: it loads the dataset, writes the ranks' job file (``ranks/job.pkl``, with its
address and rendezvous port), and alone runs the report and talks to the tracker. The others
follow: they wait for the leader's job file of *this* start (:attr:`Machine.start`: the Slurm or
submitit job step, so a job file left by an earlier start is never taken), then start their
ranks with their own GPUs. A machine whose part fails leaves an abort marker
(``ranks/abort-<start>.json``); every machine watches for it while it waits, so that no machine
is left waiting for a partner that is gone.

Under Slurm (``srun``, or submitit's ``hydra/launcher=slurm`` with ``nodes: M``) the count and
this machine's index come from the job step (``machines.count=auto``); elsewhere they are given.
Standard library only (submitit's job environment is read only inside a submitit job).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.config import ConfigError, ReeditError
from reedit.files import temp_path

log = logging.getLogger(__name__)

AUTO = "auto"


class MachineAborted(ReeditError):
    """Another machine of the run failed (the message names it and what it said)."""


@dataclass(frozen=True)
class Machine:
    """This machine's place among the machines that share one run."""

    count: int = 1
    rank: int = 0
    start: str = ""  # names this start on every machine (job files and abort markers carry it)
    main_ip: str | None = None  # how the others reach machine 0; None: its host name
    wait_s: float = 600.0  # how long a follower waits for the leader's job file
    task: str = ""  # where count and rank came from (the job step), for the log
    per_node: int = 1  # the step's tasks per node (each task is a machine of the run)

    @property
    def leads(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.count > 1


ONE = Machine()


def _ancestors(pid: int, depth: int) -> list[int]:
    """``pid`` and up to ``depth`` of its parents (Linux ``/proc``; just ``pid`` elsewhere)."""
    out = [pid]
    for _ in range(depth):
        try:
            stat = Path(f"/proc/{out[-1]}/stat").read_text()
        except OSError:
            break
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent <= 1:
            break
        out.append(parent)
    return out


def is_step_task(env: Mapping[str, str] = os.environ, pid: int | None = None) -> bool:
    """Whether this process is (or is run by, within two parents: ``srun bash -c ...``) the task
    srun started, rather than a process that only inherited the step's variables (a Ray worker
    of a cluster started in the step, a sweep job's subprocess)."""
    task = env.get("SLURM_TASK_PID")
    if not task or not task.isdigit():
        return True  # nothing to tell by
    return int(task) in _ancestors(pid or os.getpid(), 2)


def task_of(env: Mapping[str, str] = os.environ) -> tuple[int, int, str, str, int] | None:
    """(tasks, this task's rank, the step's id, what it is, its nodes) of the submitit job or
    ``srun`` step this process is a task of; None outside one. A batch script's own shell is
    not a step (``SLURM_STEP_NUM_TASKS`` is set by ``srun`` only), nor is a process that only
    inherited a step's variables (:func:`is_step_task`)."""
    if not is_step_task(env):
        log.info(
            "Slurm step variables inherited from task %s: this process is not a task of the "
            "step (one machine unless machines.count says otherwise)",
            env.get("SLURM_TASK_PID"),
        )
        return None
    restarts = env.get("SLURM_RESTART_COUNT", "0")
    if env.get("SUBMITIT_EXECUTOR"):
        import submitit

        job = submitit.JobEnvironment()
        step = env.get("SLURM_STEP_ID", "")
        start = f"{job.job_id}.{step}.{restarts}"
        return job.num_tasks, job.global_rank, start, "submitit job", job.num_nodes
    if env.get("SLURM_STEP_NUM_TASKS") and env.get("SLURM_PROCID") is not None:
        step = f"{env.get('SLURM_JOB_ID', '')}.{env.get('SLURM_STEP_ID', '')}.{restarts}"
        tasks, nodes = int(env["SLURM_STEP_NUM_TASKS"]), int(env.get("SLURM_STEP_NUM_NODES", 1))
        return tasks, int(env["SLURM_PROCID"]), step, "srun step", nodes
    return None


def _whole(key: str, value: Any, least: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a whole number or auto, got {value!r}") from None
    if number < least:
        raise ConfigError(f"{key} must be >= {least}, got {number}")
    return number


def machine_of(settings: Mapping[str, Any] | None, env: Mapping[str, str] = os.environ) -> Machine:
    """This machine from the ``machines`` settings (``auto``: from the job step), checked,
    naming the key."""
    settings = dict(settings or {})
    count, rank = settings.get("count", AUTO), settings.get("rank", AUTO)
    start, wait = settings.get("start", AUTO), settings.get("wait_s", 600)
    task = task_of(env) if count == AUTO else None
    if count == AUTO:
        count = task[0] if task else 1
    count = _whole("machines.count", count, 1)
    if count == 1:
        return ONE
    if task is None and AUTO in (rank, start):
        task = task_of(env)
    if rank == AUTO:
        if task is None:
            raise ConfigError(
                f"machines.rank: machines.count={count} outside a Slurm or submitit job step; "
                f"give each machine its index, machines.rank=0..{count - 1}"
            )
        rank = task[1]
    rank = _whole("machines.rank", rank, 0)
    if rank >= count:
        raise ConfigError(f"machines.rank must be below machines.count={count}, got {rank}")
    if task is not None and task[0] != count:
        raise ConfigError(
            f"machines.count={count}, but this {task[3]} has {task[0]} task(s): run one task per "
            "machine (e.g. srun --ntasks-per-node=1, or hydra.launcher.tasks_per_node=1)"
        )
    if start == AUTO:
        if task is None:
            raise ConfigError(
                "machines.start: outside a Slurm or submitit job step, give every machine the "
                "same new name for this start, e.g. machines.start=$(date +%s) on the leader, "
                "passed to the others"
            )
        start = task[2]
    start = re.sub(r"[^\w.-]", "_", str(start))
    if not start:
        raise ConfigError("machines.start must not be empty")
    main_ip = settings.get("main_ip")
    wait_s = float(wait)
    if wait_s <= 0:
        raise ConfigError(f"machines.wait_s must be > 0, got {wait}")
    what = task[3] if task else "machines.rank"
    per_node = -(-task[0] // max(1, task[4])) if task else 1
    return Machine(count, rank, start, str(main_ip) if main_ip else None, wait_s, what, per_node)


# ------------------------------------------------------------------ the markers they share
def abort_path(folder: Path, machine: Machine) -> Path:
    return Path(folder) / "ranks" / f"abort-{machine.start}.json"


def abort(folder: Path, machine: Machine, error: str) -> None:
    """Tell the other machines that this one's part failed. The first marker stays (created
    whole, by a link, so that two machines failing at once do not overwrite each other); a
    marker that cannot be written is a warning, never this machine's error instead of its own."""
    path = abort_path(folder, machine)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        said = {"machine": machine.rank, "error": error, "host": socket.gethostname()}
        tmp.write_text(json.dumps(said), encoding="utf-8")
        os.link(tmp, path)
    except FileExistsError:
        pass  # another machine's failure was first
    except OSError as exc:
        log.warning("could not leave the abort marker %s for the other machines: %s", path, exc)
    finally:
        tmp.unlink(missing_ok=True)


def check(folder: Path, machine: Machine) -> None:
    """Raise :class:`MachineAborted` when another machine's part of this start failed."""
    if not machine.several:
        return
    try:
        said = json.loads(abort_path(folder, machine).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return
    if said.get("machine") != machine.rank:
        raise MachineAborted(
            f"machine {said.get('machine')} of {machine.count} failed: {said.get('error')} "
            f"({abort_path(folder, machine).name}; a rerun needs a new machines.start)"
        )


@contextmanager
def guarded(folder: Path, machine: Machine) -> Iterator[None]:
    """Whatever fails inside leaves this start's abort marker for the other machines."""
    try:
        yield
    except MachineAborted:
        raise  # another machine's failure: its marker is there already
    except BaseException as exc:
        if machine.several:
            abort(folder, machine, f"{type(exc).__name__}: {exc}"[:2000])
        raise


def wait_for(path: Path, ready: Any, folder: Path, machine: Machine, what: str) -> Any:
    """Poll ``ready(path)`` (None: not yet) until it gives a value, another machine aborts, or
    ``machine.wait_s`` pass."""
    deadline = time.monotonic() + machine.wait_s
    delay = 0.05
    while True:
        value = ready(path)
        if value is not None:
            return value
        check(folder, machine)
        if time.monotonic() > deadline:
            raise ReeditError(
                f"machine {machine.rank} of {machine.count}: no {what} in {path.parent} after "
                f"{machine.wait_s:.0f} s (machines.wait_s); is machine 0 running with the same "
                f"run_dir, on a file system every machine shares?"
            )
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
