"""Stage 5: metrics.json, samples.csv and report.md, built from the records alone."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reedit.config import ReeditError
from reedit.data.base import BadRecord, Sample
from reedit.layout import judgement_key
from reedit.records import (
    ERROR,
    OK,
    UNSCORED,
    Record,
    RecordStore,
    StageLog,
    StageRun,
    executions,
    write_bytes_atomic,
)
from reedit.report.html import render_run
from reedit.report.markdown import render_markdown
from reedit.report.plots import run_plots
from reedit.report.stats import SampleScores, check_value, compute_metrics
from reedit.report.views import Report, SampleView, load_records, sample_views

log = logging.getLogger(__name__)

# The reference's substitutions for a failed judgement (compat.upstream_failures=true only).
COMPAT_VALUES = {"dimension": "no", "if": 5.0, "sc": (5.0, 5.0), "pq": (5.0, 5.0)}
_FIELD = {"dimension": "verdict", "if": "if_score", "sc": "sc", "pq": "pq"}


@dataclass
class ReportInputs:
    """What the report is built from besides the records."""

    root: Path
    samples: list[Sample]
    labels: list[str]  # the image labels judged
    metrics: list[str]  # the judge's metrics ([] without a judge)
    rounds: int = 1
    mode: str = "joined"
    compat: bool = False
    categories: list[str] = field(default_factory=list)
    bootstrap: int = 1000
    seed: int = 0
    dataset_source: str = ""
    choices: dict[str, str] = field(default_factory=dict)
    bad_records: list[BadRecord] = field(default_factory=list)
    notice: str | None = None
    judge: dict[str, Any] | None = None  # the judge's name, settings and fingerprint
    plots: bool = True  # plots/*.png
    html: bool = True  # report.html
    thumb_size: int = 192  # px, the gallery's thumbnails


def run_report(ctx: ReportInputs) -> Report:
    records = load_records(ctx.root)
    labels, metrics_cfg, compat = ctx.labels, ctx.metrics, ctx.compat
    rows = [_scores(ctx, s, records["judge"]) for s in ctx.samples]
    scores = compute_metrics(
        rows, ctx.categories, labels, metrics=metrics_cfg, n_boot=ctx.bootstrap, seed=ctx.seed
    )
    metrics = {
        "run": {
            "run_dir": str(ctx.root),
            "dataset": ctx.dataset_source,
            "choices": ctx.choices,
            "n_samples": len(ctx.samples),
            "categories": ctx.categories,
            "labels": labels,
            "judge_metrics": metrics_cfg,
            "compat_upstream_failures": compat,
            "refine": {"mode": ctx.mode, "rounds": ctx.rounds},
            "notice": ctx.notice,
            "judge": ctx.judge,
        },
        "scores": scores,
        "stages": _stage_counts(ctx, records, StageLog(ctx.root).runs()),
        "judge_health": _judge_health(ctx, records["judge"], labels, metrics_cfg),
        "bad_records": [
            {"index": b.index, "field": b.field, "message": b.message, "id": b.id}
            for b in ctx.bad_records
        ],
    }
    out = ctx.root
    write_bytes_atomic(
        (json.dumps(metrics, indent=2, ensure_ascii=False) + "\n").encode(), out / "metrics.json"
    )
    views = sample_views(out, ctx.samples, records, ctx.rounds, labels, metrics_cfg)
    _write_csv(views, ctx.rounds, labels, metrics_cfg, out / "samples.csv")
    write_bytes_atomic(render_markdown(metrics).encode(), out / "report.md")
    files = [out / n for n in ("metrics.json", "samples.csv", "report.md")]
    plots: list[Path] = []
    try:  # the pictures are views: one that cannot be drawn costs a warning, not the run
        plots = run_plots(metrics, views, out / "plots") if ctx.plots else []
        if ctx.html:
            page = render_run(metrics, views, out, plots, ctx.thumb_size)
            write_bytes_atomic(page.encode(), out / "report.html")
            files.append(out / "report.html")
    except Exception as exc:
        log.warning(
            "report: plots/report.html not made (%s: %s); metrics.json, samples.csv and "
            "report.md are complete",
            type(exc).__name__,
            exc,
        )
    log.info(
        "report: wrote %s%s",
        ", ".join(str(f) for f in files),
        f" and {len(plots)} plots in {out / 'plots'}" if plots else "",
    )
    return Report(metrics, views, files + plots)


def _scores(ctx: ReportInputs, sample: Sample, judge_recs: dict[str, Record]) -> SampleScores:
    row = SampleScores(sample.id, sample.category)
    for label in ctx.labels:
        for metric in ctx.metrics:
            key = judgement_key(sample.id, label, metric)
            rec = judge_recs.get(key)
            if rec is not None and rec.ok:
                value = rec.payload.value
                try:
                    check_value(metric, value)
                except ValueError as exc:
                    where = RecordStore(ctx.root, "judge").where(key)
                    raise ReeditError(
                        f"{where}: judgement '{key}': its field 'value' is {value!r}, {exc}; the "
                        "file was edited or corrupted by hand: fix that line, or remove it and "
                        f"rerun with run_dir={ctx.root} to judge that image again"
                    ) from None
                value = tuple(value) if isinstance(value, list) else value
            elif ctx.compat:
                value = COMPAT_VALUES[metric]
            else:
                value = None
            getattr(row, _FIELD[metric])[label] = value
    return row


def _stage_counts(
    ctx: ReportInputs, records: dict[str, dict[str, Record]], runs: list[StageRun]
) -> dict[str, Any]:
    """Per stage: record counts, the records' summed unit seconds, and from ``records/stages.jsonl``
    the model load and wall seconds summed over the stage's executions (rounds and resumed runs;
    None when no execution was logged, e.g. a folder written before the log existed)."""
    ids = {s.id for s in ctx.samples}
    out = {}
    for stage, recs in records.items():
        mine = [r for r in recs.values() if r.sample_id in ids]
        counts = Counter(r.status for r in mine)
        executed = executions([r for r in runs if r.stage == stage])
        out[stage] = {
            "ok": counts.get(OK, 0),
            "error": counts.get(ERROR, 0),
            "unscored": counts.get(UNSCORED, 0),
            "total": len(mine),
            "errors_by_type": dict(Counter(r.error_type for r in mine if not r.ok)),
            "seconds": round(sum(r.seconds or 0 for r in mine), 3),
            "load_seconds": _sum(r.load_seconds for r in executed) if executed else None,
            "wall_seconds": _sum(r.wall_seconds for r in executed) if executed else None,
            "executions": len(executed),
        }
    out["edit"]["not_attempted"] = len(ids) - out["edit"]["total"]
    return out


def _sum(values: Any) -> float:
    return round(sum(values), 3)


def _judge_health(ctx, judge_recs, labels, metrics) -> dict[str, Any]:
    """ok / unscored / error / missing per metric and label, overall and per category."""
    health: dict[str, Any] = {}
    for metric in metrics:
        per = {}
        for label in labels:
            cats: dict[str, Counter] = {}
            flags: Counter = Counter()
            for s in ctx.samples:
                rec = judge_recs.get(judgement_key(s.id, label, metric))
                status = rec.status if rec else "missing"
                cats.setdefault(s.category, Counter())[status] += 1
                flags.update((rec.payload.flags if rec else None) or [])
            total = sum(cats.values(), Counter())
            per[label] = {
                **{k: total.get(k, 0) for k in (OK, UNSCORED, ERROR, "missing")},
                "flags": dict(flags),  # ok values that needed repair, rescaling or clamping
                "by_category": {
                    c: {k: n.get(k, 0) for k in (OK, UNSCORED, ERROR, "missing")}
                    for c, n in cats.items()
                },
            }
        health[metric] = per
    return health


def _write_csv(views: list[SampleView], rounds: int, labels, metrics, path: Path) -> None:
    columns = ["sample_id", "category", "instruction", "description", "rationale", "source_image"]
    columns += ["primary_image", "primary_status", "primary_error"]
    for r in range(1, rounds + 1):
        columns += [f"re_edit_r{r}", f"cot_r{r}", f"analyze_r{r}_status"]
        columns += [f"refined_r{r}_image", f"refined_r{r}_status"]
    for label in labels:
        for metric in metrics:
            base = f"{label}_{metric}"
            if metric in ("sc", "pq"):
                columns += [f"{base}_a", f"{base}_b", f"{base}_min"]
            else:
                columns.append(base)
            columns.append(f"{base}_status")
    rows = []
    for v in views:
        row: dict[str, Any] = {
            "sample_id": v.id,
            "category": v.category,
            "instruction": v.instruction,
            "description": v.description,
            "rationale": v.rationale,
            "source_image": v.source,
            "primary_image": v.primary,
            "primary_status": v.edit_status,
            "primary_error": v.edit_error or "",
        }
        for r in v.rounds:
            row[f"re_edit_r{r.round}"] = " | ".join(r.re_edit)
            row[f"cot_r{r.round}"] = " | ".join(r.cot)
            row[f"analyze_r{r.round}_status"] = r.analyze_status
            row[f"refined_r{r.round}_image"] = r.image
            row[f"refined_r{r.round}_status"] = r.refine_status
        for label in labels:
            for metric in metrics:
                j = v.judged[label][metric]
                base = f"{label}_{metric}"
                value = j.value if j.status == OK else None
                if metric in ("sc", "pq"):
                    a, b = value if value else ("", "")
                    row |= {
                        f"{base}_a": a,
                        f"{base}_b": b,
                        f"{base}_min": min(a, b) if value else "",
                    }
                else:
                    row[base] = "" if value is None else value
                row[f"{base}_status"] = j.status
        rows.append(row)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(text.getvalue().encode(), path)
