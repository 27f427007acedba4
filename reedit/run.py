"""``run(cfg)``: load the data, drive the stages in order (stage-major), return the metrics."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from reedit.config import ConfigError, instantiate
from reedit.schema import STAGES
from reedit.stages.common import RunContext

log = logging.getLogger(__name__)


def validate(cfg: DictConfig) -> None:
    """Fail at set-up, naming the key, before any data or model is touched."""
    for stage in cfg.stages:
        if stage not in STAGES:
            raise ConfigError(f"stages: unknown stage '{stage}'; choose from {list(STAGES)}")
    if cfg.seed_mode not in ("id", "index"):
        raise ConfigError(f"seed_mode must be 'id' or 'index', got '{cfg.seed_mode}'")
    if cfg.refine.mode not in ("joined", "sequential"):
        raise ConfigError(f"refine.mode must be 'joined' or 'sequential', got '{cfg.refine.mode}'")
    if int(cfg.refine.rounds) < 1:
        raise ConfigError(f"refine.rounds must be >= 1, got {cfg.refine.rounds}")
    if not 0.0 <= float(cfg.max_error_rate) <= 1.0:
        raise ConfigError(f"max_error_rate must be within 0..1, got {cfg.max_error_rate}")
    if cfg.judge._target_ is not None:
        from reedit.judge import METRICS

        bad = [m for m in cfg.judge.metrics if m not in METRICS]
        if bad:
            raise ConfigError(f"judge.metrics: unknown {bad}; choose from {list(METRICS)}")


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


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the configured stages in ``run_dir`` (default: ``cfg.run_dir`` or Hydra's folder)."""
    validate(cfg)
    hydra_dir, choices = _hydra_context()
    folder = Path(run_dir or cfg.run_dir or hydra_dir or "")
    if not str(folder) or str(folder) == ".":
        raise ConfigError("run_dir: no run folder (set run_dir=... or run through Hydra)")
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if not choices:  # called as a library: record the names we can infer
        choices = {
            g: str(OmegaConf.select(cfg, f"{g}._target_")).rsplit(".", 1)[-1]
            for g in ("model", "executor", "refiner", "judge", "dataset")
        }
    log.info("run folder: %s", folder)
    if cfg.notice:
        log.warning("%s", cfg.notice)

    dataset = instantiate(cfg.dataset, what="dataset")
    loaded = dataset.load(list(cfg.categories), cfg.limit)
    log.info(
        "dataset: %d samples from %s (%d bad records skipped)",
        len(loaded.samples),
        loaded.source,
        len(loaded.bad_records),
    )
    ctx = RunContext(cfg, folder, loaded.samples, loaded.bad_records, loaded.source, choices)

    from reedit.stages.analyze import run_analyze
    from reedit.stages.edit import run_edit
    from reedit.stages.judge import run_judge
    from reedit.stages.refine import run_refine
    from reedit.stages.report import run_report

    stages = set(cfg.stages)
    metrics: dict[str, Any] = {}
    tracker = instantiate(cfg.logger, what="logger")
    tracker.start(str(folder), OmegaConf.to_container(cfg, resolve=True), folder.name)
    try:
        if "edit" in stages:
            run_edit(ctx)
        for r in range(1, ctx.rounds + 1):
            last = r == ctx.rounds
            if "analyze" in stages:
                run_analyze(ctx, r, keep_loaded=not last)
            if "refine" in stages:
                run_refine(ctx, r, keep_loaded=not last)
        ctx.release_all()
        if "judge" in stages:
            run_judge(ctx)
        if "report" in stages:
            metrics = run_report(ctx)
            tracker.log_metrics(metrics)
            _summary(metrics)
            if cfg.notice:
                log.warning("%s", cfg.notice)
    finally:
        ctx.release_all()
        tracker.finish()
    return metrics


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
