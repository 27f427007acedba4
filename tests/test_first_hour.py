"""What a new user meets in the first hour (issue 9): resume with the run's own settings, Hydra's
errors as reedit's messages, no folders left by failed starts, the precomputed editor on reedit's
own run folders, empty selections, self-contained run folders, the tool's help, ignored gpus and
the sweep summary. Real subprocesses of ``python -m reedit`` where the command line is the point.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REAL_MODELS, reedit_env

from reedit.app import merge_overrides
from reedit.config import ConfigError
from reedit.data.base import DatasetError
from reedit.records import RecordStore
from reedit.run import run

PY = sys.executable
QUICK = ("dataset=demo", "limit=1", "progress=false")  # 5 samples, one per category


def reedit(*args: str, cwd: Path, module: str = "reedit") -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [PY, "-m", module, *args],
        cwd=cwd,
        env=reedit_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "ERROR" in line]


# -- 1. resume composes the run's own overrides -----------------------------------------------
def test_resume_composes_the_runs_saved_overrides(tmp_path):
    run_dir = tmp_path / "run"
    first = reedit(*QUICK, "model=identity", "stages=[edit]", f"run_dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # No dataset= here: the defaults (dataset=re_edit) would try the hub and exit 2.
    again = reedit(f"run_dir={run_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "edit: nothing to do (5 samples done)" in again.stderr
    assert "with its saved overrides: dataset=demo limit=1" in again.stderr
    # Given overrides apply on top: the report stage is added, the rest stays the run's.
    more = reedit(f"run_dir={run_dir}", "stages=[edit,report]", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["stages"]["edit"]["ok"] == 5
    (latest,) = sorted(run_dir.glob(".hydra/resume-*/overrides.yaml"))[-1:]
    saved = latest.read_text()
    assert "dataset=demo" in saved and "stages=[edit,report]" in saved


def test_a_refused_resume_names_the_changed_keys_and_is_not_carried_forward(tmp_path):
    run_dir = tmp_path / "run"
    args = (*QUICK, "model=tiny_flux2", "model.num_inference_steps=2", "stages=[edit]")
    first = reedit(*args, f"run_dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    refused = reedit(f"run_dir={run_dir}", "model.num_inference_steps=3", "seed=5", cwd=tmp_path)
    assert refused.returncode == 2
    (line,) = errors(refused)
    assert "model.num_inference_steps: 2 \u2192 3" in line and "seed: 0 \u2192 5" in line
    assert "fresh=[edit]" in line
    assert not list(run_dir.glob(".hydra/resume-*"))  # the refused invocation left no trace
    # ... so the next plain resume composes the run's settings again, not the refused ones.
    again = reedit(f"run_dir={run_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "edit: nothing to do" in again.stderr


def test_one_shot_keys_are_not_carried_and_given_keys_replace_saved_ones():
    saved = ["dataset=demo", "+model.negative_prompt=x", "fresh=[judge]", "retry_errors=true"]
    given = ["run_dir=/r", "model.negative_prompt=y", "dataset=folder"]
    assert merge_overrides(saved, given) == [
        "run_dir=/r",
        "+model.negative_prompt=y",  # the key is not in the YAMLs: it keeps the saved +
        "dataset=folder",
    ]
    assert merge_overrides(["vlm@judge.vlm=openai"], ["vlm@judge.vlm=qwen3_vl"]) == [
        "vlm@judge.vlm=qwen3_vl"
    ]


# -- 2. Hydra-level errors are reedit's messages ----------------------------------------------
@pytest.mark.parametrize(
    "args,expected",
    [
        (("seed=abc",), "seed=abc: Value 'abc' of type 'str' could not be converted to Integer"),
        (("model=identiy",), "Did you mean 'model=identity'?"),
        (("model.num_inference_step=3",), "not a setting of reedit.models.editors.identity"),
        (("modle=identity",), "Did you mean 'model'?"),
        (
            ("+experiment=demo", "judge.vlm.temprature=1"),
            "Did you mean 'judge.vlm.temperature'?",
        ),
        (("+experiment=demo", "+judge.vlm.temperatur=0.1"), "Did you mean 'judge.vlm.temperature'"),
        (("gpus=[0,1",), "gpus=[0,1: not a valid override"),
    ],
)
def test_configuration_errors_are_one_paragraph_exit_2_before_anything_runs(
    tmp_path, args, expected
):
    proc = reedit(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "loading" not in proc.stderr and not (tmp_path / "outputs").exists()


# -- 3. precomputed reads reedit's own run folders and plain folders --------------------------
def test_precomputed_evaluates_another_runs_images(compose, tmp_path):
    first = tmp_path / "first"
    run(compose(*QUICK, "model=tiny_flux2", "stages=[edit,report]"), run_dir=first)
    primaries = sorted(first.glob("images/*/*/primary.png"))
    assert len(primaries) == 5
    again = tmp_path / "again"
    metrics = run(
        compose(*QUICK, "model=precomputed", f"model.images_dir={first}", "stages=[edit,report]"),
        run_dir=again,
    )
    assert metrics["stages"]["edit"]["ok"] == 5
    for p in primaries:
        assert (again / p.relative_to(first)).read_bytes() == p.read_bytes()
    # The run folder has no refined images: each sample is an error record naming the file.
    refined = tmp_path / "refined"
    cfg = compose(
        *QUICK,
        "model=precomputed",
        f"model.images_dir={first}",
        "model.image=refined",
        "stages=[edit]",
        "max_error_rate=1",
    )
    run(cfg, run_dir=refined)
    records = RecordStore(refined, "edit").load()
    assert len(records) == 5 and all(r["status"] == "error" for r in records.values())
    assert all("refined.png does not exist" in r["error"] for r in records.values())


def test_precomputed_reads_a_plain_folder_nested_or_flat(compose, tmp_path):
    first = tmp_path / "first"
    run(compose(*QUICK, "model=tiny_flux2", "stages=[edit]"), run_dir=first)
    nested, flat = tmp_path / "nested", tmp_path / "flat"
    for p in first.glob("images/*/*/primary.png"):
        category, sample_id = p.parent.parent.name, p.parent.name
        (nested / category).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, nested / category / f"{sample_id}.png")
        flat.mkdir(exist_ok=True)
        shutil.copy(p, flat / f"{sample_id}.png")
    for folder in (nested, flat):
        out = tmp_path / f"run_{folder.name}"
        cfg = compose(*QUICK, "model=precomputed", f"model.images_dir={folder}", "stages=[edit]")
        run(cfg, run_dir=out)
        images = sorted(out.glob("images/*/*/primary.png"))
        assert len(images) == 5
        assert [p.read_bytes() for p in images] == [
            (first / p.relative_to(out)).read_bytes() for p in images
        ]


# -- 5. an empty selection is an error --------------------------------------------------------
def test_an_empty_dataset_is_an_error(compose, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "samples.jsonl").write_text("")
    cfg = compose("dataset=folder", f"dataset.root={tmp_path / 'data'}", "progress=false")
    with pytest.raises(DatasetError, match="the dataset holds no samples"):
        run(cfg, run_dir=tmp_path / "run")


def test_categories_that_select_nothing_are_an_error_exit_2(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    from PIL import Image

    Image.new("RGB", (16, 16), "red").save(data / "a.png")
    line = {"image": "a.png", "instruction": "x", "category": "causal"}
    (data / "samples.jsonl").write_text(json.dumps(line) + "\n")
    proc = reedit("dataset=folder", f"dataset.root={data}", "categories=[physical]", cwd=tmp_path)
    assert proc.returncode == 2
    (message,) = errors(proc)
    assert "categories=['physical'] select none of the 1 samples" in message
    assert "(it has: causal 1)" in message
    assert not (tmp_path / "outputs").exists()


# -- 7. the run folder is self-contained ------------------------------------------------------
@pytest.mark.parametrize("how", ["link", "copy"])
def test_a_run_folder_holds_its_sources_and_only_relative_paths(compose, tmp_path, how):
    folder = tmp_path / "run"
    cfg = compose(*REAL_MODELS, "limit=1", "refiner=scripted", f"sources={how}")
    run(cfg, run_dir=folder)
    cache = Path(os.environ["REEDIT_CACHE"])
    sources = sorted(folder.glob("sources/*/*.png"))
    assert len(sources) == 5
    linked = [s.stat().st_nlink > 1 for s in sources]
    assert all(linked) if how == "link" else not any(linked)
    for path in [*folder.glob("records/*.jsonl"), folder / "samples.csv"]:
        text = path.read_text()
        assert str(tmp_path) not in text and str(cache) not in text, path
    with (folder / "samples.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert all((folder / r["source_image"]).is_file() for r in rows)
    images = [k for k in rows[0] if k.endswith("_image") and k != "source_image"]
    assert len(images) == 2  # primary and round 1's refined image
    assert all((folder / r[k]).is_file() for r in rows for k in images)
    # Moved elsewhere, the folder still reports from itself alone.
    moved = tmp_path / "moved"
    folder.rename(moved)
    report = run(compose(*REAL_MODELS, "limit=1", "refiner=scripted", "stages=[report]"), moved)
    assert report["stages"]["judge"]["ok"] == report["stages"]["judge"]["total"] > 0


# -- 11. the tool's help ----------------------------------------------------------------------
def test_the_tool_help_says_what_it_needs_and_writes(tmp_path):
    proc = reedit("--help", cwd=tmp_path, module="reedit.editrefine")
    assert proc.returncode == 0
    text = proc.stdout
    assert "powered by Hydra" not in text and "== Configuration groups ==" not in text
    for needed in ("image=<file>", 'instruction="<text>"', "primary.png", "critique.json"):
        assert needed in text
    assert "python -m reedit.editrefine +experiment=demo image=" in text
    assert "refiner " in text and "tiny_qwen25_vl_refiner" in text  # options listed by group
    assert "dataset:" not in text and "logger" not in text  # groups the tool does not use


# -- 13. ignored gpus are said; a sweep ends with a summary -----------------------------------
def test_gpus_that_no_model_uses_are_said_to_be_ignored(compose, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        run(compose(*QUICK, "model=identity", "stages=[edit]", "gpus=[0,1]"), run_dir=tmp_path)
    (warning,) = [r.getMessage() for r in caplog.records if "gpus" in r.getMessage()]
    assert "gpus=[0, 1] is ignored" in warning and "model (IdentityEditor)" in warning


def test_a_sweep_goes_on_after_a_failed_job_and_ends_with_one_line_per_job(tmp_path):
    proc = reedit("-m", *QUICK, "stages=[edit,report]", "model=identity,precomputed", cwd=tmp_path)
    assert proc.returncode == 2  # a job failed
    (jobs_file,) = tmp_path.glob("multirun/*/*/jobs.jsonl")
    jobs = [json.loads(x) for x in jobs_file.read_text().splitlines()]
    assert [(j["num"], j["status"]) for j in jobs] == [(0, "ok"), (1, "error")]
    assert "model.images_dir must be set" in jobs[1]["error"]
    summary = proc.stderr[proc.stderr.index("sweep: 2 jobs, 1 failed") :]
    assert "#0 ok" in summary and "edit 5/5 ok" in summary and jobs[0]["run_dir"] in summary
    assert "#1 error" in summary and "model.images_dir must be set" in summary
    assert (Path(jobs[0]["run_dir"]) / "metrics.json").is_file()


def test_an_unknown_option_in_a_sweep_is_a_message_too(tmp_path):
    proc = reedit("-m", *QUICK, "stages=[edit]", "model=identity,identiy", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if "identiy" in x]
    assert "Did you mean 'model=identity'?" in line


def test_setup_reports_a_missing_value_and_a_bad_value_together(compose):
    from reedit.run import setup

    with pytest.raises(ConfigError, match=r"^3 problems in the configuration: ") as err:
        setup(compose("model=precomputed", "refine.rounds=0", "sources=symlink"))
    text = str(err.value)
    assert text.startswith("3 problems")
    assert "refine.rounds must be >= 1" in text and "model.images_dir must be set" in text
    assert "sources must be one of link, copy" in text
