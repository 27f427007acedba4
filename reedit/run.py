"""``run(cfg)``: check every setting, load the data, drive the stages stage-major, report.

:func:`setup` checks the whole configuration — top-level keys and every group against its
target's ``Settings`` — before any data or model is touched. :func:`execute` owns the run's model
pool: it decides from the stage list and the rounds when each model is released (after its last
stage); a model is loaded at its first pending unit, so a stage with nothing to do loads nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from reedit import distributed, machines, runtime
from reedit.config import ConfigError, ReeditError, Spec, build, spec_of
from reedit.data.base import BadRecord, Sample
from reedit.data.run_sources import SOURCE_MODES, run_sources
from reedit.files import disk_full, is_disk_full, remove_temporaries
from reedit.layout import RunLayout, labels
from reedit.models.component import physical_gpus
from reedit.records import StageLog, StageRun, executions, fingerprint
from reedit.runlock import LOCK_FILE, RunLock
from reedit.runtime.pool import ModelPool
from reedit.seeds import SeedRule
from reedit.stages.analyze import AnalyzeStage
from reedit.stages.driver import Shard, Stage, Workspace, drive
from reedit.stages.edit import EditStage
from reedit.stages.judge import JudgeStage
from reedit.stages.refine import RefineStage
from reedit.stages.report import ReportInputs, run_report
from reedit.stages.resume import (
    ResumePlan,
    check_stage_names,
    fingerprints_of,
    unit_fingerprints,
    unit_settings,
)
from reedit.tracking import RunInfo, is_secret_key, redact

log = logging.getLogger(__name__)

MODEL_GROUPS = ("model", "executor", "refiner", "judge")
SCRATCH = ".tmp"  # in the run folder: files a worker hands back before they are renamed


@dataclass(frozen=True)
class Setup:
    """A checked configuration: typed run settings and every group's component spec."""

    cfg: DictConfig
    stages: tuple[str, ...]
    seeds: SeedRule
    rounds: int
    mode: str
    gpus: tuple[int, ...]
    layout: runtime.Layout  # the ranks and their GPUs (one process: world 1)
    specs: dict[str, Spec | None]  # model, executor, refiner, judge (None: set to none)
    pool: ModelPool  # every model built (its constructor's checks passed), none loaded
    dataset: Spec | None  # None: the caller brings its samples (the EditRefine tool)
    logger: Spec
    machine: machines.Machine = machines.ONE  # this machine's place in a run over several

    @property
    def world(self) -> int:
        """The run's ranks, over every machine."""
        return self.layout.world * self.machine.count

    @property
    def labels(self) -> list[str]:
        """The images judged: primary, and each round's refined image when there is a refiner."""
        return labels(self.rounds if self.specs["refiner"] else 0)


def setup(cfg: DictConfig, dataset: bool = True, problems: Sequence[str] = ()) -> Setup:
    """Fail at set-up, naming the key, before any data is read or any model loaded; every
    problem found (and the caller's ``problems``) is reported at once: a missing editor path and
    a missing refiner path in one message."""
    problems = list(problems)

    def attempt(check: Any, *args: Any) -> Any:
        try:
            return check(*args)
        except ConfigError as exc:
            problems.append(str(exc))
            return None

    attempt(check_stage_names, "stages", cfg.stages)
    attempt(check_stage_names, "fresh", cfg.fresh)
    problems += _top_level_problems(cfg)
    seeds = attempt(_seed_rule, cfg)
    specs = {group: attempt(spec_of, cfg[group], group) for group in MODEL_GROUPS}
    if specs["model"] is None and not any(p.startswith("model") for p in problems):
        problems.append("model: no editor is set (_target_: null); choose one, e.g. model=identity")
    gpus = tuple(int(g) for g in cfg.gpus)
    for spec in specs.values():
        if spec is not None:
            attempt(runtime.check, spec, gpus)
            problems.extend(runtime.path_problems(spec))
    layout = None
    if not problems:
        shown = runtime.visible_devices() if gpus else None
        visible = None if shown is None else len(shown)
        per = cfg.gpus_per_replica
        per = None if per is None else attempt(_int, "gpus_per_replica", per)
        layout = attempt(runtime.layout, specs, gpus, per, int(cfg.cpu_ranks), visible)
    machine = attempt(machines.machine_of, _plain(cfg.get("machines")))
    if machine is not None and machine.per_node > 1 and gpus:
        problems.append(
            f"machines: this {machine.task} runs {machine.per_node} tasks per node, and each "
            f"would start ranks on the same gpus={list(gpus)}: run one task per node (srun "
            "--ntasks-per-node=1, hydra.launcher.tasks_per_node=1)"
        )
    data = attempt(spec_of, cfg.dataset, "dataset") if dataset else None
    logger = attempt(spec_of, cfg.logger, "logger")
    if dataset and data is None and not any(p.startswith("dataset") for p in problems):
        problems.append("dataset: needs a _target_")
    if logger is None and not any(p.startswith("logger") for p in problems):
        problems.append("logger: needs a _target_")
    from reedit.testing import locate  # tiny:<name> model paths

    pool = ModelPool(specs, runtime.Placement(gpus, locate))
    if not problems:
        attempt(pool.build_all)
    if problems:
        if len(problems) == 1:
            raise ConfigError(problems[0])
        listed = " ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
        raise ConfigError(f"{len(problems)} problems in the configuration: {listed}")
    runtime.warn_unused_gpus(specs, gpus)
    return Setup(
        cfg,
        tuple(cfg.stages),
        seeds,
        int(cfg.refine.rounds),
        str(cfg.refine.mode),
        gpus,
        layout,
        specs,
        pool,
        data,
        logger,
        machine,
    )


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


