"""Ranks: several processes working on one run folder, started through Accelerate.

The launching process (``python -m reedit``, CUDA-free) calls :func:`launch`: it writes what the
ranks need (:class:`RankJob`: the resolved config, the samples, the run folder) to
``<run>/ranks/job.pkl`` and runs ``accelerate launch --multi_gpu --num_processes N`` over
``python -m reedit.rank`` with a free rendezvous port and, on GPUs, the listed ids. Each rank
joins with ``PartialState(cpu=True)`` (gloo: the ranks only need a barrier and a counter, never
a CUDA collective, so the same path runs on CPU ranks), sees only its replica's GPUs
(``CUDA_VISIBLE_DEVICES`` narrowed before anything touches CUDA) and works through the stages.

:class:`Ranks` is what the stage driver uses: ``barrier()`` and ``claim(key)``, an atomic counter
in the rendezvous store (``store.add``), so that ranks take chunks of pending units as they free
up: a slow sample never idles the other GPUs. A rank that dies ends the launch (torchrun stops
the others); :func:`launch` then names the rank and what it said in ``ranks/rank<k>.json``.

Several machines (:mod:`reedit.machines`) make one launch: machine 0 writes the job file with its
address and port, the others read it and start their ranks with ``--machine_rank``; ranks are
numbered across machines (records, claims and outcomes use the global rank), and each pins its
GPUs by its index on its own machine. Every machine's launcher stops its ranks when another
machine's part fails.

Standard library only at import time: torch and accelerate are imported in the ranks.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reedit import machines
from reedit.config import ReeditError
from reedit.files import write_bytes_atomic
from reedit.machines import ONE, Machine

log = logging.getLogger(__name__)

RANKS_DIR = "ranks"  # in the run folder: the job file, each rank's log and outcome
JOB_FILE = "job.pkl"
VISIBLE = "CUDA_VISIBLE_DEVICES"


class RanksFailed(ReeditError):
    """The ranks did not all finish (the message names the rank and its error)."""


@dataclass
class RankJob:
    """What every rank of a run is given (pickled: the same code reads it back)."""

    config: dict[str, Any]  # the run's resolved config; gpus, cpu_ranks set for one rank
    folder: str
    samples: list[Any]
    choices: dict[str, str]
    world: int  # ranks in all, over every machine
    replicas: list[list[str]] = field(default_factory=list)  # physical device ids per local rank
    launch: str = field(default_factory=lambda: os.urandom(4).hex())
    machines: int = 1
    main: str = "127.0.0.1"  # machine 0's address and rendezvous port (set by launch)
    port: int = 0


class Ranks:
    """This process's place among the run's ranks: a barrier and an atomic counter.

    ``SOLO`` (one process) has no store: its barrier does nothing and its counter is local."""

    def __init__(
        self, rank: int = 0, world: int = 1, store: Any = None, launch: str = "", local: int = 0
    ) -> None:
        self.rank, self.world, self.store = rank, world, store
        self.local = local  # this rank's index on its machine (picks its replica)
        self.launch = launch  # names this start of the ranks (their stage-log lines share it)
        self._local: dict[str, int] = {}

    @property
    def primary(self) -> bool:
        """The rank that does the folder-wide writes (archives, the settings file)."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def add(self, key: str, amount: int) -> int:
        """Add ``amount`` to the counter ``key`` (shared by the ranks); its new value."""
        if self.store is None:
            self._local[key] = self._local.get(key, 0) + amount
            return self._local[key]
        return int(self.store.add(f"reedit/{key}", amount))

    def claims(self, key: str, total: int) -> Iterator[int]:
        """The indexes in ``range(total)`` this rank takes, one at a time, as it asks: every
        index goes to exactly one rank, to whichever asks first (one process: all of them, in
        order)."""
        if self.store is None:
            yield from range(total)
            return
        while (index := self.add(key, 1) - 1) < total:
            yield index


SOLO = Ranks()


