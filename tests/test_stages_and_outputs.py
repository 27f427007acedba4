"""``stages=`` subsets, extending a finished run with more stages, ``samples.csv`` values and the
skipped dataset records in ``metrics.json`` — on the real tiny models."""

from __future__ import annotations

import csv
import json
import logging

from conftest import REAL_MODELS
from digest import digest

from reedit.records import RecordStore
from reedit.run import run

REAL = (*REAL_MODELS, "limit=1", "report.bootstrap=50")


def stage_files(run_dir) -> set[str]:
    return {p.name for p in (run_dir / "records").glob("*.jsonl")}


def test_a_subset_of_stages_then_the_rest_equals_one_full_run(compose, tmp_path, caplog):
    full = tmp_path / "full"
    run(compose(*REAL), run_dir=full)

    parts = tmp_path / "parts"
    metrics = run(compose(*REAL, "stages=[edit,report]"), run_dir=parts)
    assert stage_files(parts) == {"edit.jsonl", "stages.jsonl"}  # and the stage log
    assert metrics["stages"]["edit"]["ok"] == 5 and metrics["stages"]["judge"]["total"] == 0
    assert not list((parts / "images").glob("*/*/refined.png"))

    with caplog.at_level(logging.INFO):
        run(compose(*REAL, "stages=[analyze,refine]"), run_dir=parts)
    assert not (parts / "records" / "judge.jsonl").exists()
    assert "loading editor IdentityEditor" not in caplog.text  # edit is not in the subset

    caplog.clear()
    with caplog.at_level(logging.INFO):
        run(compose(*REAL), run_dir=parts)  # extend with every stage: only judge and report
    assert "edit: nothing to do" in caplog.text and "refine r1: nothing to do" in caplog.text
    assert caplog.text.count("loading VLM") == 1  # the judge's backend only
    a, b = digest(full), digest(parts)
    assert a == b


def test_samples_csv_holds_the_records_values(compose, tmp_path):
    run(compose(*REAL), run_dir=tmp_path)
    rows = list(csv.DictReader((tmp_path / "samples.csv").open(encoding="utf-8")))
    assert len(rows) == 5
    edit = RecordStore(tmp_path, "edit").load()
    analyze = RecordStore(tmp_path, "analyze").load()
    refine = RecordStore(tmp_path, "refine").load()
    judge = RecordStore(tmp_path, "judge").load()
    for row in rows:
        sid = row["sample_id"]
        assert row["primary_image"] == edit[sid]["image"] and row["primary_status"] == "ok"
        assert row["re_edit_r1"] == " | ".join(analyze[f"{sid}/r1"]["re_edit"])
        assert row["cot_r1"] == " | ".join(analyze[f"{sid}/r1"]["cot"])
        assert row["refined_r1_image"] == refine[f"{sid}/r1"]["image"]
        for label in ("primary", "refined"):
            verdict = judge[f"{sid}/{label}/dimension"]
            assert row[f"{label}_dimension"] == verdict["value"]
            assert row[f"{label}_dimension_status"] == verdict["status"]
            assert float(row[f"{label}_if"]) == judge[f"{sid}/{label}/if"]["value"]
            a, b = judge[f"{sid}/{label}/sc"]["value"]
            assert (float(row[f"{label}_sc_a"]), float(row[f"{label}_sc_b"])) == (a, b)
            assert float(row[f"{label}_sc_min"]) == min(a, b)


def test_skipped_dataset_records_are_listed_in_metrics_and_report(compose, tmp_path):
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    Image.new("RGB", (64, 64), "red").save(data / "red.png")
    lines = [
        {"image": "red.png", "instruction": "Make it blue", "category": "physical"},
        {"id": "no_text", "image": "red.png", "instruction": "", "category": "physical"},
        {"id": "elsewhere", "image": "red.png", "instruction": "x", "category": "nowhere"},
    ]
    (data / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    cfg = compose(
        "dataset=folder",
        f"dataset.root={data}",
        "dataset.on_bad_record=skip",
        "model=identity",
        "progress=false",
    )
    metrics = run(cfg, run_dir=tmp_path / "run")
    assert metrics["run"]["n_samples"] == 1
    bad = {b["id"]: b for b in metrics["bad_records"]}
    assert set(bad) == {"no_text", "elsewhere"}
    assert bad["no_text"]["index"] == 1 and bad["no_text"]["field"] == "instruction"
    assert bad["elsewhere"]["index"] == 2 and bad["elsewhere"]["field"] == "category"
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["bad_records"] == metrics["bad_records"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Skipped dataset records (2)" in report and "field 'instruction'" in report
