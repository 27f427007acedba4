"""``report.html``: a run's results as one self-contained page (a view of ``metrics.json`` and the
sample views): the headline with CIs, the plots, judge health, stages, errors, and a gallery of
every sample (source | primary | refined thumbnails, embedded as JPEG; each linked to the full
image by a path relative to the page) filterable by category, outcome and text.

Rendered from Jinja2 templates (``templates/``, autoescaped); thumbnails are cached in
``thumbs/<size>/`` so that a report rebuilt on resume does not decode every image again."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reedit.report.markdown import transitions_text
from reedit.report.thumbs import thumbnail

SCORES = {"if": "IF", "sc": "SC", "pq": "PQ"}
OUTCOMES = ("improved", "maintained", "regressed", "unchanged", "yes", "no", "unjudged", "error")


def environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:.1f}" if pct else f"{x:.2f}"


def _ci(ci: Sequence[float] | None, pct: bool = False) -> str:
    return f"[{_fmt(ci[0], pct)}, {_fmt(ci[1], pct)}]" if ci else ""


def headline(m: dict[str, Any]) -> dict[str, Any] | None:
    """The headline table (a row per image label: each dimension's yes-rate, overall, IF, SC,
    PQ, with CIs) and its notes (transitions, best and worst dimension)."""
    run, scores = m["run"], m["scores"]
    asked, labels = run["judge_metrics"], run["labels"]
    if not asked:
        return None
    ov = scores["overall"]
    cats = list(scores["categories"]) if "dimension" in asked else []
    rates = [*cats, "overall"] if "dimension" in asked else []
    shown = [k for k in SCORES if k in asked]
    rows = []
    for label in labels:
        cells = []
        for block in [scores["categories"][c] for c in cats] + ([ov] if rates else []):
            v = block["verdict"].get(label, {})
            cells.append({"text": _fmt(v.get("yes_rate"), True), "ci": _ci(v.get("ci95"), True)})
        for k in shown:
            b = ov[k]["by_label"].get(label, {})
            cells.append({"text": _fmt(b.get("mean")), "ci": _ci(b.get("ci95"))})
        rows.append({"label": label, "cells": cells})
    notes = []
    for label in labels[1:] if "dimension" in asked else []:
        t = ov["transitions"].get(label)
        if t and t["n"]:
            notes.append(transitions_text(labels[0], label, t))
    if scores.get("best_category"):
        notes.append(
            f"best dimension: {scores['best_category']}, worst: {scores['worst_category']} "
            f"(by the {labels[-1]} yes-rate)"
        )
    return {"head": ["image", *rates, *(SCORES[k] for k in shown)], "rows": rows, "notes": notes}


def _anchor(sample_id: str) -> str:
    return re.sub(r"[^\w-]", "_", sample_id)


def _gallery(views: Sequence[Any], root: Path, page: Path, labels: Sequence[str], size: int):
    out = []
    for v in views:
        images = []
        for label in ["source", *labels]:
            rel = v.image(label)
            thumb = thumbnail(root, rel, size) if rel else None
            caption = []
            per = v.judged.get(label, {})
            if "dimension" in per:
                caption.append(
                    per["dimension"].value
                    if per["dimension"].status == "ok"
                    else per["dimension"].status
                )
            caption += [
                f"{SCORES[k]} {_fmt(per[k].score)}"
                for k in SCORES
                if k in per and per[k].score is not None
            ]
            target = Path(rel) if os.path.isabs(rel) else root / rel
            images.append(
                {
                    "label": label,
                    "src": data_uri(thumb[0].read_bytes(), "image/jpeg") if thumb else None,
                    "width": thumb[1] if thumb else 0,
                    "height": thumb[2] if thumb else 0,
                    "href": Path(os.path.relpath(target, page.parent)).as_posix() if rel else "",
                    "caption": " · ".join(caption),
                    "missing": "no image" if not rel else "image not found",
                }
            )
        outcome = v.outcome
        tags = [{"kind": outcome, "text": outcome}]
        errors = v.errors
        if errors:
            tags.append({"kind": "error", "text": f"{len(errors)} error(s)"})
        out.append(
            {
                "id": v.id,
                "anchor": _anchor(v.id),
                "category": v.category,
                "instruction": v.instruction,
                "outcomes": " ".join([outcome, *(["error"] if errors else [])]),
                "tags": tags,
                "images": images,
                "rounds": [
                    {"round": r.round, "cot": " ".join(r.cot), "re_edit": "; ".join(r.re_edit)}
                    for r in v.rounds
                ],
                "errors": errors,
            }
        )
    return out


def render_run(
    m: dict[str, Any], views: Sequence[Any], root: Path, plots: Sequence[Path], thumb: int = 192
) -> str:
    """The run's ``report.html`` text (``root``: the run folder the page is written to)."""
    page = root / "report.html"
    run = m["run"]
    health = [
        {
            "metric": metric,
            "label": label,
            **{k: h[k] for k in ("ok", "unscored", "error", "missing")},
            "flags": ", ".join(f"{k}: {n}" for k, n in h["flags"].items()),
        }
        for metric, per in m["judge_health"].items()
        for label, h in per.items()
    ]
    stages = [
        {
            "name": name,
            **{k: c[k] for k in ("ok", "error", "unscored", "seconds")},
            "load": _fmt(c.get("load_seconds")),
            "wall": _fmt(c.get("wall_seconds")),
            "by_type": ", ".join(f"{k}: {n}" for k, n in c["errors_by_type"].items()),
        }
        for name, c in m["stages"].items()
    ]
    samples = _gallery(views, root, page, run["labels"], thumb)
    present = {o for s in samples for o in s["outcomes"].split()}
    context = {
        "model": run["choices"].get("model", "?"),
        "run": run,
        "choices": sorted(run["choices"].items()),
        "headline": headline(m),
        "plots": [_plot(p, page) for p in plots],
        "health": health,
        "stages": stages,
        "errors": [
            {
                "id": s["id"],
                "anchor": s["anchor"],
                "category": s["category"],
                "messages": s["errors"],
            }
            for s in samples
            if s["errors"]
        ],
        "bad_records": m["bad_records"],
        "categories": sorted({v.category for v in views}),
        "outcomes": [o for o in OUTCOMES if o in present],
        "samples": samples,
        "thumb": thumb,
    }
    return environment().get_template("report.html.j2").render(**context)