def _int(key: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a whole number or null, got {value!r}") from None


def _top_level_problems(cfg: DictConfig) -> list[str]:
    out = []
    if cfg.refine.mode not in ("joined", "sequential"):
        out.append(f"refine.mode must be 'joined' or 'sequential', got '{cfg.refine.mode}'")
    if int(cfg.refine.rounds) < 1:
        out.append(f"refine.rounds must be >= 1, got {cfg.refine.rounds}")
    if int(cfg.report.thumb_size) < 16:
        out.append(f"report.thumb_size must be >= 16 (px), got {cfg.report.thumb_size}")
    if not 0.0 <= float(cfg.max_error_rate) <= 1.0:
        out.append(f"max_error_rate must be within 0..1, got {cfg.max_error_rate}")
    if not 0 <= int(cfg.png_compress_level) <= 9:
        out.append(f"png_compress_level must be within 0..9, got {cfg.png_compress_level}")
    if cfg.sources not in SOURCE_MODES:
        out.append(f"sources must be one of {', '.join(SOURCE_MODES)}, got '{cfg.sources}'")
    return out


def _seed_rule(cfg: DictConfig) -> SeedRule:
    try:
        return SeedRule(int(cfg.seed), str(cfg.seed_mode))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _hydra_context() -> tuple[Path | None, dict[str, str]]:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None, {}
    hc = HydraConfig.get()
    choices = {
        k: v
        for k, v in hc.runtime.choices.items()
        if v is not None and "/" not in k and "@" not in k and k != "schema"
    }
    return Path(hc.runtime.output_dir), choices


def _sweeping() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_folder(
    cfg: DictConfig, run_dir: str | Path | None, several: bool = False, create: bool = True
) -> tuple[Path, dict[str, str]]:
    """The run folder (``run_dir``, ``cfg.run_dir`` or Hydra's) and the groups' option names.
    ``several`` machines need one folder they all name: a sweep's job folder or ``run_dir``."""
    hydra_dir, choices = _hydra_context()
    if several and not cfg.run_dir and hydra_dir is not None and not _sweeping():
        raise ConfigError(
            "run_dir: a run over several machines needs one folder that every machine names "
            "(each machine's default folder has its own time): set run_dir=<shared folder>"
        )
    folder = Path(run_dir or cfg.run_dir or hydra_dir or "")
    if not str(folder) or str(folder) == ".":
        raise ConfigError("run_dir: no run folder (set run_dir=... or run through Hydra)")
    folder = folder.resolve()
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    if not choices:  # called as a library: record the names we can infer
        choices = {
            g: str(OmegaConf.select(cfg, f"{g}._target_")).rsplit(".", 1)[-1]
            for g in (*MODEL_GROUPS, "dataset")
        }
    return folder, choices


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the configured stages in ``run_dir`` (default: ``cfg.run_dir`` or Hydra's folder)."""
    machine = _machine_or_one(cfg)
    folder, choices = run_folder(cfg, run_dir, several=machine.several, create=False)
    with machines.guarded(folder, machine):  # a failure here stops the other machines too
        s = setup(cfg)  # a bad configuration leaves no folder behind
        folder.mkdir(parents=True, exist_ok=True)
        log.info("run folder: %s", folder)
        if not s.machine.leads:  # machine 0 loads the data, reports and tracks
            follow(s, folder, choices)
            return {}
        if cfg.notice:
            log.warning("%s", cfg.notice)
        loaded = build(s.dataset).load(list(cfg.categories), cfg.limit)
        log.info(
            "dataset: %d samples from %s (%d bad records skipped)",
            len(loaded.samples),
            loaded.source,
            len(loaded.bad_records),
        )
        return execute(s, folder, loaded.samples, choices, loaded.source, loaded.bad_records)


def _machine_or_one(cfg: DictConfig) -> machines.Machine:
    """This machine, when its settings are right (else one machine: set-up names the key)."""
    try:
        return machines.machine_of(_plain(cfg.get("machines")))
    except ConfigError:
        return machines.ONE


def follow(s: Setup, folder: Path, choices: dict[str, str]) -> None:
    """A machine other than 0: its ranks join machine 0's launch (its samples, its settings)."""
    distributed.launch(rank_job(s, folder, [], choices), s.machine)
    log.info("machine %d of %d: its ranks are done", s.machine.rank, s.machine.count)


def schedule(s: Setup) -> list[Stage]:
    """The work stages in run order (stage-major: every sample passes a stage before the next)."""
    steps: list[Stage] = []
    if "edit" in s.stages:
        steps.append(EditStage(s.seeds))
    if s.specs["refiner"] is None:
        for stage in ("analyze", "refine"):
            if stage in s.stages:
                log.info("%s: refiner=none, nothing to do", stage)
    else:
        for r in range(1, s.rounds + 1):
            if "analyze" in s.stages:
                steps.append(AnalyzeStage(r))
            if "refine" in s.stages:
                steps.append(RefineStage(r, s.mode, s.seeds))
    if "judge" in s.stages:
        judge = s.specs["judge"]
        if judge is None:
            log.info("judge: judge=none, nothing to do")
        else:
            steps.append(JudgeStage(s.labels, judge.settings.metrics))
    return steps


def execute(
    s: Setup,
    folder: Path,
    samples: list[Sample],
    choices: dict[str, str],
    source: str = "",
    bad_records: list[BadRecord] | None = None,
) -> dict[str, Any]:
    """Drive the scheduled stages over ``samples`` in ``folder`` (in this process, or in the
    run's ranks: this process then loads no model), then the report; the folder is this run's
    alone meanwhile (:class:`~reedit.runlock.RunLock`: a second run on it refuses to start)."""
    with RunLock(folder):
        return _execute(s, folder, samples, choices, source, bad_records)


def _execute(
    s: Setup,
    folder: Path,
    samples: list[Sample],
    choices: dict[str, str],
    source: str,
    bad_records: list[BadRecord] | None,
) -> dict[str, Any]:
    cfg = s.cfg
    metrics: dict[str, Any] = {}
    tracker = None
    code = 1
    try:
        remove_temporaries(folder, run_markers=(LOCK_FILE, ".hydra"))  # a killed run's files
        samples = run_sources(samples, RunLayout(folder), str(cfg.sources))
        tracker = build(s.logger)
        tracker.start(_run_info(cfg, folder, choices))
        if s.world > 1:
            launch = rank_job(s, folder, samples, choices)
            try:
                distributed.launch(launch, s.machine)
            finally:  # what the ranks did, from their stage log
                for run in ranks_runs(folder, launch.launch):
                    tracker.log_stage(run)
        else:
            work(s, folder, samples, choices, on_stage=tracker.log_stage)
        if "report" in s.stages:
            judge = s.specs["judge"]
            report = run_report(
                ReportInputs(
                    root=folder,
                    samples=samples,
                    labels=s.labels,
                    metrics=list(judge.settings.metrics) if judge else [],
                    rounds=s.rounds,
                    mode=s.mode,
                    compat=bool(cfg.compat.upstream_failures),
                    categories=list(cfg.categories),
                    bootstrap=int(cfg.report.bootstrap),
                    seed=s.seeds.seed,
                    dataset_source=source,
                    choices=choices,
                    bad_records=bad_records or [],
                    notice=cfg.notice,
                    judge=_judge_identity(judge, choices),
                    plots=bool(cfg.report.plots),
                    html=bool(cfg.report.html),
                    thumb_size=int(cfg.report.thumb_size),
                )
            )
            metrics = report.metrics
            tracker.log_report(report)
            _summary(metrics)
            if cfg.notice:
                log.warning("%s", cfg.notice)
        code = 0
    except ReeditError:
        code = 2  # the exit code of a user error
        raise
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        code = 2
        raise ReeditError(
            f"{disk_full(exc)}. Every record written so far is kept whole: then rerun with "
            f"run_dir={folder} to complete the run"
        ) from None
    except KeyboardInterrupt:
        code = 130
        raise
    finally:
        if tracker is not None:
            tracker.finish(code)
    return metrics


def _run_info(cfg: DictConfig, folder: Path, choices: dict[str, str]) -> RunInfo:
    """What the tracker is told: the resolved config without its secrets (values of secret-named
    keys, and anything equal to a known secret of the environment), the sweep it belongs to."""
    from hydra.core.hydra_config import HydraConfig

    secrets = frozenset(v for k, v in os.environ.items() if is_secret_key(k) and len(v) >= 8)
    config = redact(OmegaConf.to_container(cfg, resolve=True), secrets)
    sweep = None
    if _sweeping():
        sweep = str(HydraConfig.get().sweep.dir)
    return RunInfo(folder, folder.name, config, dict(choices), sweep, bool(cfg.run_dir))


def _judge_identity(judge: Spec | None, choices: dict[str, str]) -> dict[str, Any] | None:
    """The judge a run's scores come from (compare refuses to mix judges): its option name,
    class, output settings (prompt version included) and their fingerprint."""
    if judge is None:
        return None
    tree = judge.output_tree()
    return {
        "name": choices.get("judge"),
        "target": judge.target,
        "fingerprint": fingerprint(tree),
        "settings": tree,
    }


def ranks_runs(folder: Path, launch: str) -> list[StageRun]:
    """The stage executions of the ranks started as ``launch`` (each merged over its ranks);
    none, with a warning, when the stage log cannot be read (the run's outcome stands)."""
    try:
        runs = StageLog(folder).runs()
    except (OSError, ValueError, TypeError) as exc:
        log.warning("the ranks' stage log could not be read for the tracker: %s", exc)
        return []
    return executions([r for r in runs if (r.execution or "").startswith(f"{launch}/")])


def work(
    s: Setup,
    folder: Path,
    samples: list[Sample],
    choices: dict[str, str],
    ranks: distributed.Ranks = distributed.SOLO,
    on_stage: Callable[[StageRun], None] | None = None,
) -> None:
    """The work stages in ``folder``, in this process: the only one, or one of the ranks;
    ``on_stage`` hears of each stage execution that had work to do."""
    cfg = s.cfg
    current = unit_settings(s.specs, s.seeds, s.mode, s.rounds)
    plan = ResumePlan(
        folder,
        fingerprints_of(current),
        unit_fingerprints(s.specs, s.seeds, s.mode, s.rounds, legacy=True),
        settings=current,
        fresh=list(cfg.fresh),
        retry_errors=bool(cfg.retry_errors),
        max_error_rate=float(cfg.max_error_rate),
    )
    pool = s.pool
    scratch = folder / SCRATCH / (f"rank{ranks.rank}" if ranks.world > 1 else "")
    pool.use_scratch(scratch)
    ws = Workspace(
        samples,
        RunLayout(folder),
        plan,
        pool,
        names=choices,
        compat=bool(cfg.compat.upstream_failures),
        progress=bool(cfg.progress),
        png_compress_level=int(cfg.png_compress_level),
    )
    steps = schedule(s)
    last_use = {step.group: i for i, step in enumerate(steps)}
    shard = Shard.of(ranks)
    try:
        for i, step in enumerate(steps):
            drive(step, ws, shard, on_stage)
            for group in [g for g, last in last_use.items() if last == i]:
                pool.release(group)  # its last stage is done
    finally:
        pool.release_all()
        shutil.rmtree(scratch, ignore_errors=True)


def rank_job(
    s: Setup, folder: Path, samples: list[Sample], choices: dict[str, str]
) -> distributed.RankJob:
    """What the ranks are given: the resolved config as one rank's (its replica's GPUs as
    ``gpus``, no further ranks), the samples, the folder, and each replica's device ids."""
    config = OmegaConf.to_container(s.cfg, resolve=True)
    per = len(s.layout.replicas[0]) if s.layout.replicas else 0
    config.update(gpus=list(range(per)), gpus_per_replica=None, cpu_ranks=1, run_dir=str(folder))
    config["machines"] = {**config.get("machines", {}), "count": 1}  # a rank is one machine
    devices = physical_gpus(s.gpus) if s.gpus else []
    replicas = [[devices[i] for i in replica] for replica in s.layout.replicas]
    return distributed.RankJob(config, str(folder), samples, choices, s.world, replicas)


def _summary(metrics: dict[str, Any]) -> None:
    stages = metrics["stages"]
    parts = [
        f"{s}: {c['ok']} ok, {c['error']} error"
        + (f", {c['unscored']} unscored" if c["unscored"] else "")
        for s, c in stages.items()
        if c["total"]
    ]
    log.info("done: %s", "; ".join(parts) or "no work recorded")
    overall = metrics["scores"]["overall"]
    for label, v in (overall.get("verdict") or {}).items():
        if v.get("judged"):
            log.info(
                "%s: yes-rate %.1f %% (%d judged, %d unscored)",
                label,
                v["yes_rate"],
                v["judged"],
                v["unscored"],
            )
