"""Tests for reedit.report.stats, with hand-computed expectations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from reedit.report.stats import SampleScores, bootstrap_ci, compute_metrics, mcnemar_exact

CATS = ["physical", "environmental", "cultural", "causal", "referential"]
LABELS = ["primary", "refined"]


def _row(sid: str, cat: str, primary: str | None, refined: str | None, **kw) -> SampleScores:
    verdict = {}
    if primary is not None:
        verdict["primary"] = primary
    if refined is not None:
        verdict["refined"] = refined
    return SampleScores(sid, cat, verdict=verdict, **kw)


def _verdict_rows() -> list[SampleScores]:
    # physical (4): p1 yes->yes, p2 no->yes, p3 no->no, p4 unscored->yes
    # environmental (2): e1 yes->yes, e2 yes->no
    # cultural (1): c1 unscored->unscored (explicit None)
    # causal: no rows
    # referential (3): r1 no->yes, r2 no->yes, r3 no->no
    # plus one row whose category is not configured (must be ignored)
    return [
        _row("p1", "physical", "yes", "yes"),
        _row("p2", "physical", "no", "yes"),
        _row("p3", "physical", "no", "no"),
        _row("p4", "physical", None, "yes"),
        _row("e1", "environmental", "yes", "yes"),
        _row("e2", "environmental", "yes", "no"),
        SampleScores("c1", "cultural", verdict={"primary": None, "refined": None}),
        _row("r1", "referential", "no", "yes"),
        _row("r2", "referential", "no", "yes"),
        _row("r3", "referential", "no", "no"),
        _row("x1", "not-a-category", "yes", "yes"),
    ]


@pytest.fixture(scope="module")
def verdict_metrics() -> dict:
    return compute_metrics(_verdict_rows(), CATS, LABELS, n_boot=200, seed=0)


# --------------------------------------------------------------------------- yes-rates


def test_sample_count_and_category_order(verdict_metrics):
    # 10 configured rows (x1 ignored); causal has no rows -> absent; order as configured
    assert verdict_metrics["n_samples"] == 10
    assert list(verdict_metrics["categories"]) == [
        "physical",
        "environmental",
        "cultural",
        "referential",
    ]
    assert verdict_metrics["overall"]["n"] == 10
    assert verdict_metrics["categories"]["physical"]["n"] == 4


def test_per_category_yes_rates_and_unscored(verdict_metrics):
    phys = verdict_metrics["categories"]["physical"]["verdict"]
    # primary: yes=p1, no=p2,p3 -> judged 3, unscored p4 -> 1; 100*1/3 = 33.3333; cov 100*3/4 = 75
    assert phys["primary"]["yes"] == 1
    assert phys["primary"]["no"] == 2
    assert phys["primary"]["judged"] == 3
    assert phys["primary"]["unscored"] == 1
    assert phys["primary"]["coverage"] == 75.0
    assert phys["primary"]["yes_rate"] == 33.3333
    # refined: yes=p1,p2,p4, no=p3 -> 100*3/4 = 75.0, coverage 100
    assert phys["refined"]["yes"] == 3
    assert phys["refined"]["judged"] == 4
    assert phys["refined"]["unscored"] == 0
    assert phys["refined"]["coverage"] == 100.0
    assert phys["refined"]["yes_rate"] == 75.0

    env = verdict_metrics["categories"]["environmental"]["verdict"]
    # primary 2/2 = 100.0; refined 1/2 = 50.0
    assert env["primary"]["yes_rate"] == 100.0
    assert env["refined"]["yes_rate"] == 50.0

    ref = verdict_metrics["categories"]["referential"]["verdict"]
    # primary 0/3 = 0.0 (not None: there are judged samples); refined 2/3 = 66.6667
    assert ref["primary"]["yes_rate"] == 0.0
    assert ref["refined"]["yes_rate"] == 66.6667


def test_zero_judged_category_is_none_not_zero(verdict_metrics):
    cult = verdict_metrics["categories"]["cultural"]
    for lab in LABELS:
        v = cult["verdict"][lab]
        assert v["judged"] == 0
        assert v["unscored"] == 1
        assert v["coverage"] == 0.0
        assert v["yes_rate"] is None
        assert v["ci95"] is None
    t = cult["transitions"]["refined"]
    assert t["n"] == 0
    assert t["improved"] == {"count": 0, "rate": None}
    assert t["p_value"] == 1.0
    assert cult["verdict_improvement"]["refined"] == {"improvement": None, "improvement_rate": None}


def test_pooled_is_micro_average(verdict_metrics):
    ov = verdict_metrics["overall"]["verdict"]
    # primary yes: p1,e1,e2 = 3; no: p2,p3,r1,r2,r3 = 5; judged 8; unscored p4,c1 = 2
    # yes_rate = 100*3/8 = 37.5; coverage = 100*8/10 = 80
    assert (ov["primary"]["yes"], ov["primary"]["no"]) == (3, 5)
    assert ov["primary"]["unscored"] == 2
    assert ov["primary"]["coverage"] == 80.0
    assert ov["primary"]["yes_rate"] == 37.5
    # refined yes: p1,p2,p4,e1,r1,r2 = 6; no: p3,e2,r3 = 3; judged 9 -> 66.6667; coverage 90
    assert (ov["refined"]["yes"], ov["refined"]["no"]) == (6, 3)
    assert ov["refined"]["coverage"] == 90.0
    assert ov["refined"]["yes_rate"] == 66.6667
    # macro mean of category rates would differ: refined (75+50+66.67)/3 = 63.89,
    # primary (33.33+100+0)/3 = 44.44
    cats = verdict_metrics["categories"]
    for lab, pooled in (("refined", 66.6667), ("primary", 37.5)):
        rates = [
            c["verdict"][lab]["yes_rate"]
            for c in cats.values()
            if c["verdict"][lab]["yes_rate"] is not None
        ]
        macro = sum(rates) / len(rates)
        assert abs(macro - pooled) > 1.0


# --------------------------------------------------------------------------- transitions


def test_transitions_per_category(verdict_metrics):
    t = verdict_metrics["categories"]["physical"]["transitions"]["refined"]
    # p4 has no primary verdict -> excluded; p1 maintained, p2 improved, p3 unchanged -> n 3
    assert t["n"] == 3
    assert t["improved"] == {"count": 1, "rate": 33.3333}
    assert t["maintained"] == {"count": 1, "rate": 33.3333}
    assert t["regressed"] == {"count": 0, "rate": 0.0}
    assert t["unchanged"] == {"count": 1, "rate": 33.3333}
    # McNemar b=1, c=0: 2 * 0.5^1 = 1.0
    assert t["p_value"] == 1.0

    t = verdict_metrics["categories"]["environmental"]["transitions"]["refined"]
    # e1 maintained, e2 regressed -> 50 / 50
    assert t["n"] == 2
    assert t["maintained"]["rate"] == 50.0
    assert t["regressed"]["rate"] == 50.0
    assert t["improved"]["count"] == 0


def test_transitions_pooled(verdict_metrics):
    t = verdict_metrics["overall"]["transitions"]["refined"]
    # both judged: p1 M, p2 I, p3 U, e1 M, e2 R, r1 I, r2 I, r3 U -> n 8 (p4, c1 excluded)
    # improved 3 -> 37.5, maintained 2 -> 25, regressed 1 -> 12.5, unchanged 2 -> 25
    assert t["n"] == 8
    assert t["improved"] == {"count": 3, "rate": 37.5}
    assert t["maintained"] == {"count": 2, "rate": 25.0}
    assert t["regressed"] == {"count": 1, "rate": 12.5}
    assert t["unchanged"] == {"count": 2, "rate": 25.0}
    # McNemar b=3, c=1: n=4, 2*(C(4,0)+C(4,1))/16 = 10/16 = 0.625
    assert t["p_value"] == 0.625
    assert "primary" not in verdict_metrics["overall"]["transitions"]


def test_only_one_verdict_excluded_from_transitions():
    rows = [
        _row("a", "physical", "yes", None),  # refined missing
        _row("b", "physical", None, "no"),  # primary missing
        _row("c", "physical", "no", "yes"),  # the only pair: improved
    ]
    t = compute_metrics(rows, CATS, LABELS, n_boot=10)["overall"]["transitions"]["refined"]
    assert t["n"] == 1
    assert t["improved"] == {"count": 1, "rate": 100.0}
    assert t["regressed"] == {"count": 0, "rate": 0.0}


# --------------------------------------------------------------------------- improvement


def test_verdict_improvement(verdict_metrics):
    cats = verdict_metrics["categories"]
    # physical: 75 - 33.3333 = 41.6667; rate 100 * 41.6667 / 33.3333 = 125.0
    assert cats["physical"]["verdict_improvement"]["refined"] == {
        "improvement": 41.6667,
        "improvement_rate": 125.0,
    }
    # environmental: 50 - 100 = -50; rate -50
    assert cats["environmental"]["verdict_improvement"]["refined"] == {
        "improvement": -50.0,
        "improvement_rate": -50.0,
    }
    # referential: baseline 0 -> improvement 66.6667, rate defined as 0
    assert cats["referential"]["verdict_improvement"]["refined"] == {
        "improvement": 66.6667,
        "improvement_rate": 0.0,
    }
    # pooled: 66.6667 - 37.5 = 29.1667; rate 100 * 29.1667 / 37.5 = 77.7778
    assert verdict_metrics["overall"]["verdict_improvement"]["refined"] == {
        "improvement": 29.1667,
        "improvement_rate": 77.7778,
    }


# --------------------------------------------------------------------------- best / worst


def test_best_worst(verdict_metrics):
    # refined rates: physical 75, environmental 50, referential 66.67, cultural None (ignored)
    assert verdict_metrics["best_category"] == "physical"
    assert verdict_metrics["worst_category"] == "environmental"


def _tie_rows() -> list[SampleScores]:
    # refined yes-rates: a 1/2 = 50, b 2/4 = 50, c 1/4 = 25, d 1/4 = 25
    spec = {"a": (1, 2), "b": (2, 4), "c": (1, 4), "d": (1, 4)}
    rows = []
    for cat, (yes, n) in spec.items():
        for i in range(n):
            rows.append(_row(f"{cat}{i}", cat, "no", "yes" if i < yes else "no"))
    return rows


def test_best_worst_ties_go_to_first_in_configured_order():
    rows = _tie_rows()
    m = compute_metrics(rows, ["a", "b", "c", "d"], LABELS, n_boot=10)
    assert (m["best_category"], m["worst_category"]) == ("a", "c")
    m = compute_metrics(rows, ["d", "c", "b", "a"], LABELS, n_boot=10)
    assert (m["best_category"], m["worst_category"]) == ("b", "d")


def test_best_worst_exact_tie_thirds():
    # e: 2/6, f: 1/3 -> the same rate (compared exactly, no float noise); g: 0/1 is the worst.
    # The best is whichever of e/f comes first in the configured order.
    rows = [_row(f"e{i}", "e", "no", "yes" if i < 2 else "no") for i in range(6)]
    rows += [_row(f"f{i}", "f", "no", "yes" if i < 1 else "no") for i in range(3)]
    rows += [_row("g0", "g", "no", "no")]
    m = compute_metrics(rows, ["f", "e", "g"], LABELS, n_boot=10)
    assert m["best_category"] == "f"
    assert m["worst_category"] == "g"
    m = compute_metrics(rows, ["e", "f", "g"], LABELS, n_boot=10)
    assert m["best_category"] == "e"


def test_best_worst_none_when_nothing_judged():
    rows = [SampleScores("a", "physical", verdict={"primary": "yes"})]  # refined never judged
    m = compute_metrics(rows, CATS, LABELS, n_boot=10)
    assert m["best_category"] is None
    assert m["worst_category"] is None


def test_empty_rows():
    m = compute_metrics([], CATS, LABELS, n_boot=10)
    assert m["n_samples"] == 0
    assert m["categories"] == {}
    assert m["overall"]["n"] == 0
    assert m["overall"]["verdict"]["refined"]["coverage"] is None
    assert m["overall"]["if"]["by_label"]["primary"]["mean"] is None
    assert m["best_category"] is None


# --------------------------------------------------------------------------- IF / SC / PQ


def _score_rows() -> list[SampleScores]:
    return [
        SampleScores(
            "s1",
            "physical",
            if_score={"primary": 6.0, "refined": 9.0},
            sc={"primary": (8.0, 6.0), "refined": (9.0, 8.0)},
            pq={"primary": (0.0, 3.0), "refined": (2.0, 4.0)},
        ),
        SampleScores(
            "s2",
            "physical",
            if_score={"primary": 8.0, "refined": 8.0},
            sc={"primary": (5.0, 9.0), "refined": (6.0, 10.0)},
            pq={"primary": (0.0, 0.0), "refined": (6.0, 5.0)},
        ),
        SampleScores(
            "s3",
            "physical",
            if_score={"primary": None, "refined": 7.0},
            sc={"primary": None, "refined": (10.0, 10.0)},
            pq={"refined": (float("nan"), 1.0)},  # NaN sub-score -> unscored
        ),
        SampleScores(
            "s4",
            "physical",
            if_score={"primary": 7.0, "refined": 10.0},
            sc={"primary": (7.0, 7.0), "refined": (4.0, 5.0)},
            pq={"primary": (None, 2.0)},  # type: ignore[dict-item]  # half-missing -> unscored
        ),
    ]


@pytest.fixture(scope="module")
def score_metrics() -> dict:
    return compute_metrics(_score_rows(), CATS, LABELS, n_boot=200, seed=1)


def test_if_mean(score_metrics):
    m = score_metrics["categories"]["physical"]["if"]
    # primary: (6 + 8 + 7) / 3 = 7.0, n 3, coverage 75; refined: (9+8+7+10)/4 = 8.5
    assert m["by_label"]["primary"]["mean"] == 7.0
    assert m["by_label"]["primary"]["n"] == 3
    assert m["by_label"]["primary"]["coverage"] == 75.0
    assert m["by_label"]["refined"]["mean"] == 8.5
    assert m["by_label"]["refined"]["coverage"] == 100.0
    # improvement 1.5; rate 100 * 1.5 / 7 = 21.428571 -> 21.4286
    assert m["improvement"]["refined"] == {"improvement": 1.5, "improvement_rate": 21.4286}


def test_sc_min_mean_and_subscores(score_metrics):
    m = score_metrics["categories"]["physical"]["sc"]
    p = m["by_label"]["primary"]
    # primary mins: min(8,6)=6, min(5,9)=5, min(7,7)=7 -> 18/3 = 6.0
    # mean_a (8+5+7)/3 = 6.6667, mean_b (6+9+7)/3 = 7.3333
    assert p["mean"] == 6.0
    assert p["mean_a"] == 6.6667
    assert p["mean_b"] == 7.3333
    assert p["n"] == 3
    r = m["by_label"]["refined"]
    # refined mins: 8, 6, 10, 4 -> 28/4 = 7.0; mean_a (9+6+10+4)/4 = 7.25; mean_b (8+10+10+5)/4
    # = 8.25
    assert r["mean"] == 7.0
    assert r["mean_a"] == 7.25
    assert r["mean_b"] == 8.25
    # improvement 7 - 6 = 1; rate 100/6 = 16.6667
    assert m["improvement"]["refined"] == {"improvement": 1.0, "improvement_rate": 16.6667}


def test_pq_baseline_zero_and_partial_pairs(score_metrics):
    m = score_metrics["categories"]["physical"]["pq"]
    p = m["by_label"]["primary"]
    # primary: s1 min(0,3)=0, s2 min(0,0)=0; s3 absent, s4 (None, 2) unscored -> mean 0, n 2
    assert p["mean"] == 0.0
    assert p["n"] == 2
    assert p["unscored"] == 2
    assert p["coverage"] == 50.0
    assert (p["mean_a"], p["mean_b"]) == (0.0, 1.5)
    r = m["by_label"]["refined"]
    # refined: s1 min(2,4)=2, s2 min(6,5)=5; s3 NaN unscored, s4 absent -> 7/2 = 3.5
    assert r["mean"] == 3.5
    assert r["n"] == 2
    # improvement 3.5 - 0 = 3.5; baseline 0 -> rate 0
    assert m["improvement"]["refined"] == {"improvement": 3.5, "improvement_rate": 0.0}


def test_metric_none_when_no_scores():
    rows = [SampleScores("a", "physical", if_score={"refined": 5.0})]
    m = compute_metrics(rows, CATS, LABELS, n_boot=10)["overall"]["if"]
    assert m["by_label"]["primary"]["mean"] is None
    assert m["by_label"]["primary"]["coverage"] == 0.0
    assert m["by_label"]["refined"]["mean"] == 5.0
    assert m["by_label"]["refined"]["ci95"] is None  # one value
    assert m["improvement"]["refined"] == {"improvement": None, "improvement_rate": None}


def test_three_labels():
    rows = [
        _row("a", "physical", "no", "yes"),
        _row("b", "physical", "no", "no"),
        _row("c", "causal", "no", "yes"),
    ]
    rows[0].verdict["refined_r2"] = "yes"
    rows[1].verdict["refined_r2"] = "yes"
    rows[2].verdict["refined_r2"] = "no"
    m = compute_metrics(rows, CATS, ["primary", "refined", "refined_r2"], n_boot=10)
    ov = m["overall"]
    assert set(ov["transitions"]) == {"refined", "refined_r2"}
    # r2 vs primary: a, b no->yes -> improved 2 of 3
    assert ov["transitions"]["refined_r2"]["improved"] == {"count": 2, "rate": 66.6667}
    assert m["categories"]["physical"]["verdict"]["refined_r2"]["yes_rate"] == 100.0
    # best/worst use the LAST label (refined_r2: physical 100, causal 0; refined: 50, 100)
    assert (m["best_category"], m["worst_category"]) == ("physical", "causal")


def test_when_every_category_ties_there_is_neither_best_nor_worst():
    # refined yes-rates: physical 1/2, causal 2/4, cultural 1/2 -> all 50 %
    spec = {"physical": (1, 2), "causal": (2, 4), "cultural": (1, 2)}
    rows = [
        _row(f"{cat}{i}", cat, "no", "yes" if i < yes else "no")
        for cat, (yes, n) in spec.items()
        for i in range(n)
    ]
    m = compute_metrics(rows, CATS, LABELS, n_boot=10)
    assert (m["best_category"], m["worst_category"]) == (None, None)
    # the tied categories in the configured order, and the rate they share
    assert m["category_tie"] == {"categories": ["physical", "cultural", "causal"], "yes_rate": 50.0}


def test_one_category_is_not_its_own_best_and_worst():
    rows = [_row("a", "physical", "no", "yes"), _row("b", "physical", "no", "no")]
    m = compute_metrics(rows, CATS, LABELS, n_boot=10)
    assert (m["best_category"], m["worst_category"]) == (None, None)
    assert m["category_tie"] == {"categories": ["physical"], "yes_rate": 50.0}


def test_no_tie_when_the_rates_differ(verdict_metrics):
    assert verdict_metrics["category_tie"] is None
    assert compute_metrics([], CATS, LABELS, n_boot=10)["category_tie"] is None


def test_only_the_metrics_asked_get_a_section():
    rows = _score_rows()
    for row in rows:
        row.verdict = {"primary": "yes", "refined": "no"}
    m = compute_metrics(rows, CATS, LABELS, metrics=["dimension", "if", "sc"], n_boot=10)
    for block in (m["overall"], m["categories"]["physical"]):
        assert set(block) == {"n", "verdict", "transitions", "verdict_improvement", "if", "sc"}
    m = compute_metrics(rows, CATS, LABELS, metrics=["sc"], n_boot=10)
    assert set(m["overall"]) == {"n", "sc"}
    assert m["overall"]["sc"] == compute_metrics(rows, CATS, LABELS, n_boot=10)["overall"]["sc"]
    # without the dimension verdict there is no yes-rate to rank categories by
    assert (m["best_category"], m["worst_category"], m["category_tie"]) == (None, None, None)
    with pytest.raises(ValueError, match="unknown metrics"):
        compute_metrics(rows, CATS, LABELS, metrics=["IF"], n_boot=10)


# --------------------------------------------------------------------------- output hygiene


def _walk(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _walk(v)
    else:
        yield obj


def test_plain_python_types_and_rounding(verdict_metrics, score_metrics):
    for m in (verdict_metrics, score_metrics):
        json.dumps(m)  # must be serialisable
        leaves = list(_walk(m))
        floats = [x for x in leaves if isinstance(x, float)]
        assert floats
        for x in leaves:
            assert type(x) in (int, float, str, bool, type(None)), type(x)
        for x in floats:
            assert round(x, 4) == x


def test_invalid_verdict_raises():
    rows = [SampleScores("a", "physical", verdict={"primary": "maybe"})]
    with pytest.raises(ValueError, match=r"verdict must be 'yes', 'no' or None, got 'maybe'"):
        compute_metrics(rows, CATS, LABELS, n_boot=10)


def test_verdict_normalised():
    rows = [SampleScores("a", "physical", verdict={"primary": " YES ", "refined": "No"})]
    v = compute_metrics(rows, CATS, LABELS, n_boot=10)["overall"]["verdict"]
    assert v["primary"]["yes"] == 1
    assert v["refined"]["no"] == 1


def test_empty_labels_rejected():
    with pytest.raises(ValueError, match="labels must contain at least the baseline label"):
        compute_metrics([], CATS, [], n_boot=10)


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    rng = np.random.default_rng(123)
    values = rng.uniform(0, 10, size=50)
    ci = bootstrap_ci(values, n_boot=1000, seed=7)
    assert ci is not None
    lo, hi = ci
    assert lo < float(values.mean()) < hi
    assert hi - lo < 5.0
    assert bootstrap_ci(values, n_boot=1000, seed=7) == ci
    assert bootstrap_ci(values, n_boot=1000, seed=8) != ci


def test_bootstrap_ci_none_for_single_value_and_degenerate():
    assert bootstrap_ci([4.0]) is None
    assert bootstrap_ci([]) is None
    assert bootstrap_ci([3.0, 3.0, 3.0]) == [3.0, 3.0]


def test_bootstrap_chunked_path_is_deterministic(monkeypatch):
    import reedit.report.stats as stats

    values = np.arange(100, dtype=float)
    monkeypatch.setattr(stats, "_MAX_CELLS", 1000)  # force chunks of 10 boots
    ci = bootstrap_ci(values, n_boot=200, seed=3)
    assert ci is not None
    assert ci[0] < 49.5 < ci[1]
    assert bootstrap_ci(values, n_boot=200, seed=3) == ci


def test_metrics_ci_contain_estimates_and_deterministic(verdict_metrics):
    ov = verdict_metrics["overall"]
    for lab in LABELS:
        v = ov["verdict"][lab]
        lo, hi = v["ci95"]
        assert 0.0 <= lo <= v["yes_rate"] <= hi <= 100.0
    again = compute_metrics(_verdict_rows(), CATS, LABELS, n_boot=200, seed=0)
    assert again == verdict_metrics
    other = compute_metrics(_verdict_rows(), CATS, LABELS, n_boot=200, seed=1)
    # 9 binary values give coarse quantiles, so compare everything: some CI must move
    assert other != verdict_metrics


def test_score_ci_contains_mean(score_metrics):
    for key in ("if", "sc"):
        b = score_metrics["categories"]["physical"][key]["by_label"]["refined"]
        lo, hi = b["ci95"]
        assert lo <= b["mean"] <= hi
        assert lo < hi


# --------------------------------------------------------------------------- McNemar


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 0, 1.0),
        (5, 0, 0.0625),  # 2 * (1/2)^5
        (0, 5, 0.0625),
        (3, 1, 0.625),  # 2 * (1 + 4) / 16
        (1, 1, 1.0),  # 2 * (1 + 2) / 4 = 1.5 -> capped at 1
        (10, 2, 2 * (1 + 12 + 66) / 4096),  # 0.0385742...
    ],
)
def test_mcnemar_exact_known_values(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_large_n_matches_exact():
    b, c = 2700, 2500  # n = 5200 > exact-integer threshold -> log-space path
    n = b + c
    exact = 2 * sum(math.comb(n, k) for k in range(c + 1)) / 2**n
    assert mcnemar_exact(b, c) == pytest.approx(exact, rel=1e-9)
    assert 0.0 < mcnemar_exact(b, c) < 0.01


def test_mcnemar_negative_rejected():
    with pytest.raises(ValueError, match="discordant counts must be non-negative"):
        mcnemar_exact(-1, 2)
