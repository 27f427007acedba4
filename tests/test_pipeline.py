"""The five stages in process on the demo dataset: records, resume, fingerprints, failures.

The happy paths run on the real tiny models (identity editor, tiny FLUX.2 executor, the trained
tiny refiner and judge); the failure paths inject faults through the test doubles."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import REAL_MODELS, SCRIPTED, compose_config

from reedit.config import ConfigError
from reedit.records import RecordStore
from reedit.run import run
from reedit.stages.resume import ConfigMismatch, StageFailed

REAL = (*REAL_MODELS, "report.bootstrap=200")
FULL = (*SCRIPTED, "model=slow_identity", "executor=slow_identity", "report.bootstrap=200")
POLISH = ["Improve the overall image quality."]  # the trained refiner's critique of a scene


def records(run_dir, stage):
    return RecordStore(run_dir, stage).load()


def loads(caplog) -> dict[str, int]:
    """Models loaded, from the log lines the model base classes write."""
    text = [r.getMessage() for r in caplog.records]
    return {
        "editor": sum(m.startswith("loading editor") for m in text),
        "vlm": sum(m.startswith("loading VLM") for m in text),
    }


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One run of every stage on the real tiny models, shared by the tests that only read it."""
    cfg = compose_config(*REAL)
    run_dir = tmp_path_factory.mktemp("real_run")
    return run_dir, run(cfg, run_dir=run_dir)


def test_full_run_writes_every_stage(real_run):
    run_dir, metrics = real_run
    edits = records(run_dir, "edit")
    assert {r["sample_id"] for r in edits.values()} == {r["key"] for r in edits.values()}
    assert len(edits) == 10 and all(r["status"] == "ok" for r in edits.values())
    assert all((run_dir / r["image"]).is_file() for r in edits.values())
    analyze = records(run_dir, "analyze")
    assert len(analyze) == 10 and all(r["status"] == "ok" for r in analyze.values())
    assert sum(r["re_edit"] == POLISH for r in analyze.values()) >= 9  # the scenes were kept
    refine = records(run_dir, "refine")
    assert len(refine) == 10 and all(r["status"] == "ok" for r in refine.values())
    for key, r in refine.items():
        assert r["instructions"] == ["; ".join(analyze[key]["re_edit"])]
        assert (run_dir / r["image"]).is_file()
    judge = records(run_dir, "judge")
    assert len(judge) == 10 * 2 * 3  # samples x (primary, refined) x (dimension, if, sc)
    assert {r["label"] for r in judge.values()} == {"primary", "refined"}
    verdict = metrics["scores"]["overall"]["verdict"]
    for label in ("primary", "refined"):
        yes = sum(
            r["value"] == "yes"
            for r in judge.values()
            if r["metric"] == "dimension" and r["label"] == label and r["status"] == "ok"
        )
        assert verdict[label]["yes"] == yes
    assert verdict["primary"]["yes_rate"] >= 80  # the scenes, kept by the identity editor
    assert verdict["refined"]["yes_rate"] <= 10  # the random-weight executor's noise
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk["scores"] == metrics["scores"]
    assert (run_dir / "samples.csv").read_text().count("\n") == 11
    assert "## Headline" in (run_dir / "report.md").read_text()


def test_resume_does_nothing_and_loads_nothing(compose, tmp_path, caplog):
    cfg = compose(*REAL)
    with caplog.at_level(logging.INFO):
        run(cfg, run_dir=tmp_path)
    # the editor and the executor, the refiner's and the judge's backend: each loaded once
    assert loads(caplog) == {"editor": 2, "vlm": 2}
    before = {
        s: (tmp_path / "records" / f"{s}.jsonl").read_bytes()
        for s in ("edit", "analyze", "refine", "judge")
    }
    caplog.clear()
    with caplog.at_level(logging.INFO):
        run(cfg, run_dir=tmp_path)
    after = {s: (tmp_path / "records" / f"{s}.jsonl").read_bytes() for s in before}
    assert after == before
    assert loads(caplog) == {"editor": 0, "vlm": 0}
    for stage in ("edit", "analyze r1", "refine r1", "judge"):
        assert f"{stage}: nothing to do" in caplog.text


