"""The command line around a run (``python -m reedit`` and ``python -m reedit.editrefine``).

- A resumed run (``run_dir=<folder>``) composes the overrides saved in its folder, with the ones
  given now applied on top (:func:`resumed_argv`).
- Hydra's own errors (an unknown key or option, a wrong type, a syntax error) become reedit's
  one-paragraph messages with exit code 2 and the closest valid name (:func:`explain`).
- A start that fails before recording anything leaves no trace: a new run folder is removed, a
  resume's ``.hydra/resume-<time>/`` too, so the next resume composes the last accepted settings
  (:func:`run_task`).
- A sweep ends with one line per job: status, run folder, headline number (:class:`SweepSummary`).

Hydra is imported here; torch and the models are not.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from reedit.files import write_bytes_atomic

log = logging.getLogger("reedit")

# Given for one invocation, never carried into the next resume of the folder.
# machines.rank and machines.start name one machine of one start (a rerun is a new start).
NOT_CARRIED = frozenset({"run_dir", "fresh", "retry_errors", "machines.rank", "machines.start"})
JOB_OUTCOME = "REEDIT_JOB_OUTCOME"  # where a re-executed sweep job writes its outcome
JOBS_FILE = "jobs.jsonl"  # a sweep folder's one line per finished job


class _State:
    resumed: list[str] | None = None  # the saved overrides a resume composed
    started = False  # the task function runs: errors from here on are not Hydra's
    follower = False  # this job is a machine other than 0 of a run over several
    failed_jobs = 0  # a sweep's jobs that failed (the exit code)


# -- resume: the run's own overrides ----------------------------------------------------------
def saved_overrides(folder: Path) -> list[str] | None:
    """The overrides of the folder's last accepted invocation (a refused one leaves none)."""
    hydra = Path(folder) / ".hydra"
    resumes = sorted(hydra.glob("resume-*/overrides.yaml"))
    path = resumes[-1] if resumes else hydra / "overrides.yaml"
    if not path.is_file():
        return None
    return [str(line) for line in OmegaConf.load(path)]


