"""`python -m reedit` in a subprocess: the run folder, a no-op resume, user errors, the demo (a run
killed and resumed: tests/faults)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TEST_CONF, TESTS, reedit_env
from digest import assert_same, digest

PY = sys.executable


def reedit(*args: str, cwd: Path, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [PY, "-m", "reedit", *args],
        cwd=cwd,
        env=reedit_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **popen,
    )


def test_demo_run_folder_and_noop_resume(tmp_path):
    args = ("dataset=demo", "model=identity", "refiner=none", "judge=none")
    first = reedit(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    runs = list((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 1
    run_dir = runs[0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", run_dir.parent.name)
    assert re.fullmatch(r"\d{2}-\d{2}-\d{2}-\d{6}_identity", run_dir.name)
    for name in (
        ".hydra/config.yaml",
        "reedit.log",
        "records/edit.jsonl",
        "metrics.json",
        "samples.csv",
        "report.md",
    ):
        assert (run_dir / name).is_file(), name
    assert len(list((run_dir / "images").glob("*/*/primary.png"))) == 10
    edit_records = (run_dir / "records" / "edit.jsonl").read_bytes()
    original_config = (run_dir / ".hydra" / "config.yaml").read_bytes()

    again = reedit(*args, f"run_dir={run_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (run_dir / "records" / "edit.jsonl").read_bytes() == edit_records
    assert list((tmp_path / "outputs").glob("*/*")) == [run_dir]  # no second folder
    log = (run_dir / "reedit.log").read_text()
    assert log.count("loading editor") == 1  # the first run only
    assert "edit: nothing to do (10 samples done)" in log
    assert (run_dir / ".hydra" / "config.yaml").read_bytes() == original_config
    assert len(list((run_dir / ".hydra").glob("resume-*/config.yaml"))) == 1


def test_multirun_folders(tmp_path):
    out = reedit(
        "-m",
        "dataset=demo",
        "model=identity",
        "seed=1,2",
        "limit=1",
        "progress=false",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    jobs = sorted(p for p in (tmp_path / "multirun").glob("*/*/*") if p.is_dir())
    assert [j.name for j in jobs] == ["0_identity", "1_identity"]
    for job in jobs:
        assert (job / "metrics.json").is_file()


# ------------------------------------------------------------------------------ SIGKILL + resume
FULL = (
    f"hydra.searchpath=[{TEST_CONF}]",
    "dataset=demo",
    "model=slow_identity",
    "model.delay=0.12",
    "executor=slow_identity",
    "refiner=scripted",
    "judge=scripted",
    "judge.vlm.delay=0.04",
    "report.bootstrap=200",
    "progress=false",
)


def lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


@pytest.mark.parametrize(
    "override,message",
    [
        ("categories=[physcal]", "Did you mean 'physical'"),
        ("dataset.path=/no/such/RE-Edit.json", "dataset.path: no such file"),
        ("refine.mode=parallel", "refine.mode must be"),
    ],
)
def test_user_errors_exit_2_with_a_message_and_no_traceback(tmp_path, override, message):
    proc = reedit("dataset=demo", override, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count(message) == 1
    # a start that failed before recording anything leaves no run folder behind
    assert not (tmp_path / "outputs").exists()


def test_full_pipeline_run_folder(tmp_path):
    run_dir = tmp_path / "run"
    proc = reedit(
        f"hydra.searchpath=[{TEST_CONF}]",
        "dataset=demo",
        "model=identity",
        "refiner=scripted",
        "judge=scripted",
        f"run_dir={run_dir}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    for label in ("primary", "refined"):
        assert len(list((run_dir / "images").glob(f"*/*/{label}.png"))) == 10
    for stage, n in (("edit", 10), ("analyze", 10), ("refine", 10), ("judge", 60)):
        assert lines(run_dir / "records" / f"{stage}.jsonl") == n
    metrics = json.loads((run_dir / "metrics.json").read_text())
    verdict = metrics["scores"]["overall"]["verdict"]
    assert verdict["primary"]["judged"] == verdict["refined"]["judged"] == 10
    assert set(metrics["scores"]["categories"]) == {
        "physical",
        "environmental",
        "cultural",
        "causal",
        "referential",
    }
    report = (run_dir / "report.md").read_text()
    assert "| primary |" in report and "| refined |" in report and "## Judge health" in report
    assert "edit: 10 ok" in proc.stderr  # the console summary


def test_demo_experiment_runs_and_its_numbers_follow_the_editor(tmp_path):
    """The demo's trained tiny refiner and judge read real model output through every parser,
    and score the random-weight editor's noise low and the identity editor's pictures high."""
    # the first run may build and train the tiny models (~90 s on 2 cores)
    views = ("report.plots=false", "report.html=false")  # not read here (tests/test_report.py)
    proc = reedit("+experiment=demo", *views, cwd=tmp_path / "tiny", timeout=600)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "tiny" / "outputs").glob("*/*")
    assert proc.stderr.count("DEMO:") == 2  # at the start and at the end
    assert "DEMO:" in (run_dir / "report.md").read_text()
    expected = json.loads((TESTS / "data" / "demo_expected.json").read_text())
    assert_same(digest(run_dir), expected["+experiment=demo"], run_dir)
    noise = json.loads((run_dir / "metrics.json").read_text())
    assert noise["stages"]["edit"]["ok"] == 10
    assert noise["stages"]["analyze"]["ok"] >= 9  # tagged critiques from a real model
    assert noise["stages"]["refine"]["ok"] == noise["stages"]["analyze"]["ok"]
    assert noise["stages"]["judge"]["unscored"] <= 1

    proc = reedit(
        "+experiment=demo", "model=identity", *views, cwd=tmp_path / "identity", timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "identity" / "outputs").glob("*/*")
    assert_same(digest(run_dir), expected["+experiment=demo model=identity"], run_dir)
    kept = json.loads((run_dir / "metrics.json").read_text())
    assert kept["stages"]["judge"]["unscored"] <= 1
    tiny_yes = noise["scores"]["overall"]["verdict"]["primary"]["yes_rate"]
    kept_yes = kept["scores"]["overall"]["verdict"]["primary"]["yes_rate"]
    assert tiny_yes <= 10 and kept_yes >= 90, (tiny_yes, kept_yes)
    tiny_if = noise["scores"]["overall"]["if"]["by_label"]["primary"]["mean"]
    kept_if = kept["scores"]["overall"]["if"]["by_label"]["primary"]["mean"]
    assert tiny_if <= 2 and kept_if >= 7, (tiny_if, kept_if)


def test_the_demo_notice_suggests_a_contrast_that_keeps_every_picture(tmp_path):
    """The contrast the demo's notice suggests, run as written (on one sample per category):
    the identity editor keeps each source and the identity executor the primary image, so no
    picture is lost between the primary and the refined image."""
    import shlex

    import yaml

    notice = yaml.safe_load((ROOT / "conf" / "experiment" / "demo.yaml").read_text())["notice"]
    (command,) = re.findall(r"`python -m reedit ([^`]+)`", notice)
    args = shlex.split(command)
    assert "model=identity" in args and "executor=identity" in args
    proc = reedit(*args, "limit=1", "progress=false", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    verdict = metrics["scores"]["overall"]["verdict"]
    moves = metrics["scores"]["overall"]["transitions"]["refined"]
    assert moves["n"] == 5 and moves["regressed"]["count"] == 0
    assert moves["maintained"]["count"] == verdict["primary"]["yes"] >= 4
    assert verdict["refined"]["yes_rate"] == verdict["primary"]["yes_rate"]
    assert notice in (run_dir / "report.md").read_text()
