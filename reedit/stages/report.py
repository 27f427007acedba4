"""Stage 5: metrics.json, samples.csv and report.md, built from the records alone."""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from reedit.records import ERROR, OK, UNSCORED, RecordStore, write_bytes_atomic
from reedit.report.stats import SampleScores, compute_metrics
from reedit.stages.common import RunContext
from reedit.stages.judge import labels as judged_labels

log = logging.getLogger(__name__)

# The reference's substitutions for a failed judgement (compat.upstream_failures=true only).
COMPAT_VALUES = {"dimension": "no", "if": 5.0, "sc": (5.0, 5.0), "pq": (5.0, 5.0)}
_FIELD = {"dimension": "verdict", "if": "if_score", "sc": "sc", "pq": "pq"}


def run_report(ctx: RunContext) -> dict[str, Any]:
    records = {
        stage: RecordStore(ctx.run_dir, stage).load()
        for stage in ("edit", "analyze", "refine", "judge")
    }
    labels = judged_labels(ctx)
    metrics_cfg = list(ctx.cfg.judge.metrics) if ctx.cfg.judge._target_ else []
    compat = bool(ctx.cfg.compat.upstream_failures)
    rows = [_scores(s, records["judge"], labels, metrics_cfg, compat) for s in ctx.samples]
    scores = compute_metrics(
        rows,
        list(ctx.cfg.categories),
        labels,
        n_boot=int(ctx.cfg.report.bootstrap),
        seed=int(ctx.cfg.seed),
    )
    metrics = {
        "run": {
            "run_dir": str(ctx.run_dir),
            "dataset": ctx.dataset_source,
            "choices": ctx.choices,
            "n_samples": len(ctx.samples),
            "categories": list(ctx.cfg.categories),
            "labels": labels,
            "judge_metrics": metrics_cfg,
            "compat_upstream_failures": compat,
            "refine": {"mode": ctx.cfg.refine.mode, "rounds": ctx.rounds},
            "notice": ctx.cfg.notice,
        },
        "scores": scores,
        "stages": _stage_counts(ctx, records),
        "judge_health": _judge_health(ctx, records["judge"], labels, metrics_cfg),
        "bad_records": [
            {"index": b.index, "field": b.field, "message": b.message, "id": b.id}
            for b in ctx.bad_records
        ],
    }
    out = ctx.run_dir
    write_bytes_atomic(
        (json.dumps(metrics, indent=2, ensure_ascii=False) + "\n").encode(), out / "metrics.json"
    )
    _write_csv(ctx, records, labels, metrics_cfg, out / "samples.csv")
    write_bytes_atomic(render_markdown(metrics).encode(), out / "report.md")
    log.info(
        "report: wrote %s",
        ", ".join(str(out / n) for n in ("metrics.json", "samples.csv", "report.md")),
    )
    return metrics


def _scores(sample, judge_recs, labels, metrics, compat) -> SampleScores:
    row = SampleScores(sample.id, sample.category)
    for label in labels:
        for metric in metrics:
            rec = judge_recs.get(f"{sample.id}/{label}/{metric}")
            if rec is not None and rec["status"] == OK:
                value = rec["value"]
                value = tuple(value) if isinstance(value, list) else value
            elif compat:
                value = COMPAT_VALUES[metric]
            else:
                value = None
            getattr(row, _FIELD[metric])[label] = value
    return row


def _stage_counts(ctx: RunContext, records: dict[str, dict[str, dict]]) -> dict[str, Any]:
    ids = {s.id for s in ctx.samples}
    out = {}
    for stage, recs in records.items():
        mine = [r for r in recs.values() if r.get("sample_id") in ids]
        counts = Counter(r["status"] for r in mine)
        out[stage] = {
            "ok": counts.get(OK, 0),
            "error": counts.get(ERROR, 0),
            "unscored": counts.get(UNSCORED, 0),
            "total": len(mine),
            "errors_by_type": dict(Counter(r.get("error_type") for r in mine if r["status"] != OK)),
            "seconds": round(sum(r.get("seconds") or 0 for r in mine), 3),
        }
    out["edit"]["not_attempted"] = len(ids) - out["edit"]["total"]
    return out


def _judge_health(ctx, judge_recs, labels, metrics) -> dict[str, Any]:
    """ok / unscored / error / missing per metric and label, overall and per category."""
    health: dict[str, Any] = {}
    for metric in metrics:
        per = {}
        for label in labels:
            cats: dict[str, Counter] = {}
            flags: Counter = Counter()
            for s in ctx.samples:
                rec = judge_recs.get(f"{s.id}/{label}/{metric}")
                status = rec["status"] if rec else "missing"
                cats.setdefault(s.category, Counter())[status] += 1
                flags.update((rec or {}).get("flags") or [])
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