# ---------------------------------------------------------------------------- a comparison
def render_comparison(c: dict[str, Any], out: Path, plots: Sequence[Path], thumb: int = 160):
    """``comparison.html`` (written to ``out``): the runs' tables per image label (best bold),
    missing runs, plots, paired tests, and the samples where the runs' verdicts differ."""
    page = out / "comparison.html"
    dims = [*c["categories"], "overall"] if "dimension" in c["metrics"] else []
    scores = [k for k in SCORES if k in c["metrics"]]
    judged = [r for r in c["runs"] if r["scores"]]
    tables = []
    for label in c["labels"]:
        blocks = {r["name"]: r["scores"].get(label, {}) for r in judged}
        cols = [(d, True) for d in dims] + [(k, False) for k in scores]

        def value(b: dict[str, Any], key: str, rate: bool) -> Any:
            return b.get("yes_rate", {}).get(key) if rate else (b.get(key) or {}).get("mean")

        best = {}
        for k, rate in cols:  # the column's best, when the runs differ in it
            vals = [v for b in blocks.values() if (v := value(b, k, rate)) is not None]
            best[k] = max(vals) if len(set(vals)) > 1 else None
        table_rows = []
        for r in judged:
            b = blocks[r["name"]]
            cells = []
            for k, rate in cols:
                v = value(b, k, rate)
                ci = b.get("ci95", {}).get(k) if rate else (b.get(k) or {}).get("ci95")
                cells.append(
                    {
                        "text": _fmt(v, rate),
                        "ci": _ci(ci, rate),
                        "best": v is not None and v == best[k] and len(judged) > 1,
                    }
                )
            report = Path(r["run_dir"]) / "report.html"
            table_rows.append(
                {
                    "name": r["name"],
                    "cells": cells,
                    "href": _rel(report, page) if report.is_file() else "",
                }
            )
        tables.append(
            {"label": label, "head": [*dims, *(SCORES[k] for k in scores)], "rows": table_rows}
        )
    pairwise = []
    for p in c["pairwise"]:
        rate = p["metric"] == "dimension"
        floor = 1.0 / c["bootstrap"] if not rate and c.get("bootstrap") else 0.0
        pairwise.append(
            {
                **p,
                "a_value": _fmt(p["a_value"], rate),
                "b_value": _fmt(p["b_value"], rate),
                "diff": "" if rate else _fmt(p.get("diff")),
                "ci": "" if rate else _ci(p.get("ci95")),
                "p": p_text(p["p_value"], floor),
                "significant": p["p_value"] is not None and p["p_value"] < 0.05,
            }
        )
    cache = out / "thumbs"
    samples = []
    for d in c["disagreements"]:
        source = thumbnail(out, d["source"], thumb, cache) if d["source"] else None
        run_rows = []
        for r in d["runs"]:
            images = []
            for label, rel in r["images"].items():
                folder = Path(r["folder"])
                t = thumbnail(folder, rel, thumb, cache / _slug(r["run"])) if rel else None
                sc = r["scores"].get(label, {})
                target = folder / rel if rel else None
                images.append(
                    {
                        "label": label,
                        "src": data_uri(t[0].read_bytes(), "image/jpeg") if t else None,
                        "width": t[1] if t else 0,
                        "height": t[2] if t else 0,
                        "href": _rel(target, page) if target else "",
                        "verdict": r["verdicts"].get(label) or "unjudged",
                        "scores": " · ".join(
                            f"{SCORES[k]} {_fmt(v)}" for k, v in sc.items() if v is not None
                        ),
                        "missing": "no image" if not rel else "image not found",
                    }
                )
            run_rows.append({"run": r["run"], "images": images})
        samples.append(
            {
                "id": d["sample_id"],
                "category": d["category"],
                "split": " ".join(d["split"]),
                "runs_text": " ".join(r["run"] for r in d["runs"]),
                "source": {
                    "src": data_uri(source[0].read_bytes(), "image/jpeg") if source else None,
                    "width": source[1] if source else 0,
                    "height": source[2] if source else 0,
                },
                "rows": run_rows,
            }
        )
    context = {
        "runs": c["runs"],
        "judge": c["judge"],
        "created": c["created"],
        "warnings": c["warnings"],
        "tables": tables,
        "missing": [r for r in c["runs"] if r["status"] != "ok" or not r["scores"]],
        "plots": [_plot(p, page) for p in plots],
        "pairwise": pairwise,
        "samples": samples,
        "categories": c["categories"],
        "labels": c["labels"],
        "thumb": thumb,
    }
    return environment().get_template("comparison.html.j2").render(**context)


def _plot(path: Path, page: Path) -> dict[str, Any]:
    """A plot embedded in a page, shown at 2/3 of its pixels (drawn at 150 dpi: every plot at
    one scale, whatever its size), linked to its file."""
    from PIL import Image

    with Image.open(path) as im:
        width = round(im.width / 1.5)
    return {
        "src": data_uri(path.read_bytes(), "image/png"),
        "href": _rel(path, page),
        "alt": path.stem.replace("_", " "),
        "width": width,
    }


def p_text(p: float | None, floor: float = 0.0) -> str:
    """A p-value as text; at the bootstrap's floor (1 / resamples) it is an upper bound."""
    if p is None:
        return "–"
    if floor and p <= floor:
        return f"≤ {floor:.3g}"
    return f"{p:.3g}" if p >= 0.001 else "< 0.001"


def _rel(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, page.parent)).as_posix()


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name)
