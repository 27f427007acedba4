"""Benchmark statistics: yes-rates, transitions, IF/SC/PQ means, bootstrap CIs, McNemar.

Pure functions (numpy only). Formulas follow the reference protocol ("Statistics (reference
formulas)"), with two deliberate additions: unscored values are excluded from every denominator
and reported as coverage, and every rate/mean carries a percentile-bootstrap 95% CI.

Conventions:

* A label that is absent from a sample's dict, or maps to ``None`` (or a NaN score, or a pair
  with a ``None``/NaN sub-score), is "not scored" for that metric.
* Verdicts are normalised with ``str.strip().lower()``; anything other than ``"yes"``/``"no"``
  raises ``ValueError`` (mapping unknown text to "no" is the parser's job, not the report's).
* Only the metrics asked of the judge (``metrics``) get a section: a metric that was never asked
  is absent, not "unscored with 0 % coverage".
* All floats in the output are plain Python floats rounded to 4 decimals, except ``p_value``
  which is rounded to 4 significant digits so that small p-values do not collapse to 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "SampleScores",
    "bootstrap_ci",
    "compute_metrics",
    "mcnemar_exact",
    "paired_bootstrap",
]

_DIGITS = 4
# Above this many index-matrix cells (n_boot * n) the bootstrap is drawn in chunks of boots.
_MAX_CELLS = 4_000_000
_TRANSITIONS = ("improved", "maintained", "regressed", "unchanged")
# The judge's metrics, in report order: the dimension verdict, then the scores.
METRICS = ("dimension", "if", "sc", "pq")


@dataclass
class SampleScores:
    """All judge scores of one benchmark sample, keyed by image label ("primary", "refined"...)."""

    sample_id: str
    category: str
    verdict: dict[str, str | None] = field(default_factory=dict)
    if_score: dict[str, float | None] = field(default_factory=dict)
    sc: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    pq: dict[str, tuple[float, float] | None] = field(default_factory=dict)


# A score metric's values in a SampleScores, and whether it is a pair of sub-scores.
_SCORES: dict[str, tuple[Callable[[SampleScores], dict[str, Any]], bool]] = {
    "if": (lambda r: r.if_score, False),
    "sc": (lambda r: r.sc, True),
    "pq": (lambda r: r.pq, True),
}


# --------------------------------------------------------------------------- helpers


def _r(x: float | None) -> float | None:
    """Round to 4 decimals as a plain float (None stays None)."""
    return None if x is None else round(float(x), _DIGITS)


def _sig(x: float, digits: int = 4) -> float:
    """Round to ``digits`` significant digits as a plain float."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{digits - 1}e}")


def _pct(num: int, den: int) -> float | None:
    return None if den == 0 else 100.0 * num / den


