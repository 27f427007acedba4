"""Fault injection for tests/faults: the real ``python -m reedit`` run in this process, with a fault
at one chosen moment: the process SIGKILLed, or a write failing with ``OSError(ENOSPC)``.

A moment is counted, not timed, so it is the same every time: the n-th record line a stage
appends (``record``), the n-th stage summary (``stage_log``), the n-th model load (``load``), the
n-th file put in place in the run folder by a rename (``rename``, with a file-name pattern:
images, metrics.json, report.md ...), the n-th request to a model's worker process (``worker``:
the worker is SIGKILLed, not the run). ``when`` says where within that moment: ``before`` it,
``torn`` (a record line half written: the first half flushed, then the fault) or ``after`` it.

A rank of a run over several processes gets its fault through the environment
(:data:`ENV`, read by tests/faults/site/sitecustomize.py when the rank starts).

Runs go through :func:`run_cli` in a child of a ``forkserver`` that has imported torch,
transformers and diffusers once (see tests/faults/conftest.py): each run costs its own work, not
those imports. Nothing here changes what reedit does; it wraps the real methods, and only in the
child that runs the fault.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

# Imported by the fork server once (its preload), so that each run is a fork, not a fresh start.
PRELOAD = [
    "faults.injector",
    "torch",
    "transformers",
    "diffusers",
    "reedit.cli",
    "reedit.run",
    "reedit.records",
    "reedit.models.component",
]


ENV = "REEDIT_TEST_FAULT"  # {"fault": {...}, "rank": k, "run_dir": ...} for the rank k


@dataclass(frozen=True)
class Fault:
    where: str  # record | stage_log | load | rename | worker
    n: int  # the n-th such moment in this process (1-based)
    when: str = "before"  # before | torn | after
    action: str = "kill"  # kill | enospc
    pattern: str = "*"  # rename only: the file name it counts (fnmatch)

    def __str__(self) -> str:
        what = f"{self.where}[{self.pattern}]" if self.where == "rename" else self.where
        return f"{self.action}-{self.when}-{what}-{self.n}"

    def for_rank(self, rank: int, run_dir: Path) -> dict[str, str]:
        """The environment that gives this fault to rank ``rank`` of a run in ``run_dir``."""
        site = str(Path(__file__).resolve().parent / "site")
        value = {"fault": asdict(self), "rank": rank, "run_dir": str(run_dir)}
        return {ENV: json.dumps(value), "PYTHONPATH": site}


class _Counter:
    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.seen = 0

    def hit(self, where: str, name: str = "") -> bool:
        """Count a moment of kind ``where``; True at the fault's n-th."""
        if where != self.fault.where:
            return False
        if where == "rename" and not fnmatch.fnmatch(name, self.fault.pattern):
            return False
        self.seen += 1
        return self.seen == self.fault.n

    def strike(self, path: object = "", pid: int | None = None) -> None:
        if self.fault.action == "kill":
            sys.stderr.flush()
            os.kill(pid or os.getpid(), signal.SIGKILL)
            if pid:
                return
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def install(fault: Fault, run_dir: Path) -> None:
    """Wrap the real writers and loader so that ``fault`` strikes at its moment."""
    from reedit import records
    from reedit.models import component
    from reedit.runtime import workers

    counter = _Counter(fault)
    run_dir = Path(run_dir).resolve()
    append, log_append, load = (
        records.RecordStore.append,
        records.StageLog.append,
        component.Model.load,
    )
    replace, send = os.replace, workers.WorkerProcess._send

    def record_append(self, record):
        if not counter.hit("record"):
            return append(self, record)
        if fault.when == "before":
            counter.strike(self.path)
        if fault.when == "torn":
            line = records.json.dumps(record if isinstance(record, dict) else record.to_json())
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:  # beside the store's own handle
                if self._fh is not None:
                    self._fh.flush()
                f.write(line[: len(line) // 2])
            counter.strike(self.path)
        append(self, record)
        counter.strike(self.path)

    def stage_log_append(self, run):
        if not counter.hit("stage_log"):
            return log_append(self, run)
        if fault.when == "before":
            counter.strike(self.path)
        log_append(self, run)
        counter.strike(self.path)

    def model_load(self):
        if self.loaded or not counter.hit("load"):
            return load(self)
        if fault.when == "before":
            counter.strike()
        load(self)
        counter.strike()

    def os_replace(src, dst, *args, **kwargs):
        target = Path(dst).resolve()
        inside = target.is_relative_to(run_dir)
        if not inside or not counter.hit("rename", target.name):
            return replace(src, dst, *args, **kwargs)
        if fault.when == "before":  # the temporary file is written, not yet in place
            counter.strike(target)
        replace(src, dst, *args, **kwargs)
        counter.strike(target)

    def worker_send(self, message):
        if message.get("op") in ("hello", "close") or not counter.hit("worker"):
            return send(self, message)
        if fault.when == "before":
            counter.strike(pid=self.proc.pid)
        send(self, message)
        if fault.when == "after":
            counter.strike(pid=self.proc.pid)

    records.RecordStore.append = record_append
    workers.WorkerProcess._send = worker_send
    records.StageLog.append = stage_log_append
    component.Model.load = model_load
    os.replace = os_replace


def run_cli(argv: list[str], cwd: str, env: dict[str, str], log: str, fault: Fault | None) -> None:
    """The child's work: ``python -m reedit <argv>`` with ``fault`` installed (its output to
    ``log``). Ends the process: the CLI's exit code, or -SIGKILL."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    if fault is not None:
        run_dir = next(a.split("=", 1)[1] for a in argv if a.startswith("run_dir="))
        install(fault, Path(run_dir))
    sys.argv = ["reedit", *argv]
    from reedit.cli import main

    main()
