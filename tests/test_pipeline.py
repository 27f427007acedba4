"""The five stages in process on the demo dataset: records, resume, fingerprints, failures."""

from __future__ import annotations

import json
import logging

import pytest
from doubles import ScriptedVLM

from reedit.records import RecordStore
from reedit.run import run
from reedit.stages.common import ConfigMismatch, StageFailed

FULL = (
    "dataset=demo",
    "model=slow_identity",
    "executor=slow_identity",
    "refiner=scripted",
    "judge=scripted",
    "progress=false",
    "report.bootstrap=200",
)


def records(run_dir, stage):
    return RecordStore(run_dir, stage).load()


def test_full_run_writes_every_stage(compose, tmp_path):
    cfg = compose(*FULL)
    metrics = run(cfg, run_dir=tmp_path)
    ids = {r["sample_id"] for r in records(tmp_path, "edit").values()}
    assert len(ids) == 10
    assert all((tmp_path / r["image"]).is_file() for r in records(tmp_path, "edit").values())
    analyze = records(tmp_path, "analyze")
    assert len(analyze) == 10 and all(r["status"] == "ok" for r in analyze.values())
    first = next(iter(analyze.values()))
    assert first["re_edit"] == ["Fix the lighting direction.", "Improve the overall image quality."]
    refine = records(tmp_path, "refine")
    assert {r["instructions"][0] for r in refine.values()} == {
        "Fix the lighting direction.; Improve the overall image quality."
    }
    judge = records(tmp_path, "judge")
    assert len(judge) == 10 * 2 * 3  # samples x (primary, refined) x (dimension, if, sc)
    assert {r["label"] for r in judge.values()} == {"primary", "refined"}
    overall = metrics["scores"]["overall"]
    yes = sum(
        r["value"] == "yes"
        for r in judge.values()
        if r["metric"] == "dimension" and r["label"] == "primary"
    )
    assert overall["verdict"]["primary"]["yes"] == yes
    assert overall["verdict"]["primary"]["judged"] == 10
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["scores"] == metrics["scores"]
    assert (tmp_path / "samples.csv").read_text().count("\n") == 11
    assert "## Headline" in (tmp_path / "report.md").read_text()


def test_resume_does_nothing_and_loads_nothing(compose, tmp_path, caplog):
    cfg = compose(*FULL)
    run(cfg, run_dir=tmp_path)
    before = {
        s: (tmp_path / "records" / f"{s}.jsonl").read_bytes()
        for s in ("edit", "analyze", "refine", "judge")
    }
    ScriptedVLM.instances.clear()
    with caplog.at_level(logging.INFO):
        run(cfg, run_dir=tmp_path)
    after = {s: (tmp_path / "records" / f"{s}.jsonl").read_bytes() for s in before}
    assert after == before
    assert "loading" not in caplog.text  # no editor and no VLM was loaded
    assert all(v.loads == 0 for v in ScriptedVLM.instances)


def test_changed_model_config_refuses_to_mix_then_fresh_redoes(compose, tmp_path):
    run(compose(*FULL), run_dir=tmp_path)
    changed = compose(*FULL, "seed=7")
    with pytest.raises(ConfigMismatch, match=r"fresh=\[edit\]"):
        run(changed, run_dir=tmp_path)
    run(compose(*FULL, "seed=7", "fresh=[edit]"), run_dir=tmp_path)
    assert list((tmp_path / "records" / "archive").glob("edit.*.jsonl"))
    edits = records(tmp_path, "edit")
    assert len(edits) == 10
    # downstream stages were redone under the new fingerprints, not mixed
    judge_fps = {r["fingerprint"] for r in records(tmp_path, "judge").values()}
    assert len(judge_fps) == 2  # one for primary, one for refined images


def test_runtime_keys_do_not_change_fingerprints(compose, tmp_path, caplog):
    run(compose(*FULL), run_dir=tmp_path)
    with caplog.at_level(logging.INFO):
        run(compose(*FULL, "model.batch_size=3"), run_dir=tmp_path)
    assert "edit: nothing to do" in caplog.text


def test_failures_are_records_and_error_rate_fails_the_run(compose, tmp_path):
    bad = "00000_physical_easy"
    fail_file = tmp_path / "fail.txt"
    fail_file.write_text(bad)
    cfg = compose(*FULL, f"model.fail_file={fail_file}", "max_error_rate=0.05")
    with pytest.raises(StageFailed, match="1 of 10"):
        run(cfg, run_dir=tmp_path)
    edits = records(tmp_path, "edit")
    assert edits[bad]["status"] == "error" and "scripted failure" in edits[bad]["error"]
    assert sum(r["status"] == "ok" for r in edits.values()) == 9  # the rest were kept
    # resume with the cause fixed and retry_errors: only the failed sample is redone
    fail_file.unlink()
    run(cfg, run_dir=tmp_path)  # without retry_errors the error record is kept
    assert records(tmp_path, "edit")[bad]["status"] == "error"
    run(compose(*FULL, f"model.fail_file={fail_file}", "retry_errors=true"), run_dir=tmp_path)
    assert records(tmp_path, "edit")[bad]["status"] == "ok"
    lines = (tmp_path / "records" / "edit.jsonl").read_text().splitlines()
    assert len(lines) == 11