def join(world: int, launch: str = "") -> Ranks:
    """Join the run's ranks (inside ``accelerate launch``): gloo over the rendezvous, checked to
    have the ``world`` processes the launcher asked for."""
    from accelerate import PartialState

    state = PartialState(cpu=True)
    if state.num_processes != world:
        raise RanksFailed(
            f"rank {state.process_index}: {state.num_processes} process(es) joined, {world} "
            "were launched (is the rendezvous shared with another run?)"
        )
    store = None
    if world > 1:
        from torch.distributed import distributed_c10d

        store = distributed_c10d._get_default_store()
    return Ranks(state.process_index, world, store, launch, state.local_process_index)


def pin(replica: Sequence[str]) -> None:
    """Show this process only its replica's devices (before anything touches CUDA)."""
    if replica:
        os.environ[VISIBLE] = ",".join(replica)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def outcome_path(folder: Path, rank: int) -> Path:
    return Path(folder) / RANKS_DIR / f"rank{rank}.json"


def write_outcome(folder: Path, rank: int, outcome: dict[str, Any]) -> None:
    path = outcome_path(folder, rank)
    mine = {"rank": rank, "pid": os.getpid(), "time": time.time(), **outcome}
    write_bytes_atomic(json.dumps(mine).encode(), path)


def read_outcome(folder: Path, rank: int) -> dict[str, Any] | None:
    try:
        return json.loads(outcome_path(folder, rank).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _accelerate_config(path: Path) -> Path:
    """A config file of our own, so that a user's default Accelerate config (mixed precision,
    another machine count) cannot change how the ranks start; the machines are on the command
    line."""
    write_bytes_atomic(  # every machine writes the same text
        b"compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\n"
        b"mixed_precision: 'no'\ndynamo_config: {}\nuse_cpu: false\n",
        path,
    )
    return path


def command(job: RankJob, job_file: Path, threads: int, machine: Machine = ONE) -> list[str]:
    """The ``accelerate launch`` command line that starts this machine's ranks."""
    ranks_dir = job_file.parent
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    cmd += ["--config_file", str(_accelerate_config(ranks_dir / "accelerate.yaml"))]
    cmd += ["--multi_gpu", "--num_processes", str(job.world)]
    cmd += ["--num_machines", str(job.machines), "--machine_rank", str(machine.rank)]
    if job.machines > 1:
        cmd += ["--main_process_ip", job.main]
    cmd += ["--main_process_port", str(job.port), "--num_cpu_threads_per_process", str(threads)]
    cmd += ["--monitor_interval", "1"]  # a dead rank is seen within a second
    devices = [d for replica in job.replicas for d in replica]
    if devices:
        cmd += ["--gpu_ids", ",".join(devices)]
    return [*cmd, "-m", "reedit.rank", str(job_file)]


def _write_job(job: RankJob, job_file: Path) -> None:
    write_bytes_atomic(pickle.dumps(job), job_file)


def _lead_job(machine: Machine) -> Any:
    """Reads the leader's job file of this start (None: not there yet, or an earlier start's)."""

    def ready(path: Path) -> RankJob | None:
        try:
            job = pickle.loads(path.read_bytes())
        except (FileNotFoundError, EOFError, pickle.UnpicklingError):
            return None
        return job if isinstance(job, RankJob) and job.launch == machine.start else None

    return ready


def launch(job: RankJob, machine: Machine = ONE) -> None:
    """Run this machine's ranks to the end; a rank that failed (or was killed), or another
    machine's part, raises :class:`RanksFailed` naming it, after every rank here has stopped.
    Interrupted, the ranks are stopped too. ``job.world`` counts the ranks of every machine;
    ``job.replicas`` are this machine's."""
    folder = Path(job.folder)
    ranks_dir = folder / RANKS_DIR
    ranks_dir.mkdir(parents=True, exist_ok=True)
    local = job.world // machine.count
    if machine.leads:
        for rank in range(job.world):
            outcome_path(folder, rank).unlink(missing_ok=True)
        job.machines = machine.count
        if machine.several:
            job.launch = machine.start
            job.main = machine.main_ip or socket.gethostname()
            for old in ranks_dir.glob("abort-*.json"):  # earlier starts' markers
                if old != machines.abort_path(folder, machine):
                    old.unlink(missing_ok=True)
        # a gpu_pool job's own port (MASTER_PORT: distinct per job), else a free one
        job.port = int(os.environ.get("MASTER_PORT") or free_port())
        job_file = ranks_dir / JOB_FILE
    else:
        path = ranks_dir / JOB_FILE
        log.info(
            "machine %d of %d: waiting for machine 0's job file %s",
            machine.rank,
            machine.count,
            path,
        )
        lead = machines.wait_for(path, _lead_job(machine), folder, machine, "job file of machine 0")
        if lead.world != job.world or lead.machines != machine.count:
            raise RanksFailed(
                f"machine {machine.rank}: machine 0 launches {lead.world} ranks over "
                f"{lead.machines} machines, this one expects {job.world} over {machine.count}: "
                "run the same command (the same gpus or cpu_ranks) on every machine"
            )
        lead.replicas = job.replicas  # this machine's own devices
        job = lead
        job_file = ranks_dir / f"job.machine{machine.rank}.pkl"
    _write_job(job, job_file)
    # the cores shared out (the user's OMP_NUM_THREADS wins): CPU ranks do not oversubscribe
    threads = int(os.environ.get("OMP_NUM_THREADS") or max(1, (os.cpu_count() or 1) // local))
    cmd = command(job, job_file, threads, machine)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if job.replicas:  # accelerate's --gpu_ids sets CUDA_VISIBLE_DEVICES to the physical ids
        env.pop(VISIBLE, None)
    where = ", ".join("+".join(r) for r in job.replicas) if job.replicas else "CPU"
    if machine.several:
        log.info(
            "machine %d of %d (%s, start %s): starting ranks %d-%d of %d (%s), rendezvous %s:%d",
            machine.rank,
            machine.count,
            machine.task,
            machine.start,
            machine.rank * local,
            (machine.rank + 1) * local - 1,
            job.world,
            where,
            job.main,
            job.port,
        )
    else:
        log.info(
            "starting %d ranks (%s) in %s; their logs: %s/rank<k>.log",
            job.world,
            where,
            folder,
            ranks_dir,
        )
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        code = _wait(proc, folder, machine)
    except BaseException:
        _stop(proc)
        raise
    finally:
        job_file.unlink(missing_ok=True)
    if code != 0:
        mine = range(machine.rank * local, (machine.rank + 1) * local)
        message = _failure(folder, mine, code)
        if machine.several:
            machines.abort(folder, machine, message)
            machines.check(folder, machine)  # another machine failed first: say so
        raise RanksFailed(message)


def _wait(proc: subprocess.Popen, folder: Path, machine: Machine) -> int:
    """The launcher's exit code; with several machines, raises as soon as another machine's
    part fails (the caller then stops this machine's ranks)."""
    if not machine.several:
        return proc.wait()
    while True:
        try:
            return proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            machines.check(folder, machine)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the launcher and its ranks (their process group): TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _failure(folder: Path, ranks: range, code: int) -> str:
    """What this machine's ranks said (their outcomes), worded for the user."""
    outcomes = {rank: read_outcome(folder, rank) for rank in ranks}
    errors = [o for o in outcomes.values() if o and o.get("status") == "error"]
    silent = [rank for rank, o in outcomes.items() if not o or o.get("status") == "started"]
    parts = []
    if errors:  # the first to fail is the cause: the others' errors follow from it
        errors.sort(key=lambda o: o.get("time", 0.0))
        first = errors[0]
        parts.append(f"rank {first['rank']} failed: {first['error_type']}: {first['error']}")
        if errors[1:]:
            after = ", ".join(str(o["rank"]) for o in errors[1:])
            parts.append(f"rank {after} failed after it (see {folder / RANKS_DIR}/rank<k>.log)")
    if silent:
        ranks = ", ".join(map(str, silent))
        parts.append(
            f"rank {ranks} ended without finishing (killed: a signal, out of memory? a full "
            f"disk?); see {folder / RANKS_DIR}/rank<k>.log"
        )
    if not parts:
        parts.append(f"the ranks' launcher exited with code {code}")
    return (
        "; ".join(parts) + f". The other ranks were stopped; the records written are kept: "
        f"rerun with run_dir={folder} to complete the run."
    )