def test_a_resume_with_nothing_to_do_builds_each_model_once_and_loads_none(compose, tmp_path):
    """Set-up builds every model (its constructor's checks run before any data is read); a
    model is loaded only at its stage's first pending unit."""
    from doubles import ScriptedVLM

    ScriptedVLM.instances.clear()
    run(compose(*FULL), run_dir=tmp_path)
    assert [v.loads for v in ScriptedVLM.instances] == [1, 1]  # the refiner's, the judge's
    ScriptedVLM.instances.clear()
    run(compose(*FULL), run_dir=tmp_path)
    assert [v.loads for v in ScriptedVLM.instances] == [0, 0]


def test_changed_model_config_refuses_to_mix_then_fresh_redoes(compose, tmp_path):
    run(compose(*REAL, "limit=1"), run_dir=tmp_path)
    seeds = {k: r["seed"] for k, r in records(tmp_path, "edit").items()}
    changed = compose(*REAL, "limit=1", "seed=7")
    with pytest.raises(ConfigMismatch, match=r"fresh=\[edit\]"):
        run(changed, run_dir=tmp_path)
    run(compose(*REAL, "limit=1", "seed=7", "fresh=[edit]"), run_dir=tmp_path)
    assert list((tmp_path / "records" / "archive").glob("edit.*.jsonl"))
    edits = records(tmp_path, "edit")
    assert len(edits) == 5 and all(r["seed"] != seeds[k] for k, r in edits.items())
    # downstream stages were redone under the new fingerprints, not mixed
    judge_fps = {r["fingerprint"] for r in records(tmp_path, "judge").values()}
    assert len(judge_fps) == 2  # one for primary, one for refined images


def test_runtime_keys_do_not_change_fingerprints(compose, tmp_path, caplog):
    run(compose(*REAL, "limit=1"), run_dir=tmp_path)
    runtime = ("model.batch_size=3", "judge.batch_size=2", "judge.vlm.batch_size=3")
    with caplog.at_level(logging.INFO):
        run(compose(*REAL, "limit=1", *runtime), run_dir=tmp_path)
    assert "edit: nothing to do" in caplog.text and "judge: nothing to do" in caplog.text


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
    from reedit.runtime.pool import ModelLoadError

    (tmp_path / "empty").mkdir()
    cfg = compose(
        "dataset=demo", "model=tiny_flux2", f"model.path={tmp_path}/empty", "progress=false"
    )
    with pytest.raises(
        ModelLoadError,
        match=r"model: loading .*Flux2Editor failed: "
        r"FileNotFoundError: model.path: .* is not a diffusers pipeline folder",
    ):
        run(cfg, run_dir=tmp_path / "run")


def test_a_missing_model_folder_is_a_set_up_error_before_any_data_is_read(compose, tmp_path):
    cfg = compose(
        "dataset=folder",
        f"dataset.root={tmp_path}/no_data",
        "model=precomputed",
        f"model.images_dir={tmp_path}/none",
        "executor=tiny_flux2",
        f"executor.path={tmp_path}/no_executor",
    )
    with pytest.raises(ConfigError, match=r"^2 problems in the configuration: ") as err:
        run(cfg, run_dir=tmp_path / "run")
    assert "2 problems" in str(err.value)
    assert "model.images_dir: no such folder" in str(err.value)
    assert "executor.path: no such folder" in str(err.value)


def test_perceptual_quality_is_judged_when_asked(compose, tmp_path):
    # the scripted judge: the trained tiny judge was not trained on the PQ prompt
    metrics = run(compose(*FULL, "judge.metrics=[dimension,if,sc,pq]"), run_dir=tmp_path)
    pq = metrics["scores"]["overall"]["pq"]["by_label"]
    assert pq["primary"]["n"] == 10 and pq["refined"]["n"] == 10
    assert "pq" in metrics["judge_health"]
    header = (tmp_path / "samples.csv").read_text().splitlines()[0]
    assert "refined_pq_min" in header and "primary_pq_status" in header
    report = (tmp_path / "report.md").read_text()
    assert "| overall | IF | SC | PQ |" in report  # the headline shows it
    assert "- **PQ** (perceptual quality): two 0–10 sub-scores" in report