def test_failed_edit_is_not_substituted_unless_compat(compose, tmp_path):
    bad = "00000_physical_easy"
    fail_file = tmp_path / "fail.txt"
    fail_file.write_text(bad)
    metrics = run(compose(*FULL, f"model.fail_file={fail_file}"), run_dir=tmp_path / "a")
    judged = {r["sample_id"] for r in records(tmp_path / "a", "judge").values()}
    assert bad not in judged
    assert metrics["scores"]["overall"]["verdict"]["primary"]["judged"] == 9
    health = metrics["judge_health"]["dimension"]["primary"]
    assert health["missing"] == 1 and health["ok"] == 9

    metrics = run(
        compose(*FULL, f"model.fail_file={fail_file}", "compat.upstream_failures=true"),
        run_dir=tmp_path / "b",
    )
    judge = records(tmp_path / "b", "judge")
    assert judge[f"{bad}/primary/dimension"]["substituted"] == "source"
    assert metrics["scores"]["overall"]["verdict"]["primary"]["judged"] == 10


def test_unparseable_judgements_are_unscored_never_no(compose, tmp_path):
    # the scripted judge answers garbage for one instruction
    target = "Tip the glass over"
    cfg = compose(*FULL, f"judge.vlm.garbage=['{target}']", "judge.retries=2")
    metrics = run(cfg, run_dir=tmp_path)
    bad = [r for r in records(tmp_path, "judge").values() if r["status"] == "unscored"]
    assert bad and all(r["attempts"] == 3 and len(r["raw"]) == 3 for r in bad)
    assert all("value" not in r for r in bad)
    n_bad_dim = sum(r["metric"] == "dimension" and r["label"] == "primary" for r in bad)
    v = metrics["scores"]["overall"]["verdict"]["primary"]
    assert v["unscored"] == n_bad_dim == 1 and v["judged"] == 9
    compat = run(
        compose(
            *FULL,
            f"judge.vlm.garbage=['{target}']",
            "judge.retries=2",
            "compat.upstream_failures=true",
            "fresh=[judge]",
        ),
        run_dir=tmp_path,
    )
    assert compat["scores"]["overall"]["verdict"]["primary"]["judged"] == 10


@pytest.mark.parametrize("mode", ["joined", "sequential"])
def test_refine_modes_and_rounds(compose, tmp_path, mode):
    metrics = run(compose(*FULL, f"refine.mode={mode}", "refine.rounds=2"), run_dir=tmp_path)
    refine = records(tmp_path, "refine")
    assert len(refine) == 20
    r = refine["00000_physical_easy/r2"]
    assert r["image"].endswith("refined_r2.png") and (tmp_path / r["image"]).is_file()
    if mode == "joined":
        assert len(r["instructions"]) == 1 and "; " in r["instructions"][0]
    else:
        assert r["instructions"] == [
            "Fix the lighting direction.",
            "Improve the overall image quality.",
        ]
    assert metrics["run"]["labels"] == ["primary", "refined", "refined_r2"]
    assert set(metrics["scores"]["overall"]["transitions"]) == {"refined", "refined_r2"}


def test_model_load_failure_names_the_group_and_cause(compose, tmp_path):
    from reedit.stages.common import ModelLoadError

    cfg = compose(
        "dataset=demo", "model=precomputed", f"model.images_dir={tmp_path}/none", "progress=false"
    )
    with pytest.raises(
        ModelLoadError,
        match=r"model: loading .*PrecomputedEditor failed: "
        r"FileNotFoundError: model.images_dir: no such folder",
    ):
        run(cfg, run_dir=tmp_path / "run")


def test_perceptual_quality_is_judged_when_asked(compose, tmp_path):
    metrics = run(compose(*FULL, "judge.metrics=[dimension,if,sc,pq]"), run_dir=tmp_path)
    pq = metrics["scores"]["overall"]["pq"]["by_label"]
    assert pq["primary"]["n"] == 10 and pq["refined"]["n"] == 10
    assert "pq" in metrics["judge_health"]
    header = (tmp_path / "samples.csv").read_text().splitlines()[0]
    assert "refined_pq_min" in header and "primary_pq_status" in header
