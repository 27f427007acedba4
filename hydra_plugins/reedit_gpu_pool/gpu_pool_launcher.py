"""``hydra/launcher=gpu_pool``: a sweep's jobs as ``python -m reedit`` subprocesses, each on its
own GPUs from a pool, as many at once as the pool holds.

Each job re-executes the command line with the job's overrides (nothing is pickled) in the job's
folder (``hydra.sweep.dir``/``subdir``), with ``CUDA_VISIBLE_DEVICES`` set to its ``gpus_per_job``
ids from ``pool`` and ``gpus=[0..k-1]`` (the ids it sees; ``cpu: true``: ``gpus=[]``, the ids
then only count the jobs that run at once), its own rendezvous port
(``MASTER_PORT``, from ``base_port``), its output in ``<job folder>/job.log``, and, where given, in
another interpreter (``python``) or conda env (``conda``: ``conda run -n ENV
--no-capture-output``). The next queued job starts as soon as one ends; a failed job is reported
and the others go on. Each job's outcome (the run's own ``job_outcome.json``, or its exit status and
last log lines) becomes its ``JobReturn`` and goes through the sweep's callbacks, so the sweep
summary lists every job and the sweep exits non-zero naming the failed ones.
"""

# No `from __future__ import annotations`: Hydra imports plugins without registering the module,
# and the config dataclass's annotations must be real types for OmegaConf.
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional  # noqa: UP035 - OmegaConf reads these annotations

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)

OUTCOME = "job_outcome.json"  # what the run writes in its folder (reedit.app.run_task)


@dataclass
class GpuPoolLauncherConf:
    _target_: str = "hydra_plugins.reedit_gpu_pool.gpu_pool_launcher.GpuPoolLauncher"
    # the device ids to share (empty: CUDA_VISIBLE_DEVICES, else every GPU nvidia-smi lists)
    pool: List[Any] = field(default_factory=list)  # noqa: UP006
    gpus_per_job: int = 1
    base_port: int = 29500  # job i gets MASTER_PORT base_port + i
    python: Optional[str] = None  # noqa: UP045 - every job in this interpreter
    conda: Optional[str] = None  # noqa: UP045 - or this env: conda run -n ENV --no-capture-output
    poll_seconds: float = 0.2
    cpu: bool = False  # run the jobs on the CPU (gpus=[]): the pool's ids are only slots


ConfigStore.instance().store(group="hydra/launcher", name="gpu_pool", node=GpuPoolLauncherConf)


@dataclass
class _Job:
    num: int
    overrides: list[str]
    config: DictConfig
    folder: Path
    gpus: list[str]
    process: subprocess.Popen | None = None
    log_file: Any = None
    started: float = 0.0


