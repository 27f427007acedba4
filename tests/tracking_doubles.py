"""Test double of a tracker (kept apart from :mod:`doubles`, which the worker tests import in a
second environment without OmegaConf: the tracker's package needs the main environment)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from reedit.tracking import RunInfo, Tracker


class RecordingTracker(Tracker):
    """Test double: the real :class:`Tracker` that writes each call it gets, and the process
    that made it, to a JSON-lines file (``path``); ``fail_on`` raises in that call (start,
    log_stage, log_report), as a tracker that cannot start or write would."""

    @dataclass
    class Settings(Tracker.Settings):
        path: str = ""
        fail_on: str | None = None

    def _note(self, call: str, **data: Any) -> None:
        if self.settings.fail_on == call:
            raise ConnectionError(f"the tracker's {call} failed (test double)")
        line = json.dumps({"call": call, "pid": os.getpid(), **data}, default=str)
        with open(self.settings.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _start(self, info: RunInfo) -> None:
        self._note(
            "start",
            name=info.name,
            config=info.config,
            sweep=info.sweep,
            resumed=info.resumed,
            choices=info.choices,
        )

    def _log_stage(self, run: Any) -> None:
        self._note(
            "log_stage",
            stage=run.stage,
            round=run.round,
            done=run.done,
            errors=run.errors,
            rank=run.rank,
        )

    def _log_report(self, report: Any) -> None:
        self._note(
            "log_report",
            samples=[v.id for v in report.views],
            files=[str(p) for p in report.files],
            n=report.metrics["run"]["n_samples"],
        )

    def _finish(self, exit_code: int) -> None:
        self._note("finish", exit_code=exit_code)
