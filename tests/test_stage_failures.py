"""Failures inside analyze, refine and judge in a real run: error records, the error-rate check,
``retry_errors``, the report's counts and the compat substitution of a failed refinement.

Faults come from the test doubles (a scripted VLM and an identity editor that fail for what a
file lists), so that "fixing the cause" (deleting the file) leaves the configuration unchanged.
"""

from __future__ import annotations

import pytest
from conftest import SCRIPTED

from reedit.records import RecordStore
from reedit.run import run
from reedit.stages.resume import StageFailed

FULL = (*SCRIPTED, "model=identity", "executor=slow_identity", "report.bootstrap=50")
BAD = "00003_environmental_medium"  # its instruction: "Make it night."
BAD_INSTRUCTION = "Make it night."


def records(run_dir, stage):
    return RecordStore(run_dir, stage).load()


def lines(run_dir, stage) -> int:
    return (run_dir / "records" / f"{stage}.jsonl").read_text().count("\n")


def test_analyze_failure_is_a_record_fails_the_run_and_is_retried(compose, tmp_path):
    fail = tmp_path / "fail.txt"
    fail.write_text(BAD_INSTRUCTION)
    over = (*FULL, f"refiner.vlm.fail_file={fail}", "refiner.retries=1")
    run_dir = tmp_path / "run"
    with pytest.raises(StageFailed, match=r"analyze: 1 of 10 units failed"):
        run(compose(*over, "max_error_rate=0.05"), run_dir=run_dir)
    analyze = records(run_dir, "analyze")
    bad = analyze[f"{BAD}/r1"]
    assert bad["status"] == "error" and bad["error_type"] == "RuntimeError"
    assert bad["attempts"] == 2 and "scripted backend failure" in bad["error"]
    assert sum(r["status"] == "ok" for r in analyze.values()) == 9  # the others were kept
    assert not (run_dir / "records" / "refine.jsonl").exists()  # the run stopped there

    # the default error rate lets the run go on: nothing is refined or judged for BAD's refined
    metrics = run(compose(*over), run_dir=run_dir)
    assert lines(run_dir, "analyze") == 10  # the error record was kept, not retried
    assert f"{BAD}/r1" not in records(run_dir, "refine") and len(records(run_dir, "refine")) == 9
    counts = metrics["stages"]["analyze"]
    assert (counts["ok"], counts["error"], counts["errors_by_type"]) == (9, 1, {"RuntimeError": 1})
    health = metrics["judge_health"]["dimension"]["refined"]
    assert health["missing"] == 1 and health["ok"] == 9
    assert metrics["judge_health"]["dimension"]["primary"]["ok"] == 10

    fail.unlink()  # the cause is fixed
    metrics = run(compose(*over, "retry_errors=true"), run_dir=run_dir)
    assert records(run_dir, "analyze")[f"{BAD}/r1"]["status"] == "ok"
    assert records(run_dir, "refine")[f"{BAD}/r1"]["status"] == "ok"
    assert metrics["stages"]["analyze"]["error"] == 0
    assert metrics["judge_health"]["dimension"]["refined"]["ok"] == 10
    assert lines(run_dir, "analyze") == 11  # only the failed unit was asked again


def test_refine_failure_is_a_record_and_compat_substitutes_the_image_it_refines(compose, tmp_path):
    fail = tmp_path / "fail.txt"
    fail.write_text(BAD)
    over = (*FULL, f"executor.fail_file={fail}")
    with pytest.raises(StageFailed, match=r"refine: 1 of 10 units failed"):
        run(compose(*over, "max_error_rate=0"), run_dir=tmp_path / "strict")

    run_dir = tmp_path / "run"
    metrics = run(compose(*over), run_dir=run_dir)
    bad = records(run_dir, "refine")[f"{BAD}/r1"]
    assert bad["status"] == "error" and "scripted failure" in bad["error"] and "image" not in bad
    assert not (run_dir / "images" / "environmental" / BAD / "refined.png").exists()
    assert metrics["stages"]["refine"]["error"] == 1
    judged = records(run_dir, "judge")
    assert f"{BAD}/refined/dimension" not in judged and f"{BAD}/primary/dimension" in judged
    assert metrics["scores"]["overall"]["verdict"]["refined"]["judged"] == 9

    # compat: the failed refinement is judged on the image it was meant to refine
    compat = tmp_path / "compat"
    metrics = run(compose(*over, "compat.upstream_failures=true"), run_dir=compat)
    sub = records(compat, "judge")[f"{BAD}/refined/dimension"]
    assert sub["substituted"] == "primary" and sub["status"] == "ok"
    assert sub["image"].endswith(f"{BAD}/primary.png")
    assert metrics["scores"]["overall"]["verdict"]["refined"]["judged"] == 10
    # ... and once the real refinement exists, the substituted judgement is made again
    fail.unlink()
    run(compose(*over, "compat.upstream_failures=true", "retry_errors=true"), run_dir=compat)
    again = records(compat, "judge")[f"{BAD}/refined/dimension"]
    assert again["substituted"] is None and again["image"].endswith(f"{BAD}/refined.png")
    assert records(compat, "refine")[f"{BAD}/r1"]["status"] == "ok"


def test_judge_failure_is_a_record_fails_the_run_and_is_retried(compose, tmp_path):
    fail = tmp_path / "fail.txt"
    fail.write_text(BAD_INSTRUCTION)
    over = (*FULL, f"judge.vlm.fail_file={fail}", "judge.retries=1")
    run_dir = tmp_path / "run"
    # BAD's 2 images x 3 metrics fail: 6 of 60
    with pytest.raises(StageFailed, match=r"judge: 6 of 60 units failed"):
        run(compose(*over, "max_error_rate=0.05"), run_dir=run_dir)
    judge = records(run_dir, "judge")
    failed = [r for r in judge.values() if r["status"] == "error"]
    assert len(failed) == 6 and {r["sample_id"] for r in failed} == {BAD}
    assert all(r["attempts"] == 2 and "value" not in r for r in failed)
    assert not (run_dir / "metrics.json").exists()  # the report stage did not run

    metrics = run(compose(*over), run_dir=run_dir)  # errors kept: counted, never scored
    assert metrics["stages"]["judge"]["error"] == 6
    v = metrics["scores"]["overall"]["verdict"]["primary"]
    assert v["judged"] == 9 and v["unscored"] == 1  # not scored: the error, never a "no"
    assert metrics["judge_health"]["if"]["primary"]["error"] == 1
    assert "| if | primary | 9 | 0 | 1 | 0 |" in (run_dir / "report.md").read_text()

    fail.unlink()
    metrics = run(compose(*over, "retry_errors=true"), run_dir=run_dir)
    assert metrics["stages"]["judge"]["error"] == 0
    assert metrics["scores"]["overall"]["verdict"]["primary"]["judged"] == 10
    assert lines(run_dir, "judge") == 66
