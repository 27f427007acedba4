"""The run's plots (PNG, in ``plots/``), drawn from ``metrics.json`` and the sample views: yes-rate
per category (each image label, 95 % CI whiskers), a radar over the five dimensions + IF + SC
(the RE-Edit paper's figure), the verdict transitions per category, and the score distributions.

Okabe–Ito colours (colour-blind safe) and cividis for heat maps; matplotlib is imported when a
plot is drawn (Agg, no display)."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reedit.files import write_bytes_atomic

# Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
TRANSITIONS = ("improved", "maintained", "regressed", "unchanged")
SCORE_NAMES = {"if": "IF", "sc": "SC", "pq": "PQ"}
DPI = 150


def _pyplot() -> Any:
    import matplotlib

    # its first use in a new home builds a font cache and says so at INFO: not a run's news
    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "figure.dpi": DPI,
            "savefig.bbox": "tight",
        }
    )
    return plt


def _save(fig: Any, path: Path) -> Path:
    png = io.BytesIO()
    fig.savefig(png, dpi=DPI, format="png")
    write_bytes_atomic(png.getvalue(), path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def grouped_bars(
    path: Path,
    groups: Sequence[str],
    series: dict[str, Sequence[float | None]],
    errors: dict[str, Sequence[Sequence[float] | None]] | None,
    ylabel: str,
    title: str,
    ymax: float | None = 100.0,
) -> Path:
    """Bars per group, one colour per series, 95 % CI whiskers where given (``[lo, hi]``)."""
    plt = _pyplot()
    n = max(1, len(series))
    width = 0.8 / n
    # one width for every bar chart (they sit side by side in the HTML pages), wider when crowded
    fig, ax = plt.subplots(figsize=(max(9.6, 0.9 * len(groups) * max(1, n / 2) + 1.5), 3.6))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        heights = [0.0 if v is None else v for v in values]
        ax.bar(xs, heights, width * 0.92, label=name, color=PALETTE[i % len(PALETTE)])
        cis = (errors or {}).get(name) or [None] * len(values)
        for x, v, ci in zip(xs, values, cis):
            if ci and v is not None:
                ax.errorbar(x, v, yerr=[[v - ci[0]], [ci[1] - v]], color="#333333", capsize=3, lw=1)
            top = v if v is None or not ci else max(v, ci[1])
            text = "n/a" if v is None else f"{v:.0f}" if ymax == 100.0 else f"{v:.1f}"
            ax.text(
                x,
                (top or 0) + (ymax or 10) * 0.015,
                text,
                ha="center",
                va="bottom",
                fontsize=7,
                color="#333333",
            )
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ymax is not None:
        ax.set_ylim(0, ymax * 1.1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(
        frameon=False, fontsize=8, ncols=min(6, n), loc="upper center", bbox_to_anchor=(0.5, -0.1)
    )
    return _save(fig, path)


def radar(path: Path, axes: Sequence[str], series: dict[str, Sequence[float | None]], title: str):
    """A polygon per series over ``axes`` (values on 0–100)."""
    plt = _pyplot()
    k = len(axes)
    angles = [2 * math.pi * i / k for i in range(k)] + [0.0]
    fig, ax = plt.subplots(figsize=(4.8, 4.8), subplot_kw={"polar": True})
    ax.set_theta_offset(math.pi / 2)  # the first axis at the top, then clockwise
    ax.set_theta_direction(-1)
    for i, (name, values) in enumerate(series.items()):
        vals = [0.0 if v is None else v for v in values]
        color = PALETTE[i % len(PALETTE)]
        ax.plot(angles, [*vals, vals[0]], color=color, lw=1.6, label=name)
        ax.fill(angles, [*vals, vals[0]], color=color, alpha=0.12)
    ax.set_xticks(angles[:-1], axes)
    ax.tick_params(axis="x", pad=12)
    ax.set_ylim(0, 100)
    ax.set_yticks([25, 50, 75, 100], ["25", "50", "75", "100"], fontsize=7)
    ax.set_title(title, pad=18)
    ax.legend(
        frameon=False,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08),
        ncols=min(4, len(series)),
    )
    return _save(fig, path)


def heat(path: Path, rows: Sequence[str], cols: Sequence[str], cells: list[list[Any]], title: str):
    """A table of rates (%) as a heat map, each cell annotated ``rate % (count)``; ``cells`` hold
    ``(rate, count)`` or None."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2, 0.45 * len(rows) + 1.4))
    values = [[float("nan") if c is None or c[0] is None else c[0] for c in row] for row in cells]
    image = ax.imshow(values, cmap="cividis", vmin=0, vmax=100, aspect="auto")
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            text = "–" if c is None or c[0] is None else f"{c[0]:.0f} % ({c[1]})"
            dark = c is not None and c[0] is not None and c[0] < 60
            ax.text(
                j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(title)
    ax.spines[:].set_visible(False)
    fig.colorbar(image, ax=ax, label="% of the row's samples", fraction=0.04)
    return _save(fig, path)


def histograms(path: Path, panels: dict[str, dict[str, list[float]]], title: str) -> Path:
    """One panel per score (0–10, bins of 1), one outline per series."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.0), squeeze=False)
    bins = [x - 0.5 for x in range(12)]
    for ax, (name, series) in zip(axes[0], panels.items()):
        for i, (label, values) in enumerate(series.items()):
            ax.hist(
                values,
                bins=bins,
                histtype="step",
                lw=1.6,
                color=PALETTE[i % len(PALETTE)],
                label=f"{label} (n={len(values)})",
            )
        ax.set_xlim(-0.7, 10.7)
        ax.set_xticks(range(0, 11, 2))
        ax.set_xlabel(f"{name} score")
        ax.set_ylabel("samples")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend
        ax.legend(frameon=False, fontsize=7, loc="upper center", ncols=2)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


# ------------------------------------------------------------------------------ a run's plots
def run_plots(metrics: dict[str, Any], views: Sequence[Any], folder: Path) -> list[Path]:
    """Every plot the run's judge metrics allow, written to ``folder``; their paths."""
    run, scores = metrics["run"], metrics["scores"]
    asked, labels = run["judge_metrics"], run["labels"]
    cats = list(scores["categories"])
    model = run["choices"].get("model", "")
    out: list[Path] = []
    if "dimension" in asked and cats:
        blocks = [scores["categories"][c]["verdict"] for c in cats] + [scores["overall"]["verdict"]]
        out.append(
            grouped_bars(
                folder / "yes_rate_by_category.png",
                [*cats, "overall"],
                {lab: [b[lab]["yes_rate"] for b in blocks] for lab in labels},
                {lab: [b[lab]["ci95"] for b in blocks] for lab in labels},
                "yes-rate (%)",
                f"{model}: reasoning yes-rate by dimension (95 % CI)",
            )
        )
        if len(labels) > 1:
            last = labels[-1]
            rows, cells = [], []
            for c in [*cats, "overall"]:
                block = scores["overall"] if c == "overall" else scores["categories"][c]
                t = block["transitions"][last]
                rows.append(f"{c} (n={t['n']})")
                cells.append([(t[k]["rate"], t[k]["count"]) for k in TRANSITIONS])
            out.append(
                heat(
                    folder / "transitions.png",
                    rows,
                    TRANSITIONS,
                    cells,
                    f"{model}: {labels[0]} → {last} verdict transitions",
                )
            )
    axes, series = _radar_axes(scores, asked, cats, labels)
    if len(axes) >= 3:
        out.append(radar(folder / "radar.png", axes, series, f"{model}: dimensions, IF and SC"))
    panels = {
        SCORE_NAMES[m]: {
            lab: [s for v in views if (s := v.judged[lab][m].score) is not None] for lab in labels
        }
        for m in ("if", "sc", "pq")
        if m in asked
    }
    if panels:
        out.append(
            histograms(folder / "score_distributions.png", panels, f"{model}: score distributions")
        )
    return out


def _radar_axes(scores: dict[str, Any], asked: Sequence[str], cats: Sequence[str], labels):
    """The radar's axes (each dimension's yes-rate, IF and SC scaled to 0–100) and values."""
    axes: list[str] = []
    series: dict[str, list[float | None]] = {lab: [] for lab in labels}
    if "dimension" in asked:
        for c in cats:
            axes.append(c)
            for lab in labels:
                series[lab].append(scores["categories"][c]["verdict"][lab]["yes_rate"])
    for m in ("if", "sc"):
        if m in asked:
            axes.append(f"{SCORE_NAMES[m]} ×10")
            for lab in labels:
                mean = scores["overall"][m]["by_label"][lab]["mean"]
                series[lab].append(None if mean is None else 10 * mean)
    return axes, series


# ---------------------------------------------------------------------------- a comparison
def comparison_plots(c: dict[str, Any], folder: Path) -> list[Path]:
    """The comparison's plots: per image label, the runs' yes-rates by dimension (CIs), their
    IF/SC/PQ means, and a radar of the runs (the last label)."""
    runs = [r for r in c["runs"] if r["scores"]]
    dims = [*c["categories"], "overall"] if "dimension" in c["metrics"] else []
    scores = [k for k in ("if", "sc", "pq") if k in c["metrics"]]
    out: list[Path] = []
    for label in c["labels"]:
        blocks = {r["name"]: r["scores"].get(label, {}) for r in runs}
        if dims:
            out.append(
                grouped_bars(
                    folder / f"dimensions_{label}.png",
                    dims,
                    {n: [b.get("yes_rate", {}).get(d) for d in dims] for n, b in blocks.items()},
                    {n: [b.get("ci95", {}).get(d) for d in dims] for n, b in blocks.items()},
                    "yes-rate (%)",
                    f"{label} images: reasoning yes-rate by dimension (95 % CI)",
                )
            )
        if scores:
            out.append(
                grouped_bars(
                    folder / f"scores_{label}.png",
                    [SCORE_NAMES[k] for k in scores],
                    {n: [(b.get(k) or {}).get("mean") for k in scores] for n, b in blocks.items()},
                    {n: [(b.get(k) or {}).get("ci95") for k in scores] for n, b in blocks.items()},
                    "mean score (0–10)",
                    f"{label} images: {', '.join(SCORE_NAMES[k] for k in scores)} (95 % CI)",
                    ymax=10.0,
                )
            )
    last = c["labels"][-1]
    axes = [d for d in dims if d != "overall"] + [f"{SCORE_NAMES[k]} ×10" for k in scores[:2]]
    if len(axes) >= 3:
        series = {}
        for r in runs:
            b = r["scores"].get(last, {})
            vals = [b.get("yes_rate", {}).get(d) for d in dims if d != "overall"]
            vals += [
                None if (b.get(k) or {}).get("mean") is None else 10 * b[k]["mean"]
                for k in scores[:2]
            ]
            series[r["name"]] = vals
        out.append(radar(folder / f"radar_{last}.png", axes, series, f"{last} images by run"))
    return out
