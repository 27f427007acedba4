"""What the report says, from the run folder alone: ties between categories, only the metrics the
judge was asked (each explained), and every stage's model load and wall time from the stage log
(``records/stages.jsonl``).

The real run: the identity editor keeps the demo's scenes (yes), the tiny FLUX.2 executor turns
every one into noise (no), so the refined yes-rate is 0 % in every category: a tie."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import REAL_MODELS, SCRIPTED, compose_config

from reedit.records import StageLog
from reedit.run import run
from reedit.runtime.pool import ModelLoadError

CATS = ["physical", "environmental", "cultural", "causal", "referential"]
REAL = (*REAL_MODELS, "limit=1", "report.bootstrap=50")
FULL = (*SCRIPTED, "model=identity", "executor=slow_identity", "report.bootstrap=50")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    cfg = compose_config(*REAL)
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


def test_each_stage_reports_its_model_load_and_wall_time_from_the_stage_log(real_run):
    run_dir, metrics = real_run
    runs = StageLog(run_dir).runs()
    assert [(r.stage, r.round, r.group, r.model, r.pending, r.done) for r in runs] == [
        ("edit", None, "model", "IdentityEditor", 5, 5),
        ("analyze", 1, "refiner", "Refiner", 5, 5),
        ("refine", 1, "executor", "Flux2Editor", 5, 5),
        ("judge", None, "judge", "Judge", 30, 30),
    ]
    for r in runs:
        assert r.completed and r.error is None
        assert 0 <= r.load_seconds <= r.wall_seconds
        stage = metrics["stages"][r.stage]
        assert (stage["load_seconds"], stage["wall_seconds"], stage["executions"]) == (
            round(r.load_seconds, 3),
            round(r.wall_seconds, 3),
            1,
        )
        # the model's load is part of the stage's wall time, not of its records' seconds (both
        # rounded to 3 decimals in metrics.json)
        assert stage["seconds"] <= stage["wall_seconds"] + 0.001
    report = (run_dir / "report.md").read_text()
    assert "| stage | ok | error | unscored | model load s | wall s | unit s |" in report
    edit = metrics["stages"]["edit"]
    assert f"| edit | 5 | 0 | 0 | {edit['load_seconds']:.2f} | {edit['wall_seconds']:.2f} |" in (
        report
    )


def test_the_report_is_rebuilt_from_the_run_folder_alone(real_run, compose, tmp_path):
    run_dir, metrics = real_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for name in ("metrics.json", "samples.csv", "report.md"):
        (copy / name).unlink()
    again = run(compose(*REAL, "stages=[report]"), run_dir=copy)
    assert again["stages"] == metrics["stages"]  # the times too: from records/stages.jsonl
    assert again["scores"] == metrics["scores"]
    assert len(StageLog(copy).runs()) == 4  # the report stage adds no line


def test_a_resumed_run_adds_its_own_stage_lines_and_the_report_sums_them(compose, tmp_path):
    run(compose(*FULL, "refine.rounds=2"), run_dir=tmp_path)
    first = StageLog(tmp_path).runs()
    assert [(r.stage, r.round, r.done) for r in first] == [
        ("edit", None, 10),
        ("analyze", 1, 10),
        ("refine", 1, 10),
        ("analyze", 2, 10),
        ("refine", 2, 10),
        ("judge", None, 90),
    ]
    # round 2's refiner and executor were loaded by round 1's stages
    assert [r.load_seconds for r in first if r.round == 2] == [0.0, 0.0]
    metrics = run(compose(*FULL, "refine.rounds=2", "fresh=[judge]"), run_dir=tmp_path)
    runs = StageLog(tmp_path).runs()
    assert runs[:6] == first  # appended to, never rewritten
    assert [(r.stage, r.done) for r in runs[6:]] == [("judge", 90)]  # nothing else to do
    judge = metrics["stages"]["judge"]
    assert judge["executions"] == 2
    assert judge["wall_seconds"] == round(runs[5].wall_seconds + runs[6].wall_seconds, 3)
    analyze = metrics["stages"]["analyze"]
    assert analyze["executions"] == 2  # its two rounds
    assert analyze["load_seconds"] == round(first[1].load_seconds, 3)


def test_a_stage_that_fails_logs_its_execution_as_not_completed(compose, tmp_path):
    (tmp_path / "empty").mkdir()  # a folder, but no pipeline: the load fails
    cfg = compose(
        "dataset=demo", "model=tiny_flux2", f"model.path={tmp_path}/empty", "progress=false"
    )
    with pytest.raises(
        ModelLoadError, match=r"model\.path: .*empty is not a diffusers pipeline folder"
    ):
        run(cfg, run_dir=tmp_path / "run")
    (line,) = StageLog(tmp_path / "run").runs()
    assert (line.stage, line.pending, line.done, line.completed) == ("edit", 10, 0, False)
    assert line.error.startswith("ModelLoadError: model: loading")


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


@pytest.mark.parametrize(
    "metric,bad,expected",
    [
        ("dimension", "maybe", "'yes' or 'no'"),
        ("if", "high", "a number"),
        ("sc", [7], "a pair of numbers"),
    ],
)
def test_a_judgement_edited_by_hand_is_named_with_its_field(
    real_run, compose, tmp_path, metric, bad, expected
):
    """The report refuses a judgement's value no judge writes, naming the record, its file and
    the field (was: the statistics' bare ValueError, naming neither)."""
    from reedit.config import ReeditError

    run_dir, _ = real_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    path = copy / "records" / "judge.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    n = next(i for i, x in enumerate(lines) if json.loads(x)["metric"] == metric)
    rec = json.loads(lines[n])
    lines[n] = json.dumps(rec | {"value": bad}) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(ReeditError, match=r"judgement '.*': its field 'value' is ") as err:
        run(compose(*REAL, "stages=[report]"), run_dir=copy)
    message = str(err.value)
    assert f"{path}:{n + 1}" in message and f"'{rec['key']}'" in message, message
    assert f"'value' is {bad!r}" in message and expected in message, message
