"""What the report says: ties between categories, and only the metrics the judge was asked (each
explained).

The real run: the identity editor keeps the demo's scenes (yes), the tiny FLUX.2 executor turns
every one into noise (no), so the refined yes-rate is 0 % in every category: a tie."""

from __future__ import annotations

import json

import pytest
from conftest import REAL_MODELS, SCRIPTED

from reedit.run import run

CATS = ["physical", "environmental", "cultural", "causal", "referential"]
REAL = (*REAL_MODELS, "limit=1", "report.bootstrap=50")
FULL = (*SCRIPTED, "model=identity", "executor=slow_identity", "report.bootstrap=50")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from hydra import compose, initialize_config_dir

    from reedit.cli import config_dir

    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="reedit"):
        cfg = compose("config", overrides=list(REAL))
    run_dir = tmp_path_factory.mktemp("report_run")
    return run_dir, run(cfg, run_dir=run_dir)


def test_when_every_category_ties_there_is_no_best_or_worst(real_run):
    run_dir, metrics = real_run
    scores = metrics["scores"]
    refined = [scores["categories"][c]["verdict"]["refined"]["yes_rate"] for c in CATS]
    assert refined == [0.0] * 5  # the executor's noise everywhere
    assert scores["best_category"] is None and scores["worst_category"] is None
    assert scores["category_tie"] == {"categories": CATS, "yes_rate": 0.0}
    report = (run_dir / "report.md").read_text()
    assert "- all 5 categories tie at 0.0 % (by the refined yes-rate): no best or worst" in report
    assert "best category" not in report


def test_metrics_not_asked_are_left_out_and_those_asked_are_explained(real_run):
    run_dir, metrics = real_run
    assert metrics["run"]["judge_metrics"] == ["dimension", "if", "sc"]  # no pq asked
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    for block in [on_disk["scores"]["overall"], *on_disk["scores"]["categories"].values()]:
        assert set(block) == {"n", "verdict", "transitions", "verdict_improvement", "if", "sc"}
    assert set(on_disk["judge_health"]) == {"dimension", "if", "sc"}
    report = (run_dir / "report.md").read_text()
    assert "PQ" not in report and "pq" not in report
    glossary = report.split("## Metrics\n", 1)[1].split("\n## ", 1)[0]
    explained = [line.split("**")[1] for line in glossary.strip().splitlines()]
    assert explained == ["dimension", "IF", "SC"]
    assert "(instruction following): an integer 0–10" in glossary
    assert "(semantic consistency): two 0–10 sub-scores" in glossary
    assert "lower of the two" in glossary


def test_a_judge_asked_only_if_reports_only_if(compose, tmp_path):
    metrics = run(compose(*FULL, "judge.metrics=[if]"), run_dir=tmp_path)
    scores = metrics["scores"]
    assert set(scores["overall"]) == {"n", "if"}
    assert scores["overall"]["if"]["by_label"]["primary"]["n"] == 10
    assert scores["best_category"] is None and scores["category_tie"] is None
    report = (tmp_path / "report.md").read_text()
    assert "| image | IF |" in report
    assert "improved" not in report and "best category" not in report
    assert "**IF**" in report and "**dimension**" not in report and "**SC**" not in report
