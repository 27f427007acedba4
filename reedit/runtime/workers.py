"""The worker runtime, parent side: a model in a persistent process of another interpreter.

``runtime: worker`` (this interpreter) or ``{kind: worker, python: PATH | conda: ENV | mamba: ENV
| micromamba: ENV, env_vars, cwd, repo_path, start_timeout, request_timeout, max_restarts,
activate}``. :class:`WorkerProcess` starts ``python -m reedit.runtime.worker`` in its own process
group, speaks the JSON-lines protocol of :mod:`reedit.runtime.worker`, streams its stderr into the
log (``[worker <key>]``, bounded), and never hangs: a request past ``request_timeout`` or a worker
that dies (EOF, exit status, signal) fails the requests in flight with the status and the last
lines of stderr, and the worker restarts up to ``max_restarts``. Every worker is stopped on exit
(normal, exception, Ctrl-C, SIGTERM): close, a grace period, then kill of its process group.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reedit.config import ConfigError, ReeditError
from reedit.models.component import physical_gpus
from reedit.runtime.worker import PROTOCOL

log = logging.getLogger("reedit.worker")

TOOLS = ("conda", "mamba", "micromamba")
KEYS = {"kind", "python", *TOOLS, "env_vars", "cwd", "repo_path", "start_timeout"}
KEYS |= {"request_timeout", "max_restarts", "activate"}
_LIVE: set[WorkerProcess] = set()
_INTERPRETERS: dict[tuple[str, str], str] = {}  # (tool, env) -> python, resolved once per run


class WorkerFailed(ReeditError):
    """A worker could not start, or died more often than ``max_restarts`` allows."""


class WorkerLost(RuntimeError):
    """The request in flight is lost: the worker died or timed out (it is restarted)."""


@dataclass(frozen=True)
class WorkerConfig:
    what: str  # the config key of the runtime, e.g. "model.runtime"
    python: str | None = None
    tool: str | None = None  # conda | mamba | micromamba
    env: str | None = None
    env_vars: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    repo_path: tuple[str, ...] = ()
    start_timeout: float = 600.0
    request_timeout: float = 600.0
    max_restarts: int = 2
    activate: bool = False

    @classmethod
    def of(cls, value: Any, what: str) -> WorkerConfig:
        """``worker`` (this interpreter) or a ``{kind: worker, ...}`` mapping, checked."""
        if value == "worker":
            return cls(what, python=sys.executable)
        unknown = sorted(set(value) - KEYS)
        if unknown:
            raise ConfigError(
                f"{what}.{unknown[0]}: not a worker setting ({', '.join(sorted(KEYS))})"
            )
        chosen = [k for k in ("python", *TOOLS) if value.get(k)]
        if len(chosen) > 1:
            raise ConfigError(
                f"{what}: choose one of python, conda, mamba, micromamba, not {chosen}"
            )
        repo = value.get("repo_path") or ()
        repo = (repo,) if isinstance(repo, str) else tuple(repo)
        python = value.get("python")
        return cls(
            what,
            python=_home(python) if python else (None if chosen else sys.executable),
            tool=chosen[0] if chosen and chosen[0] in TOOLS else None,
            env=value.get(chosen[0]) if chosen and chosen[0] in TOOLS else None,
            env_vars={str(k): str(v) for k, v in (value.get("env_vars") or {}).items()},
            cwd=_home(value["cwd"]) if value.get("cwd") else None,
            repo_path=tuple(_home(str(r)) for r in repo),
            start_timeout=float(value.get("start_timeout", 600)),
            request_timeout=float(value.get("request_timeout", 600)),
            max_restarts=int(value.get("max_restarts", 2)),
            activate=bool(value.get("activate", False)),
        )

    def interpreter(self) -> str:
        """The worker's python: given, or resolved once per run through the env's tool."""
        if self.python:
            return self.python
        assert self.tool and self.env
        key = (self.tool, self.env)
        if key not in _INTERPRETERS:
            _INTERPRETERS[key] = resolve_env(self.tool, self.env, self.what)
        return _INTERPRETERS[key]


def _home(path: str) -> str:
    """A path as given, with a leading ``~`` expanded (a command line passes it literally)."""
    return os.path.expanduser(path)


def tool_exe(tool: str, what: str) -> str:
    exe = os.environ.get(f"{tool.upper()}_EXE") or shutil.which(tool)
    if not exe:
        raise WorkerFailed(f"{what}.{tool}: '{tool}' is not on PATH (nor ${tool.upper()}_EXE)")
    return exe


def resolve_env(tool: str, env: str, what: str) -> str:
    """``<tool> run -n ENV python -c 'import sys; print(sys.executable)'``."""
    exe = tool_exe(tool, what)
    cmd = [exe, "run", "-n", env, "python", "-c", "import sys; print(sys.executable)"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise WorkerFailed(f"{what}.{tool}: '{' '.join(cmd)}' did not answer in 120 s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise WorkerFailed(
            f"{what}.{tool}: environment '{env}' gives no interpreter ({tool} exit "
            f"{proc.returncode}: {' | '.join(tail)}); create it or fix the name"
        )
    return lines[-1]


def reedit_root() -> str:
    return str(Path(__file__).resolve().parents[2])


class WorkerProcess:
    """One persistent worker: start, request, restart, stop."""

    def __init__(self, config: WorkerConfig, hello: dict[str, Any], gpus: list[int]) -> None:
        self.config, self.hello, self.gpus = config, hello, gpus
        self.proc: subprocess.Popen | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=30)
        self.restarts = 0
        self.ready: dict[str, Any] = {}
        self.protocol = PROTOCOL  # the version this parent speaks
        self._replies: queue.Queue = queue.Queue()
        self._next_id = 0

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        cfg = self.config
        python = cfg.interpreter()
        env = dict(os.environ)
        env.update(cfg.env_vars)
        paths = [reedit_root(), *cfg.repo_path, env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        if self.gpus:  # the run's ids count within what this process sees
            env["CUDA_VISIBLE_DEVICES"] = ",".join(physical_gpus(self.gpus))
        env["PYTHONUNBUFFERED"] = "1"
        argv = [python, "-m", "reedit.runtime.worker"]
        if cfg.activate and cfg.tool:  # through the tool: the env's activation scripts run
            argv = [tool_exe(cfg.tool, cfg.what), "run", "-n", str(cfg.env)]
            argv += ["--no-capture-output"] if cfg.tool != "micromamba" else []
            argv += ["python", "-m", "reedit.runtime.worker"]
        t0 = time.perf_counter()
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=cfg.cwd,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        except OSError as exc:
            raise WorkerFailed(f"{cfg.what}: cannot start {python}: {exc}") from None
        _LIVE.add(self)
        _install_handlers()
        self._replies = queue.Queue()
        threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self.proc,), daemon=True).start()
        self._send({**self.hello, "op": "hello", "version": self.protocol})
        message = self._wait(cfg.start_timeout, "start")
        if message.get("op") != "ready":
            self.stop()
            kind = message.get("error_type")
            raise WorkerFailed(
                f"{cfg.what}: the worker ({python}) failed to start: {kind}: "
                f"{message.get('error')}{self._tail_text()}"
            )
        self.ready = message
        log.info(
            "worker %s ready in %.2f s (pid %s, load %.2f s)",
            cfg.what,
            time.perf_counter() - t0,
            message.get("pid"),
            message.get("load_seconds", 0.0),
        )
        return message

    def stop(self, grace: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is None:
            return
        try:
            if proc.poll() is None:
                try:
                    proc.stdin.write(b'{"op": "close"}\n')
                    proc.stdin.flush()
                except OSError:
                    pass
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGTERM)
                    try:
                        proc.wait(grace)
                    except subprocess.TimeoutExpired:
                        _signal_group(proc, signal.SIGKILL)
                        proc.wait()
        finally:
            _signal_group(proc, signal.SIGKILL)  # anything the worker itself started
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    stream.close()

    # -- requests ------------------------------------------------------------------------------
    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request; its answer, or :class:`WorkerLost` (the worker is restarted, or
        :class:`WorkerFailed` once ``max_restarts`` is used up)."""
        if self.proc is None:
            self.start()
        self._next_id += 1
        message = {**message, "id": self._next_id}
        try:
            self._send(message)
            answer = self._wait(self.config.request_timeout, "request")
        except WorkerLost as lost:
            self._restart(str(lost))
            raise
        if answer.get("id") != message["id"]:
            self._restart("an answer to another request")
            raise WorkerLost(f"{self.config.what}: protocol out of step")
        return answer

    def _restart(self, why: str) -> None:
        self.stop(grace=0.5)
        if self.restarts >= self.config.max_restarts:
            raise WorkerFailed(
                f"{self.config.what}: the worker failed {self.restarts + 1} times ({why}); "
                f"max_restarts={self.config.max_restarts} used up. Records made so far are kept; "
                "rerun with run_dir=<the run folder> after fixing the cause"
            )
        self.restarts += 1
        log.warning(
            "%s; restarting the worker (%d of %d)",
            why,
            self.restarts,
            self.config.max_restarts,
        )
        self.start()

    # -- plumbing ------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(message, default=str) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerLost(f"{self.config.what}: the worker is gone{self._status()}") from None

    def _wait(self, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc = self.proc
                if proc is not None:
                    _signal_group(proc, signal.SIGKILL)
                limit = "start_timeout" if what == "start" else "request_timeout"
                error = f"{self.config.what}: no answer within {limit}={timeout:g} s"
                if what == "start":
                    self.stop(grace=0)
                    raise WorkerFailed(error + self._tail_text())
                raise WorkerLost(error + self._tail_text())
            try:
                message = self._replies.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if message is None:  # end of the protocol channel: the worker died
                status = self._status()
                if what == "start":
                    self.stop(grace=0)
                    raise WorkerFailed(
                        f"{self.config.what}: the worker exited while starting{status}"
                        f"{self._tail_text()}"
                    )
                raise WorkerLost(f"{self.config.what}: the worker died{status}{self._tail_text()}")
            return message

    def _status(self) -> str:
        proc = self.proc
        if proc is None:
            return ""
        try:
            code = proc.wait(2)
        except subprocess.TimeoutExpired:
            return ""
        if code < 0:
            return f" (killed by signal {signal.Signals(-code).name})"
        return f" (exit status {code})"

    def _tail_text(self) -> str:
        time.sleep(0.05)  # let the stderr reader catch the last lines
        lines = list(self.tail)[-5:]
        return f"; last stderr: {' | '.join(lines)}" if lines else ""

    def _read_stdout(self, proc: subprocess.Popen) -> None:
        replies = self._replies
        for raw in iter(proc.stdout.readline, b""):
            try:
                replies.put(json.loads(raw))
            except ValueError:
                log.error("worker %s: not a protocol line: %.200r", self.config.what, raw)
        replies.put(None)

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        name = self.config.what.rsplit(".runtime", 1)[0]
        for raw in iter(lambda: proc.stderr.readline(8192), b""):  # bounded: long lines cut
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self.tail.append(line[:500])
                log.info("[worker %s] %s", name, line[:2000])


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(proc.pid, sig)


def stop_all() -> None:
    for worker in list(_LIVE):
        worker.stop(grace=2.0)


_HANDLERS = False


def _install_handlers() -> None:
    """Stop every worker on exit; SIGTERM ends the run like Ctrl-C (``finally`` blocks run)."""
    global _HANDLERS
    if _HANDLERS:
        return
    _HANDLERS = True
    atexit.register(stop_all)
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum: int, frame: Any) -> None:
            stop_all()
            if callable(previous):
                previous(signum, frame)
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_term)
