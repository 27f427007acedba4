"""report.md: the metrics of a run as a markdown page (a view of metrics.json)."""

from __future__ import annotations

from typing import Any


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
