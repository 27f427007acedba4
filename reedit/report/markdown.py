"""report.md: the metrics of a run as a markdown page (a view of metrics.json)."""

from __future__ import annotations

from typing import Any

from reedit.report.stats import METRICS


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:.1f}" if pct else f"{x:.2f}"


def _secs(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


# The headline's score columns, and one line on each metric the judge was asked.
_SCORES = {"if": "IF", "sc": "SC", "pq": "PQ"}
_GLOSSARY = {
    "dimension": "**dimension** (the columns by category and overall): the judge's strict yes/no "
    "verdict on the sample's own reasoning dimension (its category's criteria; uncertain or "
    "borderline is no), as the % of judged samples answered yes (unscored excluded, see Judge "
    "health).",
    "if": "**IF** (instruction following): an integer 0–10, starting from 10 with deductions for a "
    "missing, extra or wrong edit; the mean.",
    "sc": "**SC** (semantic consistency): two 0–10 sub-scores, editing success and over-editing "
    "(10 = only what was asked changed); per sample the lower of the two, then the mean.",
    "pq": "**PQ** (perceptual quality): two 0–10 sub-scores, naturalness and artifacts "
    "(10 = none); per sample the lower of the two, then the mean.",
}


def transitions_text(base: str, label: str, t: dict[str, Any]) -> str:
    """One line on the verdict transitions from ``base`` to ``label`` (a metrics.json block)."""
    rates = ", ".join(
        f"{k} {_fmt(t[k]['rate'], True)} %"
        for k in ("improved", "maintained", "regressed", "unchanged")
    )
    return f"{base} → {label} (n={t['n']}): {rates} (exact McNemar p = {t['p_value']})"


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
    asked = run["judge_metrics"]
    if asked:
        ov = scores["overall"]
        cats = list(scores["categories"]) if "dimension" in asked else []
        rates = cats + ["overall"] if "dimension" in asked else []
        shown = [m for m in _SCORES if m in asked]
        lines += ["## Headline", ""]
        head = ["image"] + rates + [_SCORES[m] for m in shown]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for label in labels:
            cells = [label]
            for block in [scores["categories"][c] for c in cats] + ([ov] if rates else []):
                v = block["verdict"].get(label, {})
                cells.append(_fmt(v.get("yes_rate"), pct=True))
            for metric in shown:
                cells.append(_fmt(ov[metric]["by_label"].get(label, {}).get("mean")))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for label in labels[1:] if "dimension" in asked else []:
            t = ov["transitions"].get(label)
            if t and t["n"]:
                lines.append(f"- {transitions_text(labels[0], label, t)}")
        tie = scores.get("category_tie")
        if tie and len(tie["categories"]) > 1:
            lines.append(
                f"- all {len(tie['categories'])} categories tie at "
                f"{_fmt(tie['yes_rate'], True)} % (by the {labels[-1]} yes-rate): no best or worst"
            )
        elif tie:
            lines.append(
                f"- one category judged ({tie['categories'][0]}, {_fmt(tie['yes_rate'], True)} "
                f"% by the {labels[-1]} yes-rate): no best or worst"
            )
        elif scores.get("best_category"):
            lines.append(
                f"- best category: {scores['best_category']}, worst: {scores['worst_category']}"
                f" (by the {labels[-1]} yes-rate; ties go to the first category)"
            )
        lines += ["", "## Metrics", ""]
        lines += [f"- {_GLOSSARY[m]}" for m in METRICS if m in asked]
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
        "| stage | ok | error | unscored | model load s | wall s | unit s | errors by type |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for stage, c in m["stages"].items():
        by_type = ", ".join(f"{k}: {v}" for k, v in c["errors_by_type"].items()) or ""
        load, wall = _secs(c.get("load_seconds")), _secs(c.get("wall_seconds"))
        lines.append(
            f"| {stage} | {c['ok']} | {c['error']} | {c['unscored']} | {load} | {wall} | "
            f"{c['seconds']} | {by_type} |"
        )
    lines += [
        "",
        "model load: the run's model pool loading the stage's model (building or training a tiny "
        "model included; 0 when an earlier stage had loaded it); wall: the stage from planning to "
        "its last record; both summed over the stage's executions (rounds, resumed runs: "
        "`records/stages.jsonl`). unit s: the seconds of the stage's records, summed (a judgement "
        "from the judge cache takes none).",
    ]
    if m["bad_records"]:
        lines += ["", f"## Skipped dataset records ({len(m['bad_records'])})", ""]
        lines += [
            f"- record {b['index']} ({b['id']}), field '{b['field']}': {b['message']}"
            for b in m["bad_records"]
        ]
    return "\n".join(lines) + "\n"