def _write_csv(ctx, records, labels, metrics, path: Path) -> None:
    columns = ["sample_id", "category", "instruction", "description", "rationale", "source_image"]
    columns += ["primary_image", "primary_status", "primary_error"]
    for r in range(1, ctx.rounds + 1):
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
    for s in ctx.samples:
        edit = records["edit"].get(s.id, {})
        row: dict[str, Any] = {
            "sample_id": s.id,
            "category": s.category,
            "instruction": s.instruction,
            "description": s.description,
            "rationale": s.rationale,
            "source_image": str(s.source_path),
            "primary_image": edit.get("image", ""),
            "primary_status": edit.get("status", "missing"),
            "primary_error": edit.get("error") or "",
        }
        for r in range(1, ctx.rounds + 1):
            a = records["analyze"].get(f"{s.id}/r{r}", {})
            f = records["refine"].get(f"{s.id}/r{r}", {})
            row[f"re_edit_r{r}"] = " | ".join(a.get("re_edit") or [])
            row[f"cot_r{r}"] = " | ".join(a.get("cot") or [])
            row[f"analyze_r{r}_status"] = a.get("status", "")
            row[f"refined_r{r}_image"] = f.get("image", "")
            row[f"refined_r{r}_status"] = f.get("status", "")
        for label in labels:
            for metric in metrics:
                rec = records["judge"].get(f"{s.id}/{label}/{metric}", {})
                base = f"{label}_{metric}"
                value = rec.get("value") if rec.get("status") == OK else None
                if metric in ("sc", "pq"):
                    a, b = value if value else ("", "")
                    row |= {
                        f"{base}_a": a,
                        f"{base}_b": b,
                        f"{base}_min": min(a, b) if value else "",
                    }
                else:
                    row[base] = "" if value is None else value
                row[f"{base}_status"] = rec.get("status", "missing")
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:.1f}" if pct else f"{x:.2f}"


def render_markdown(m: dict[str, Any]) -> str:
    run, scores = m["run"], m["scores"]
    labels = run["labels"]
    lines = [f"# reedit report — {run['choices'].get('model', '?')}", ""]
    lines += [
        f"- run folder: `{run['run_dir']}`",
        f"- dataset: `{run['dataset']}` ({run['n_samples']} samples)",
        "- choices: " + ", ".join(f"{k}={v}" for k, v in sorted(run["choices"].items())),
    ]
    if run.get("notice"):
        lines.append(f"- **{run['notice']}**")
    if run["compat_upstream_failures"]:
        lines.append(
            "- **compat.upstream_failures=true**: failed edits and judgements are replaced by the "
            'reference\'s substitutes (input image, "no", 5.0) — numbers for parity only.'
        )
    lines.append("")
    if run["judge_metrics"]:
        lines += ["## Headline", ""]
        cats = list(scores["categories"])
        head = ["image"] + cats + ["overall", "IF", "SC"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for label in labels:
            cells = [label]
            for block in [scores["categories"][c] for c in cats] + [scores["overall"]]:
                v = block["verdict"].get(label, {})
                cells.append(_fmt(v.get("yes_rate"), pct=True))
            ov = scores["overall"]
            cells.append(_fmt(ov["if"]["by_label"].get(label, {}).get("mean")))
            cells.append(_fmt(ov["sc"]["by_label"].get(label, {}).get("mean")))
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            "Yes-rates in % of judged samples (unscored excluded and shown below); IF and SC on "
            "0–10 (SC is the mean of the per-sample minimum of its two sub-scores).",
            "",
        ]
        ov = scores["overall"]
        for label in labels[1:]:
            t = ov["transitions"].get(label)
            if t and t["n"]:
                lines.append(
                    f"- {labels[0]} → {label} (n={t['n']}): improved "
                    f"{_fmt(t['improved']['rate'], True)} %, maintained "
                    f"{_fmt(t['maintained']['rate'], True)} %, regressed "
                    f"{_fmt(t['regressed']['rate'], True)} %, unchanged "
                    f"{_fmt(t['unchanged']['rate'], True)} % (McNemar p={t['p_value']})"
                )
        if scores.get("best_category"):
            lines.append(
                f"- best category: {scores['best_category']}, worst: {scores['worst_category']}"
                f" (by the {labels[-1]} yes-rate; ties go to the first category)"
            )
        lines += [
            "",
            "## Judge health",
            "",
            "| metric | image | ok | unscored | error | missing | flagged (lenient parsing) |",
            "|---|---|---|---|---|---|---|",
        ]
        for metric, per in m["judge_health"].items():
            for label, h in per.items():
                flagged = ", ".join(f"{k}: {v}" for k, v in h["flags"].items())
                lines.append(
                    f"| {metric} | {label} | {h['ok']} | {h['unscored']} | {h['error']} | "
                    f"{h['missing']} | {flagged} |"
                )
        lines += ["", "Per category (ok / unscored / error / missing):", ""]
        metrics = list(m["judge_health"])
        lines.append("| category | image | " + " | ".join(metrics) + " |")
        lines.append("|---|---|" + "---|" * len(metrics))
        first = next(iter(m["judge_health"].values()), {})
        for label, h in first.items():
            for cat in h["by_category"]:
                cells = []
                for metric in metrics:
                    c = m["judge_health"][metric][label]["by_category"][cat]
                    cells.append(f"{c['ok']} / {c['unscored']} / {c['error']} / {c['missing']}")
                lines.append(f"| {cat} | {label} | " + " | ".join(cells) + " |")
        lines.append("")
    else:
        lines += ["No judge was configured (judge=none): no scores.", ""]
    lines += [
        "## Stages",
        "",
        "| stage | ok | error | unscored | seconds | errors by type |",
        "|---|---|---|---|---|---|",
    ]
    for stage, c in m["stages"].items():
        by_type = ", ".join(f"{k}: {v}" for k, v in c["errors_by_type"].items()) or ""
        lines.append(
            f"| {stage} | {c['ok']} | {c['error']} | {c['unscored']} | {c['seconds']} | {by_type} |"
        )
    if m["bad_records"]:
        lines += ["", f"## Skipped dataset records ({len(m['bad_records'])})", ""]
        lines += [
            f"- record {b['index']} ({b['id']}), field '{b['field']}': {b['message']}"
            for b in m["bad_records"]
        ]
    return "\n".join(lines) + "\n"
