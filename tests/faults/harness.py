"""The fault suite's runner: every run is a child of one fork server that imported torch,
transformers, diffusers and reedit once, so a run costs its own work (a few seconds on the demo's
tiny models) rather than a fresh interpreter's imports as well."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import REAL_MODELS, reedit_env
from digest import stage_files

from faults.injector import Fault, run_cli

KILLED = -signal.SIGKILL
# The demo on its real tiny models (10 samples): edit (identity), analyze, refine, judge, report.
DEMO = (*REAL_MODELS, "report.plots=false")
# The demo's executor (the tiny FLUX.2) in a worker process of this interpreter.
IN_A_WORKER = f"+executor.runtime={{kind:worker,python:'{sys.executable}'}}"


@dataclass
class Runs:
    ctx: multiprocessing.context.BaseContext

    def __call__(
        self,
        folder: Path,
        *args: str,
        fault: Fault | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> int:
        """``python -m reedit run_dir=<folder> <args>`` with ``fault`` (and ``env`` added to its
        environment, ``PYTHONPATH`` in front): its exit code (``KILLED`` when the fault killed
        it). Its output goes to ``<folder>.log``."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        argv = [*args, f"run_dir={folder}"]
        log = str(folder.parent / f"{folder.name}.log")
        environment = reedit_env()
        for key, value in (env or {}).items():
            old = environment.get(key) if key == "PYTHONPATH" else None
            environment[key] = os.pathsep.join(filter(None, [value, old]))
        proc = self.ctx.Process(
            target=run_cli, args=(argv, str(folder.parent), environment, log, fault)
        )
        proc.start()
        proc.join(timeout)
        if proc.exitcode is None:  # the run and what it started (ranks, workers) go
            import psutil

            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.join(10)
            raise AssertionError(f"{fault}: the run did not end within {timeout} s; see {log}")
        return proc.exitcode


def log_tail(folder: Path, n: int = 3000) -> str:
    log = folder.parent / f"{folder.name}.log"
    return log.read_text(errors="replace")[-n:] if log.is_file() else "(no log)"


def record_lines(folder: Path) -> dict[str, str]:
    """Every complete record line of every stage file, by file name."""
    out = {}
    for path in stage_files(folder):
        text = path.read_text(encoding="utf-8")
        out[path.name] = text[: text.rfind("\n") + 1]
    return out


def assert_kept(before: dict[str, str], folder: Path) -> None:
    """What was recorded before a fault is still there, as written, and was not computed again
    (a unit the rerun records again had only an error record before: retry_errors), and no
    temporary file of an interrupted write is left."""
    after = record_lines(folder)
    done: dict[str, dict[str, str]] = {}  # stage -> key -> status, before the rerun
    for name, text in before.items():
        assert after[name].startswith(text), f"{name}: records before the fault were rewritten"
        for line in text.splitlines():
            rec = json.loads(line)
            done.setdefault(name.split(".")[0], {})[rec["key"]] = rec["status"]
    for name, text in after.items():
        stage = name.split(".")[0]
        for line in text[len(before.get(name, "")) :].splitlines():
            key = json.loads(line)["key"]
            assert done.get(stage, {}).get(key, "error") != "ok", f"{stage} {key} computed again"
    leftovers = [p for p in folder.rglob("*") if ".tmp-" in p.name]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def in_process(d: dict) -> dict:
    """A digest without what a re-edit record says of the worker that made it (the worker's
    images are the in-process ones, to the byte)."""
    for record in d["records"]["refine"].values():
        info = record["info"]
        assert info.pop("runtime") == "worker" and info.pop("pid") > 0
        info.pop("gpus")
    return d