def _verdict(value: Any) -> bool | None:
    """``True`` for yes, ``False`` for no, ``None`` for not scored."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text == "yes":
        return True
    if text == "no":
        return False
    raise ValueError(f"verdict must be 'yes', 'no' or None, got {value!r}")


_HOLDS = {"dimension": "'yes' or 'no'", "if": "a number", "sc": "a pair of numbers"}
_HOLDS["pq"] = _HOLDS["sc"]


def check_value(metric: str, value: Any) -> None:
    """Raise ``ValueError`` (saying what it should be) unless ``value`` is what a judgement of
    ``metric`` holds for the statistics: a verdict, a score or a pair of scores (or None)."""
    try:
        if metric == "dimension":
            _verdict(value)
        else:
            (_pair if _SCORES[metric][1] else _score)(value)
    except (TypeError, ValueError):
        raise ValueError(f"not {_HOLDS[metric]}") from None


def _score(value: Any) -> float | None:
    if value is None:
        return None
    x = float(value)
    return None if math.isnan(x) else x


def _pair(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    a, b = value
    a, b = _score(a), _score(b)
    return None if a is None or b is None else (a, b)


def _improvement(base: float | None, new: float | None) -> dict[str, float | None]:
    """``new - base`` and ``100 * (new - base) / base`` (0 when base is 0)."""
    if base is None or new is None:
        return {"improvement": None, "improvement_rate": None}
    diff = new - base
    rate = 0.0 if base == 0 else 100.0 * diff / base
    return {"improvement": _r(diff), "improvement_rate": _r(rate)}


class _Boot:
    """Percentile bootstrap; index matrices are cached per sample size within one call.

    Each statistic uses a fresh ``np.random.default_rng(seed)``, so a CI depends only on its own
    values, ``n_boot`` and ``seed`` (not on which other statistics were computed before it).
    """

    def __init__(self, n_boot: int, seed: int) -> None:
        self.n_boot = int(n_boot)
        self.seed = seed
        self._cache: dict[int, np.ndarray] = {}

    def ci(self, values: Sequence[float] | np.ndarray) -> list[float] | None:
        v = np.asarray(values, dtype=np.float64)
        n = v.size
        if n < 2 or self.n_boot < 1:
            return None
        if self.n_boot * n <= _MAX_CELLS:
            idx = self._cache.get(n)
            if idx is None:
                rng = np.random.default_rng(self.seed)
                idx = rng.integers(0, n, size=(self.n_boot, n), dtype=np.int64)
                self._cache[n] = idx
            stats = v[idx].mean(axis=1)
        else:
            rng = np.random.default_rng(self.seed)
            chunk = max(1, _MAX_CELLS // n)
            parts = []
            for start in range(0, self.n_boot, chunk):
                k = min(chunk, self.n_boot - start)
                parts.append(v[rng.integers(0, n, size=(k, n), dtype=np.int64)].mean(axis=1))
            stats = np.concatenate(parts)
        lo, hi = np.percentile(stats, [2.5, 97.5])
        return [_r(lo), _r(hi)]


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> list[float] | None:
    """Percentile-bootstrap 95% CI ``[lo, hi]`` of the mean of ``values``; None if < 2 values.

    For a yes-rate in percent pass ``100 * indicator`` values.
    """
    return _Boot(n_boot, seed).ci(values)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Paired comparison of two systems' scores on the same samples (``a[i]``, ``b[i]``): the mean
    difference ``a - b``, its percentile-bootstrap 95 % CI (samples resampled, pairs kept), and
    a two-sided bootstrap p-value (twice the share of resampled mean differences on the far side
    of 0, within ``[1 / n_boot, 1]``: the bootstrap cannot tell smaller ones apart; None below 2
    pairs)."""
    if len(a) != len(b):
        raise ValueError(f"paired values differ in length: {len(a)} and {len(b)}")
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = d.size
    out: dict[str, Any] = {"n": n, "diff": _r(float(d.mean())) if n else None}
    if n < 2 or n_boot < 1:
        return out | {"ci95": None, "p_value": None}
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            d[rng.integers(0, n, size=(k, n), dtype=np.int64)].mean(axis=1)
            for k in _chunks(n_boot, max(1, _MAX_CELLS // n))
        ]
    )
    lo, hi = np.percentile(means, [2.5, 97.5])
    if not d.any():
        p = 1.0
    else:
        p = 2.0 * min(float((means <= 0).mean()), float((means >= 0).mean()))
        p = min(1.0, max(p, 1.0 / n_boot))
    return out | {"ci95": [_r(lo), _r(hi)], "p_value": _sig(p)}


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for discordant counts ``b`` (improved), ``c`` (regressed).

    ``p = min(1, 2 * P[X <= min(b, c)])`` with ``X ~ Binomial(b + c, 1/2)``; 1.0 when b + c == 0.
    """
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    m = min(b, c)
    if n <= 5000:
        # Exact integer arithmetic: sum_{k<=m} C(n, k) / 2^(n-1).
        total, term = 0, 1
        for k in range(m + 1):
            total += term
            term = term * (n - k) // (k + 1)
        return min(1.0, total / (1 << (n - 1)))
    log_half = n * math.log(0.5)
    lg = math.lgamma(n + 1)
    terms = [
        math.exp(lg - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half) for k in range(m + 1)
    ]
    return min(1.0, 2.0 * math.fsum(terms))


# --------------------------------------------------------------------------- blocks


def _verdict_block(
    rows: list[SampleScores], labels: list[str], boot: _Boot
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Fraction | None]]:
    n = len(rows)
    base = labels[0]
    parsed = [{lab: _verdict(r.verdict.get(lab)) for lab in labels} for r in rows]

    verdict: dict[str, Any] = {}
    raw_rate: dict[str, float | None] = {}
    exact_rate: dict[str, Fraction | None] = {}
    for lab in labels:
        vals = [p[lab] for p in parsed if p[lab] is not None]
        yes = sum(vals)
        judged = len(vals)
        raw_rate[lab] = _pct(yes, judged)
        exact_rate[lab] = Fraction(yes, judged) if judged else None
        verdict[lab] = {
            "yes": yes,
            "no": judged - yes,
            "judged": judged,
            "unscored": n - judged,
            "coverage": _r(_pct(judged, n)),
            "yes_rate": _r(raw_rate[lab]),
            "ci95": boot.ci([100.0 if v else 0.0 for v in vals]),
        }

    transitions: dict[str, Any] = {}
    improvement: dict[str, Any] = {}
    for lab in labels[1:]:
        counts = dict.fromkeys(_TRANSITIONS, 0)
        for p in parsed:
            before, after = p[base], p[lab]
            if before is None or after is None:
                continue
            if after:
                counts["maintained" if before else "improved"] += 1
            else:
                counts["regressed" if before else "unchanged"] += 1
        total = sum(counts.values())
        block: dict[str, Any] = {"n": total}
        for key in _TRANSITIONS:
            block[key] = {"count": counts[key], "rate": _r(_pct(counts[key], total))}
        block["p_value"] = _sig(mcnemar_exact(counts["improved"], counts["regressed"]))
        transitions[lab] = block
        improvement[lab] = _improvement(raw_rate[base], raw_rate[lab])
    return verdict, transitions, improvement, exact_rate


def _metric_block(
    rows: list[SampleScores],
    labels: list[str],
    boot: _Boot,
    getter: Callable[[SampleScores], dict[str, Any]],
    paired: bool,
) -> dict[str, Any]:
    n = len(rows)
    by_label: dict[str, Any] = {}
    means: dict[str, float | None] = {}
    for lab in labels:
        if paired:
            pairs = [p for p in (_pair(getter(r).get(lab)) for r in rows) if p is not None]
            values = [min(a, b) for a, b in pairs]
        else:
            pairs = []
            values = [x for x in (_score(getter(r).get(lab)) for r in rows) if x is not None]
        k = len(values)
        means[lab] = math.fsum(values) / k if k else None
        block: dict[str, Any] = {
            "mean": _r(means[lab]),
            "n": k,
            "unscored": n - k,
            "coverage": _r(_pct(k, n)),
            "ci95": boot.ci(values),
        }
        if paired:
            block["mean_a"] = _r(math.fsum(a for a, _ in pairs) / k) if k else None
            block["mean_b"] = _r(math.fsum(b for _, b in pairs) / k) if k else None
        by_label[lab] = block
    improvement = {lab: _improvement(means[labels[0]], means[lab]) for lab in labels[1:]}
    return {"by_label": by_label, "improvement": improvement}


def _block(
    rows: list[SampleScores], labels: list[str], boot: _Boot, metrics: Sequence[str]
) -> tuple[dict[str, Any], Fraction | None]:
    """One BLOCK (the metrics asked only) plus the exact yes-rate of the last label (for the
    best/worst ranking; None without the dimension verdict)."""
    block: dict[str, Any] = {"n": len(rows)}
    rate = None
    if "dimension" in metrics:
        verdict, transitions, v_improvement, exact = _verdict_block(rows, labels, boot)
        block |= {
            "verdict": verdict,
            "transitions": transitions,
            "verdict_improvement": v_improvement,
        }
        rate = exact[labels[-1]]
    for metric, (getter, paired) in _SCORES.items():
        if metric in metrics:
            block[metric] = _metric_block(rows, labels, boot, getter, paired)
    return block, rate


def _rank(rates: list[tuple[str, Fraction]]) -> dict[str, Any]:
    """Best and worst category (ties to the first in order); when every ranked category has the
    same rate there is neither, and ``category_tie`` says so (the categories and their rate)."""
    if not rates:
        return {"best_category": None, "worst_category": None, "category_tie": None}
    if len({rate for _, rate in rates}) == 1:
        return {
            "best_category": None,
            "worst_category": None,
            "category_tie": {
                "categories": [cat for cat, _ in rates],
                "yes_rate": _r(100 * float(rates[0][1])),
            },
        }
    best = worst = rates[0]
    for cat, rate in rates[1:]:
        if rate > best[1]:
            best = (cat, rate)
        if rate < worst[1]:
            worst = (cat, rate)
    return {"best_category": best[0], "worst_category": worst[0], "category_tie": None}


def compute_metrics(
    rows: list[SampleScores],
    categories: list[str],
    labels: list[str],
    *,
    metrics: Sequence[str] = METRICS,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-category and pooled (micro-average) metrics; see module docstring for conventions.

    ``labels[0]`` is the baseline; every other label is compared against it. Rows whose category
    is not in ``categories`` are ignored. Only the ``metrics`` asked of the judge get a section
    (``dimension``: verdict, transitions and verdict_improvement; ``if``, ``sc``, ``pq``).
    Best/worst category are ranked by the yes-rate of ``labels[-1]`` (exact fractions, ties to
    the first category in ``categories``); when every ranked category has the same rate, both are
    None and ``category_tie`` holds the categories and their yes-rate.
    """
    if not labels:
        raise ValueError("labels must contain at least the baseline label")
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate labels: {labels}")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; expected some of {list(METRICS)}")
    order = list(dict.fromkeys(categories))
    by_cat: dict[str, list[SampleScores]] = {c: [] for c in order}
    for row in rows:
        if row.category in by_cat:
            by_cat[row.category].append(row)
    kept = [r for c in order for r in by_cat[c]]

    boot = _Boot(n_boot, seed)
    cat_blocks: dict[str, Any] = {}
    rates: list[tuple[str, Fraction]] = []
    for cat in order:
        if not by_cat[cat]:
            continue
        block, rate = _block(by_cat[cat], labels, boot, metrics)
        cat_blocks[cat] = block
        if rate is not None:
            rates.append((cat, rate))

    overall, _ = _block(kept, labels, boot, metrics)
    return {
        "n_samples": len(kept),
        "categories": cat_blocks,
        "overall": overall,
        **_rank(rates),
    }
