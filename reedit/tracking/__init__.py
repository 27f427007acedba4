"""Experiment trackers: views of the records, fed by the launching process only (never by a rank
or a worker). :class:`Tracker`'s public methods are the loop written once: each calls its
subclass's ``_start`` / ``_log_stage`` / ``_log_report`` / ``_finish``, and a tracker that fails
(cannot start, cannot write, no network) logs one warning and goes quiet: the run and its local
report are never lost to it. ``finish`` always runs, with the run's exit code."""

from __future__ import annotations

import abc
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reedit.records import StageRun
from reedit.report.views import Report
from reedit.settings import SettingsBase

log = logging.getLogger(__name__)

# The words of a key (split at _ - . and case changes) that make its value a secret; a key
# ending in _env names the variable that holds one (api_key_env) and is kept.
SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "credential",
        "credentials",
        "authorization",
        "auth",
        "bearer",
        "cookie",
        "key",
        "apikey",
    }
)
REDACTED = "<redacted>"
URL_USER = re.compile(r"(\w+://)[^/\s:@]+(:[^/\s@]*)?@")  # user:password@ in a URL


def is_secret_key(name: str) -> bool:
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", str(name))]
    if not words or words[-1] == "env":
        return False
    return bool(SECRET_WORDS & set(words))


def redact(node: Any, secrets: frozenset[str] = frozenset()) -> Any:
    """``node`` with the value of every secret-named key, and every string equal to a known
    secret (``secrets``: e.g. the environment's API keys), replaced by ``<redacted>``."""
    if isinstance(node, dict):
        return {
            k: (REDACTED if is_secret_key(k) and v else redact(v, secrets)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [redact(v, secrets) for v in node]
    if isinstance(node, str) and node:
        if any(s and s in node for s in secrets):
            return REDACTED
        return URL_USER.sub(r"\1<redacted>@", node)
    return node


@dataclass
class RunInfo:
    """What a tracker is told about the run when it starts."""

    folder: Path
    name: str  # the run folder's name
    config: dict[str, Any]  # the resolved config, secrets redacted
    choices: dict[str, str] = field(default_factory=dict)  # group -> option (model=..., ...)
    sweep: str | None = None  # the sweep's folder when the run is a sweep job
    resumed: bool = False


class Tracker(abc.ABC):
    """A sink for a run's progress and results (the launching process calls it)."""

    @dataclass
    class Settings(SettingsBase):
        pass

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings
        self.failed: str | None = None  # what went wrong, once: the tracker is quiet from then on
        self.started = False

    def start(self, info: RunInfo) -> None:
        self.started = self._call("start", self._start, info)

    def log_stage(self, run: StageRun) -> None:
        """One stage execution ended (its units done, errors, seconds per unit)."""
        if self.started:
            self._call("log_stage", self._log_stage, run)

    def log_report(self, report: Report) -> None:
        """The run's report: metrics as the summary, the samples as a table."""
        if self.started:
            self._call("log_report", self._log_report, report)

    def finish(self, exit_code: int = 0) -> None:
        """Close the run (also after a failure of the tracker or the run: best effort)."""
        if self.started:
            self.started = False
            try:
                self._finish(exit_code)
            except Exception as exc:  # never mask the run's own outcome
                self._warn("finish", exc)

    def _call(self, what: str, fn: Callable[..., None], *args: Any) -> bool:
        if self.failed:
            return False
        try:
            fn(*args)
            return True
        except Exception as exc:
            self._warn(what, exc)
            return False

    def _warn(self, what: str, exc: Exception) -> None:
        if self.failed is None:
            self.failed = f"{what}: {type(exc).__name__}: {exc}"
            log.warning(
                "%s: %s failed (%s: %s); it logs nothing more, the run goes on and its local "
                "report is complete",
                type(self).__name__,
                what,
                type(exc).__name__,
                str(exc)[:500],
            )

    @abc.abstractmethod
    def _start(self, info: RunInfo) -> None: ...

    def _log_stage(self, run: StageRun) -> None:  # noqa: B027 (optional for a subclass)
        """A tracker that does not follow the stages leaves this as it is."""

    def _log_report(self, report: Report) -> None:  # noqa: B027
        """A tracker without a report view leaves this as it is."""

    def _finish(self, exit_code: int) -> None:  # noqa: B027
        """A tracker with nothing to close leaves this as it is."""


class NullTracker(Tracker):
    """``logger=none``: results stay in the run folder."""

    def _start(self, info: RunInfo) -> None:
        pass