def _parse(lines: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(list(lines))


def _key(override: Any) -> str:
    return override.get_key_element().lstrip("~+")


def merge_overrides(saved: Sequence[str], given: Sequence[str]) -> list[str]:
    """``saved`` then ``given``: a key given again replaces its saved value (keeping the saved
    ``+`` when the YAMLs do not list the key); one-shot keys (:data:`NOT_CARRIED`) stay behind."""
    now = _parse(given)
    given_keys = {_key(o) for o in now}
    out, added = [], set()
    for o in _parse(saved):
        key = _key(o)
        if key in NOT_CARRIED:
            continue
        if key in given_keys:
            if o.is_add():
                added.add(key)
            continue
        out.append(o.input_line)
    for o in now:
        line = o.input_line
        if _key(o) in added and not (o.is_add() or o.is_force_add()):
            if o.is_delete():
                continue  # it was only ever added by the saved list
            line = "+" + line
        out.append(line)
    return out


def _split_argv(argv: Sequence[str]) -> tuple[list[str], list[str], bool]:
    """(overrides, other arguments, multirun) as Hydra's own parser reads them."""
    from hydra._internal.utils import get_args_parser

    args, _ = get_args_parser().parse_known_args(list(argv))
    overrides = list(args.overrides or [])
    rest, pending = [], list(overrides)
    for token in argv:
        if pending and token == pending[0]:
            pending.pop(0)
        else:
            rest.append(token)
    return overrides, rest, bool(args.multirun)


def resumed_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with a resumed run folder's saved overrides before the given ones."""
    overrides, rest, multirun = _split_argv(argv)
    if multirun or not overrides:
        return list(argv)
    try:
        parsed = _parse(overrides)
    except Exception:  # Hydra reports the syntax error itself
        return list(argv)
    run_dir = [o.value() for o in parsed if _key(o) == "run_dir" and not o.is_delete()]
    if not run_dir or not run_dir[-1]:
        return list(argv)
    saved = saved_overrides(Path(str(run_dir[-1])).expanduser())
    if saved is None:
        return list(argv)
    _State.resumed = [s for s in saved if _key(_parse([s])[0]) not in NOT_CARRIED]
    return [*merge_overrides(saved, overrides), *rest]


# -- Hydra's errors as reedit's ---------------------------------------------------------------
def _one_paragraph(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines()]
    keep = [ln for ln in lines if ln and not ln.startswith(("provider=", "Config search path"))]
    return " ".join(keep)


def _compose(config_dir: Path, config_name: str, overrides: Sequence[str]) -> DictConfig | None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return compose(config_name, overrides=list(overrides))
    except Exception:
        return None
    finally:
        GlobalHydra.instance().clear()


def _flat_keys(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    out = []
    for k, v in node.items():
        full = f"{prefix}{k}"
        out += [full, *_flat_keys(v, full + ".")]
    return out


def _unknown_key(line: str, key: str, others: list[str], config_dir: Path, config_name: str) -> str:
    """Compose with the key added (``+``) and let reedit's set-up check name the close match."""
    from reedit.config import ConfigError, spec_of

    cfg = _compose(config_dir, config_name, [*others, "+" + line])
    group = key.split(".", 1)[0]
    if cfg is not None and "." in key:
        node = cfg.get(group)
        if isinstance(node, DictConfig) and "_target_" in node:
            try:
                spec = spec_of(node, group)
            except ConfigError as exc:
                return str(exc)
            if spec is not None:  # a setting of the class that its YAML does not list
                return (
                    f"{line}: '{key}' is a setting of {spec.target} that this configuration "
                    f"does not list; add it with a +: +{line}"
                )
    plain = _compose(config_dir, config_name, others)
    tree = OmegaConf.to_container(plain) if plain is not None else {}
    close = difflib.get_close_matches(key, _flat_keys(tree), n=1, cutoff=0.6)
    if close:
        return f"{line}: '{key}' is not a key of this configuration. Did you mean '{close[0]}'?"
    parts, node = key.split("."), tree
    for i, part in enumerate(parts[:-1]):  # the deepest node that exists, and its keys
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            break
        node = node[part]
        if not isinstance(node.get(parts[i + 1]), dict) and parts[i + 1] not in node:
            where = ".".join(parts[: i + 1])
            return (
                f"{line}: '{where}' has no key '{parts[i + 1]}' (its keys: "
                f"{', '.join(map(str, node)) or 'none'})"
            )
    return f"{line}: '{key}' is not a key of this configuration"


def explain(
    exc: BaseException, overrides: Sequence[str], config_dir: Path, config_name: str
) -> str | None:
    """reedit's message for a Hydra composition error (None: not one)."""
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    from reedit.config import ReeditError

    if isinstance(exc, ReeditError):  # e.g. a launcher's setting (hydra/launcher=gpu_pool)
        return str(exc)
    if isinstance(exc, OverrideParseException):
        return (
            f"{exc.override}: not a valid override ({_one_paragraph(exc.message)}); the forms "
            "are key=value, group=option, +key=value (a key the YAMLs do not list); quote lists "
            "for the shell: 'gpus=[0,1]'"
        )
    if isinstance(exc, MissingConfigException):
        missing = exc.missing_cfg_file or ""
        group, _, name = missing.rpartition("/")
        options = sorted(exc.options or [])
        if options and group:
            close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
            hint = f" Did you mean '{group}={close[0]}'?" if close else ""
            return (
                f"{group}={name}: no option '{name}' in group {group}.{hint} Options: "
                f"{', '.join(options)}"
            )
        return _one_paragraph(str(exc))
    if not isinstance(exc, ConfigCompositionException):
        return None
    cause = exc.__cause__
    message = str(exc)
    line = next((o for o in overrides if o and o in message), None)
    others = [o for o in overrides if o != line]
    unknown = isinstance(cause, (ConfigKeyError, ConfigAttributeError))
    if unknown and line is not None and message.startswith("Could not override"):
        key = _key(_parse([line])[0])
        return _unknown_key(line, key, others, config_dir, config_name)
    if isinstance(cause, ValidationError) and line is not None:
        key = getattr(cause, "full_key", "") or _key(_parse([line])[0])
        return f"{line}: {_one_paragraph(str(cause).splitlines()[0])} (the type of '{key}')"
    detail = f" ({_one_paragraph(str(cause).splitlines()[0])})" if cause is not None else ""
    return _one_paragraph(message) + detail


def launch(app: Callable[[], Any], config_dir: Path, config_name: str) -> None:
    """Run a ``@hydra.main`` app with resume overrides and reedit's error messages."""
    user_wants_traces = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises; the errors are worded here
    sys.argv = [sys.argv[0], *resumed_argv(sys.argv[1:])]
    try:
        app()
    except Exception as exc:
        if _State.started:
            raise
        overrides, _, _ = _split_argv(sys.argv[1:])
        message = None if user_wants_traces else explain(exc, overrides, config_dir, config_name)
        if message is None:
            raise
        logging.basicConfig(format="[%(name)s][%(levelname)s] - %(message)s")
        log.error("%s", message)
        sys.exit(2)
    if _State.failed_jobs:
        sys.exit(2)


# -- the task: outcomes, and no trace of a failed start ---------------------------------------
def _recorded(folder: Path) -> dict[str, int]:
    files = (folder / "records").glob("**/*.jsonl")  # unit records (not the stage log)
    return {str(p): p.stat().st_size for p in files if not p.name.startswith("stages")}


def _only_logs(folder: Path) -> bool:
    for p in folder.rglob("*"):
        made = p.is_file() and p.suffix != ".log" and p.stat().st_size > 0
        if made and ".hydra" not in p.relative_to(folder).parts:
            return False
    return True


def _close_logs_in(folder: Path) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        name = getattr(handler, "baseFilename", None)
        if name and Path(name).resolve().is_relative_to(folder.resolve()):
            root.removeHandler(handler)
            handler.close()


def _remove_empty_default_parents(folder: Path) -> None:
    """``outputs/<date>/`` of the default run folder, when the failed start left them empty."""
    date, outputs = folder.parent, folder.parent.parent
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", date.name) and outputs.name == "outputs":
        for parent in (date, outputs):
            try:
                parent.rmdir()  # only when empty
            except OSError:
                return


def headline(metrics: dict[str, Any] | None) -> str:
    """The run's headline numbers: each judged image's yes-rate, or the stages' counts."""
    if not metrics:
        return "no report"
    verdict = (metrics.get("scores", {}).get("overall", {}) or {}).get("verdict") or {}
    rates = [f"{label} {v['yes_rate']:.1f} %" for label, v in verdict.items() if v.get("judged")]
    if rates:
        return "yes-rate " + ", ".join(rates)
    stages = metrics.get("stages", {})
    done = [f"{s} {c['ok']}/{c['total']} ok" for s, c in stages.items() if c.get("total")]
    return ", ".join(done) or "nothing recorded"


def run_task(cfg: DictConfig, body: Callable[[Path], dict[str, Any] | None]) -> dict[str, Any]:
    """Run ``body(folder)`` as a Hydra job; a user error ends it with exit code 2 (in a sweep:
    the job's outcome, and the sweep goes on). The outcome goes to the sweep summary."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from reedit.config import ReeditError
    from reedit.runlock import FolderInUse

    _State.started = True
    hc = HydraConfig.get()
    folder = Path(hc.runtime.output_dir)
    subdir = folder / hc.output_subdir if hc.output_subdir else None
    multirun = hc.mode == RunMode.MULTIRUN
    job_of = os.environ.get(JOB_OUTCOME)  # a sweep job a launcher re-executed (gpu_pool)
    resumed = bool(cfg.get("run_dir"))
    machine = _machine(cfg)
    _State.follower = machine is not None and not machine.leads
    # several machines share the folder: none removes it (nor the abort marker inside)
    shared = machine is not None and machine.several and resumed
    if _State.resumed:
        log.info("resuming %s with its saved overrides: %s", folder, " ".join(_State.resumed))
    before = _recorded(folder)
    try:
        metrics = body(folder)
        outcome = {"status": "ok", "run_dir": str(folder), "headline": headline(metrics)}
        _write_outcome(job_of, outcome)
        return outcome
    except ReeditError as exc:
        log.error("%s", exc)
        _write_outcome(job_of, {"status": "error", "run_dir": str(folder), "error": str(exc)})
        # refused for another run's folder: what that run records meanwhile is not this start's
        in_use = isinstance(exc, FolderInUse)
        if not multirun and not job_of and not shared and (in_use or _recorded(folder) == before):
            _close_logs_in(folder)
            if not resumed and not in_use and _only_logs(folder):
                shutil.rmtree(folder, ignore_errors=True)
                _remove_empty_default_parents(folder)
            elif resumed and subdir is not None and subdir.name.startswith("resume-"):
                shutil.rmtree(subdir, ignore_errors=True)
        if not multirun:
            sys.exit(2)
        return {"status": "error", "run_dir": str(folder), "error": str(exc)}


def _machine(cfg: DictConfig) -> Any:
    """This job's machine in a run over several machines (None: its settings are wrong; the
    set-up check names the key)."""
    from reedit.config import ReeditError
    from reedit.machines import machine_of

    node = cfg.get("machines")
    try:
        return machine_of(OmegaConf.to_container(node, resolve=True) if node else None)
    except ReeditError:
        return None


def _write_outcome(path: str | None, outcome: dict[str, Any]) -> None:
    """A re-executed sweep job's outcome, for its launcher (written atomically)."""
    if path:
        write_bytes_atomic(json.dumps(outcome).encode(), Path(path))


class SweepSummary(Callback):
    """One line per job of a sweep, written as each job ends and printed when the sweep ends."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus
        from hydra.types import RunMode

        _State.started = False  # the next job's composition errors are Hydra's again
        hc = config.hydra
        if hc.mode != RunMode.MULTIRUN or _State.follower:
            return  # machine 0 of a run over several machines speaks for the job
        value = job_return._return_value
        if job_return.status == JobStatus.COMPLETED and isinstance(value, dict):
            line = dict(value)
        else:
            line = {"status": "failed", "error": f"{type(value).__name__}: {value}"}
        line.setdefault("run_dir", job_return.working_dir or hc.runtime.output_dir)
        line.update(num=int(hc.job.num), overrides=list(job_return.overrides or []))
        path = Path(hc.sweep.dir) / JOBS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(config.hydra.sweep.dir) / JOBS_FILE
        if not path.is_file():
            return
        by_num = {}  # a sweep rerun into its folder appends its lines: the last of each job
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                job = json.loads(line)
                by_num[job["num"]] = job
        jobs = [by_num[k] for k in sorted(by_num)]
        failed = [j for j in jobs if j["status"] != "ok"]
        log.info("sweep: %d jobs, %d failed (%s)", len(jobs), len(failed), path)
        for j in jobs:
            what = j.get("headline") if j["status"] == "ok" else j.get("error", "")
            log.info(
                "  #%d %-6s %s  %s  %s",
                j["num"],
                j["status"],
                " ".join(j["overrides"]),
                j["run_dir"],
                str(what).split("\n", 1)[0][:200],
            )
        _State.failed_jobs = len(failed)


class SweepCompare(Callback):
    """At the end of a sweep, the comparison of its jobs in the sweep folder
    (``python -m reedit.compare <sweep>``: comparison.html and the rest); a failed job is listed
    as missing, and a comparison that cannot be made is a warning, never the sweep's failure."""

    def __init__(self, allow_mixed_judges: bool = False) -> None:
        self.allow_mixed_judges = allow_mixed_judges

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from reedit.config import ReeditError
        from reedit.report.compare import make, sweep_jobs

        sweep = Path(config.hydra.sweep.dir)
        if not (sweep / JOBS_FILE).is_file():
            return
        try:
            if not any(j.get("status") == "ok" for j in sweep_jobs(sweep)):
                return
            make([sweep], sweep, allow_mixed_judges=self.allow_mixed_judges)
        except ReeditError as exc:
            log.warning("sweep comparison not made: %s", exc)
        except Exception:  # a view: the sweep's own outcome stands
            log.exception("sweep comparison failed")