class GpuPoolLauncher(Launcher):
    def __init__(self, **settings: Any) -> None:
        self.settings = GpuPoolLauncherConf(**settings)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context

    # -- checks ------------------------------------------------------------------------------
    def slots(self) -> list[list[str]]:
        """The pool split into disjoint GPU sets of ``gpus_per_job`` (a bad pool: ConfigError)."""
        from reedit.config import ConfigError

        s, key = self.settings, "hydra.launcher"
        pool = [str(g) for g in s.pool] or visible_devices()
        if not pool:
            raise ConfigError(
                f"{key}.pool is empty and no GPU is visible (CUDA_VISIBLE_DEVICES, nvidia-smi): "
                f"list the device ids to share, e.g. '{key}.pool=[0,1,2,3]'"
            )
        if len(set(pool)) != len(pool):
            raise ConfigError(f"{key}.pool lists a device twice: {pool}")
        if s.gpus_per_job < 1 or len(pool) % s.gpus_per_job:
            raise ConfigError(
                f"{key}.gpus_per_job={s.gpus_per_job} does not divide the pool of {len(pool)}"
            )
        if s.python and s.conda:
            raise ConfigError(f"{key}: choose python or conda, not both")
        k = s.gpus_per_job
        return [pool[i : i + k] for i in range(0, len(pool), k)]

    # -- launching ---------------------------------------------------------------------------
    def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        free = deque(self.slots())
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        queue = deque(self._job(initial_job_idx + i, o) for i, o in enumerate(job_overrides))
        log.info("gpu_pool: %d jobs on %d GPU sets of %s", len(queue), len(free), list(free))
        running: list[_Job] = []
        returns: dict[int, JobReturn] = {}
        try:
            while queue or running:
                while queue and free:
                    job = queue.popleft()
                    gpus = free.popleft()
                    try:
                        self._start(job, gpus)
                    except (OSError, ValueError) as exc:  # no such interpreter or conda, ...
                        free.append(gpus)
                        returns[job.num] = self._finish(job, f"cannot start: {exc}")
                        continue
                    running.append(job)
                time.sleep(self.settings.poll_seconds)
                for job in [j for j in running if j.process.poll() is not None]:
                    running.remove(job)
                    _stop_group(job.process)  # what the job left behind, before the next one
                    free.append(job.gpus)
                    returns[job.num] = self._finish(job)
        finally:
            for job in running:  # interrupted: stop what still runs, and its children
                _stop_group(job.process, grace=10.0)
                if job.log_file:
                    job.log_file.close()
        return [returns[n] for n in sorted(returns)]

    def _job(self, num: int, overrides: Any) -> _Job:
        assert self.config is not None and self.hydra_context is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = num
            config.hydra.job.num = num
        previous = HydraConfig.instance().cfg
        HydraConfig.instance().set_config(config)  # the subdir may name the job's choices
        try:
            folder = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        finally:
            if previous is not None:
                HydraConfig.instance().set_config(previous)
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(folder.resolve())
        return _Job(num, list(overrides), config, folder.resolve(), [])

    def _command(self, job: _Job) -> list[str]:
        s = self.settings
        prefix = [s.python or sys.executable]
        if s.conda:
            prefix = ["conda", "run", "-n", s.conda, "--no-capture-output", "python"]
        seen = "" if self.settings.cpu else ",".join(str(i) for i in range(len(job.gpus)))
        return [
            *prefix,
            "-m",
            "reedit",
            *self._config_options(),
            *self._hydra_overrides(),
            *job.overrides,
            f"gpus=[{seen}]",
            "hydra.mode=RUN",
            f"hydra.run.dir={_quoted(str(job.folder))}",
            f"hydra.job.num={job.num}",
            f"hydra.job.id={job.num}",
        ]

    def _config_options(self) -> list[str]:
        """The sweep's own ``--config-name`` and ``--config-dir`` (a job composes the same)."""
        assert self.config is not None
        runtime = self.config.hydra.runtime
        out = [f"--config-name={self.config.hydra.job.config_name}"]
        for source in runtime.config_sources:
            if source.provider == "command-line" and source.schema == "file":
                out.append(f"--config-dir={source.path}")
        return out

    def _hydra_overrides(self) -> list[str]:
        """The sweep's own ``hydra.*`` overrides (a search path, logging) that a job needs too;
        not the launcher's, the sweeper's or the mode, which a job runs without."""
        assert self.config is not None
        given = OmegaConf.to_container(self.config.hydra.overrides.hydra)
        skip = ("hydra/launcher", "hydra.launcher", "hydra/sweeper", "hydra.sweeper", "hydra.mode")
        skip += ("hydra.sweep.", "hydra.run.", "hydra.job.num", "hydra.job.id")
        return [o for o in given if not o.lstrip("+~").startswith(skip)]

    def _start(self, job: _Job, gpus: list[str]) -> None:
        from reedit.app import JOB_OUTCOME  # the variable run_task reads

        job.gpus = gpus
        job.folder.mkdir(parents=True, exist_ok=True)
        (job.folder / OUTCOME).unlink(missing_ok=True)
        env = dict(os.environ)
        env.update(
            CUDA_VISIBLE_DEVICES=",".join(gpus),
            MASTER_PORT=str(self.settings.base_port + job.num),
            **{JOB_OUTCOME: str(job.folder / OUTCOME)},
        )
        job.log_file = (job.folder / "job.log").open("wb")
        job.started = time.time()
        log.info("  #%d on GPUs %s: %s", job.num, gpus, " ".join(filter_overrides(job.overrides)))
        job.process = subprocess.Popen(  # its own process group: stopped with its children
            self._command(job),
            env=env,
            stdout=job.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _finish(self, job: _Job, unstarted: str = "") -> JobReturn:
        assert self.hydra_context is not None
        if job.log_file:
            job.log_file.close()
        code = job.process.returncode if job.process else None
        outcome = _read(job.folder / OUTCOME)
        if outcome is None or (code != 0 and outcome.get("status") == "ok"):  # crashed after
            tail = unstarted or f"exit status {code}: {_tail(job.folder / 'job.log')}"
            outcome = {**(outcome or {}), "status": "failed", "error": tail}
        outcome.update(
            gpus=job.gpus,
            started=job.started,
            ended=time.time(),
            exit_status=code,
            log=str(job.folder / "job.log"),
        )
        ret = JobReturn(
            overrides=job.overrides,
            cfg=OmegaConf.masked_copy(job.config, [k for k in job.config if k != "hydra"]),
            hydra_cfg=job.config,
            working_dir=str(job.folder),
            task_name=str(job.config.hydra.job.name),
            status=JobStatus.COMPLETED,
            _return_value=outcome,
        )
        log.info("  #%d %s (exit %s): %s", job.num, outcome.get("status"), code, job.folder)
        self.hydra_context.callbacks.on_job_end(config=job.config, job_return=ret)
        return ret


def _quoted(value: str) -> str:
    """A value for Hydra's override grammar, whatever characters it holds (',' '=' spaces)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _stop_group(process: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM the job's process group, then SIGKILL what is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return  # the group is gone
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            try:  # the leader ended: give the rest of the group the same grace
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(min(grace, 0.5))


def visible_devices() -> list[str]:
    """This node's GPUs, without importing torch (reedit.runtime's listing; none: empty)."""
    from reedit.runtime import visible_devices as listed

    shown = listed()
    if shown is None:
        log.warning("gpu_pool: no GPU list from CUDA_VISIBLE_DEVICES or nvidia-smi")
    return shown or []


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:])[-600:]
