"""``python -m reedit.compare``: runs side by side. A real demo sweep of three tiny models (the
sweep compares itself at its end: every file, and numbers equal to each run's own metrics.json;
the W&B Report object of it, built without saving), and scripted runs for the paired tests, a
judge that differs (refused, or compared when told), a failed job (marked missing) and the
command line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEMO_SWEEP_MODELS as MODELS
from conftest import SCRIPTED, reedit_env

from reedit.config import ReeditError
from reedit.report.compare import ComparisonRefused, find_runs, make
from reedit.report.stats import mcnemar_exact, paired_bootstrap
from reedit.run import run

FILES = ("comparison.json", "comparison.csv", "comparison.md", "comparison.html", "comparison.tex")


@pytest.mark.walkthrough  # a real sweep of the demo (conftest.demo_sweep)
def test_a_sweep_compares_itself_and_the_numbers_are_each_runs_own(demo_sweep):
    for name in FILES:
        assert (demo_sweep / name).stat().st_size > 0, name
    plots = sorted(p.name for p in (demo_sweep / "plots").glob("*.png"))
    assert plots == [
        "dimensions_primary.png",
        "dimensions_refined.png",
        "radar_refined.png",
        "scores_primary.png",
        "scores_refined.png",
    ]
    c = json.loads((demo_sweep / "comparison.json").read_text())
    assert c["schema"] == "reedit.comparison/1" and c["labels"] == ["primary", "refined"]
    assert [r["name"] for r in c["runs"]] == list(MODELS)
    table = list(csv.DictReader((demo_sweep / "comparison.csv").open()))
    assert len(table) == 6  # a row per run and image
    for r in c["runs"]:
        own = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())["scores"]
        for label in c["labels"]:
            mine = r["scores"][label]
            for cat in c["categories"]:
                v = own["categories"][cat]["verdict"][label]
                assert mine["yes_rate"][cat] == v["yes_rate"] and mine["ci95"][cat] == v["ci95"]
            assert mine["yes_rate"]["overall"] == own["overall"]["verdict"][label]["yes_rate"]
            for k in ("if", "sc"):
                assert mine[k]["mean"] == own["overall"][k]["by_label"][label]["mean"]
            row = next(t for t in table if t["run"] == r["name"] and t["label"] == label)
            assert float(row["overall"]) == own["overall"]["verdict"][label]["yes_rate"]
    md = (demo_sweep / "comparison.md").read_text()
    assert "| identity | 100.0 |" in md  # the identity editor keeps the judged-yes scenes
    tex = (demo_sweep / "comparison.tex").read_text()
    assert r"\begin{tabular}" in tex and r"tiny\_flux2 + EditRefine" in tex
    assert tex.count(r"\\") == 1 + 6  # the header and a row per run and image
    html = (demo_sweep / "comparison.html").read_text()
    assert "Where the runs disagree" in html and "data:image/jpeg;base64," in html


@pytest.mark.walkthrough
def test_the_wandb_report_of_a_sweep_is_built_without_saving(demo_sweep, monkeypatch):
    import wandb_workspaces.reports.v2 as wr

    from reedit.tracking.wandb_report import build_report, publish, wandb_ids

    c = json.loads((demo_sweep / "comparison.json").read_text())
    ids = wandb_ids(c)
    assert sorted(ids) == sorted(MODELS) and all(len(i) == 8 for i in ids.values())
    report = build_report(c, project="reedit", entity="reedit-tests")
    assert isinstance(report, wr.Report) and report.title == "reedit comparison"
    (grid,) = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    (runset,) = grid.runsets
    assert runset.groupby == ["config.choices.model"]
    assert runset.filters.startswith('Metric("ID") in [')  # the compared runs, by W&B id
    assert all(f"'{i}'" in runset.filters for i in ids.values())
    bars = [p for p in grid.panels if isinstance(p, wr.BarPlot)]
    assert len(bars) == len(c["categories"]) + 1 + 2  # each dimension, overall, IF, SC
    assert bars[0].metrics == [
        f"{c['categories'][0]}/primary/yes_rate",
        f"{c['categories'][0]}/refined/yes_rate",
    ]
    assert any(isinstance(p, wr.RunComparer) for p in grid.panels)
    tables = [p for p in grid.panels if isinstance(p, wr.WeavePanelSummaryTable)]
    assert [t.table_name for t in tables] == ["samples"]
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(ReeditError, match="saved online only"):  # offline: nothing is sent
        publish(c, "reedit")


# ------------------------------------------------------------------------------ scripted runs
def _run(compose, folder: Path, *over: str) -> Path:
    run(compose(*SCRIPTED, "executor=identity", "report.bootstrap=200", *over), run_dir=folder)
    return folder


def _sweep(folder: Path, jobs: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "jobs.jsonl").write_text("".join(json.dumps(j) + "\n" for j in jobs))
    return folder


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """Two runs judged by the scripted judge (the source kept; tiny FLUX.2's noise), a third
    judged with another judge setting, and a sweep folder listing the first two and a failed
    job."""
    from conftest import compose_config

    tmp = tmp_path_factory.mktemp("scripted")
    a = _run(compose_config, tmp / "0_identity", "model=identity")
    b = _run(compose_config, tmp / "1_tiny_flux2", "model=tiny_flux2")
    other = _run(compose_config, tmp / "x_other", "model=identity", "judge.vlm.delay=0.001")
    sweep = _sweep(
        tmp / "sweep",
        [
            {"num": 0, "status": "ok", "run_dir": str(a), "overrides": ["model=identity"]},
            {"num": 1, "status": "ok", "run_dir": str(b), "overrides": ["model=tiny_flux2"]},
            {
                "num": 2,
                "status": "error",
                "run_dir": str(tmp / "2_broken"),
                "overrides": ["model=broken"],
                "error": "model: no such file",
            },
        ],
    )
    return {"a": a, "b": b, "other": other, "sweep": sweep, "tmp": tmp}


def test_a_failed_job_is_listed_as_missing_and_the_rest_compared(scripted, tmp_path):
    c, files = make([scripted["sweep"]], tmp_path)
    assert [(r["name"], r["status"]) for r in c["runs"]] == [
        ("identity", "ok"),
        ("tiny_flux2", "ok"),
        ("broken", "failed"),
    ]
    assert c["runs"][2]["error"] == "model: no such file" and not c["runs"][2]["scores"]
    md = (tmp_path / "comparison.md").read_text()
    assert "## Missing" in md and "- broken: model: no such file" in md
    assert "Missing runs (1)" in (tmp_path / "comparison.html").read_text()


def test_the_paired_tests_use_the_samples_both_runs_judged(scripted, tmp_path):
    from reedit.report.views import load_records

    c, _ = make([scripted["a"], scripted["b"]], tmp_path, n_boot=500)
    values = []
    for folder in (scripted["a"], scripted["b"]):
        judged = load_records(folder)["judge"]
        values.append({k: r.payload.value for k, r in judged.items() if r.ok})
    for p in c["pairwise"]:
        keys = sorted(
            k for k in values[0] if k.endswith(f"/{p['label']}/{p['metric']}") and k in values[1]
        )
        assert p["n"] == len(keys) > 0
        va, vb = ([v[k] for k in keys] for v in values)
        if p["metric"] == "dimension":
            only_a = sum(x == "yes" and y != "yes" for x, y in zip(va, vb))
            only_b = sum(y == "yes" and x != "yes" for x, y in zip(va, vb))
            assert (p["a_only_yes"], p["b_only_yes"]) == (only_a, only_b)
            assert p["p_value"] == mcnemar_exact(only_a, only_b)
        else:
            low = [[min(x) if isinstance(x, list) else x for x in v] for v in (va, vb)]
            expected = paired_bootstrap(*low, n_boot=500, seed=0)
            assert (p["diff"], p["ci95"], p["p_value"]) == (
                expected["diff"],
                expected["ci95"],
                expected["p_value"],
            )


def test_runs_of_different_judges_are_refused_unless_told(scripted, tmp_path):
    with pytest.raises(ComparisonRefused, match=r"different judges or judge settings") as err:
        make([scripted["a"], scripted["other"]], tmp_path)
    assert "--allow-mixed-judges" in str(err.value) and "judge fingerprint" in str(err.value)
    c, _ = make([scripted["a"], scripted["other"]], tmp_path, allow_mixed_judges=True)
    assert c["warnings"] and c["warnings"][0].startswith("mixed judges")
    assert "mixed judges" in (tmp_path / "comparison.html").read_text()


def test_two_runs_of_one_model_are_told_apart_by_their_overrides(scripted, tmp_path):
    a = str(scripted["a"])
    sweep = _sweep(
        tmp_path / "sweep",
        [
            {"num": 0, "status": "ok", "run_dir": a, "overrides": ["model=identity", "seed=1"]},
            {"num": 1, "status": "ok", "run_dir": a, "overrides": ["model=identity", "seed=2"]},
        ],
    )
    assert [r.name for r in find_runs([sweep])] == ["identity seed=1", "identity seed=2"]


def test_the_command_line_writes_the_comparison_or_says_why_not(scripted, tmp_path):
    def compare(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "reedit.compare", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=reedit_env(),
            timeout=300,
        )

    ok = compare(str(scripted["a"]), str(scripted["b"]), "--out", str(tmp_path / "out"))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert ok.stdout.strip() == str(tmp_path / "out" / "comparison.html")
    assert all((tmp_path / "out" / name).is_file() for name in FILES)
    refused = compare(str(scripted["a"]), str(scripted["other"]), "--out", str(tmp_path / "x"))
    assert refused.returncode == 2 and "different judges or judge settings" in refused.stderr
    assert not (tmp_path / "x").exists()
    nothing = compare(str(tmp_path / "nowhere"))
    assert nothing.returncode == 2 and "neither a run folder" in nothing.stderr


def test_a_sweep_rerun_into_its_folder_counts_each_job_once_at_its_last_outcome(scripted, tmp_path):
    a, b = str(scripted["a"]), str(scripted["b"])
    sweep = _sweep(
        tmp_path / "sweep",
        [
            {"num": 0, "status": "ok", "run_dir": a, "overrides": ["model=identity"]},
            {
                "num": 1,
                "status": "error",
                "run_dir": b,
                "overrides": ["model=tiny_flux2"],
                "error": "killed",
            },
            {"num": 0, "status": "ok", "run_dir": a, "overrides": ["model=identity"]},
            {"num": 1, "status": "ok", "run_dir": b, "overrides": ["model=tiny_flux2"]},
        ],
    )
    runs = find_runs([sweep])
    assert [(r.name, r.status) for r in runs] == [("identity", "ok"), ("tiny_flux2", "ok")]
    (sweep / "jobs.jsonl").write_text('{"num": 0, "status": "ok", "run_dir": "')  # cut short
    with pytest.raises(ComparisonRefused, match=r"jobs.jsonl, line 1: not JSON"):
        find_runs([sweep])


def test_runs_alike_in_every_way_get_distinct_names_and_a_moved_sweep_finds_its_runs(
    scripted, tmp_path
):
    import shutil

    one, two = tmp_path / "one", tmp_path / "two"
    for sweep in (one, two):
        shutil.copytree(scripted["a"], sweep / "0_identity")
        _sweep(
            sweep,
            [
                {
                    "num": 0,
                    "status": "ok",
                    "run_dir": "/gone/0_identity",
                    "overrides": ["model=identity"],
                }
            ],
        )
    runs = find_runs([one, two])
    assert [r.status for r in runs] == ["ok", "ok"]  # found beside jobs.jsonl
    assert [r.name for r in runs] == ["identity (0_identity)", "identity (0_identity) #2"]
    c, _ = make([one, two], tmp_path / "out")
    for p in [p for p in c["pairwise"] if p["metric"] == "dimension"]:  # a copy: all agree
        assert p["a"] != p["b"] and p["n"] == 10 and p["a_only_yes"] == p["b_only_yes"] == 0


def test_a_run_from_before_the_judge_fingerprint_is_compared_by_judge_model(scripted, tmp_path):
    """Without a fingerprint on one side, the judges are compared by what the records say:
    the judge model and prompt version (a judge setting that changed goes unseen, and the
    comparison says it compared by name only)."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(scripted["a"], old)
    m = json.loads((old / "metrics.json").read_text())
    del m["run"]["judge"]  # as written before this version
    (old / "metrics.json").write_text(json.dumps(m))
    for other in (scripted["b"], scripted["other"]):
        c, _ = make([old, other], tmp_path / other.name)
        assert any("predate the judge's fingerprint" in w for w in c["warnings"])
        assert not any(w.startswith("mixed judges") for w in c["warnings"])


def test_the_paired_tests_use_only_the_samples_of_each_runs_report(scripted, tmp_path):
    import csv as _csv
    import shutil

    small = tmp_path / "small"
    shutil.copytree(scripted["a"], small)
    rows = list(_csv.DictReader((small / "samples.csv").open()))
    with (small / "samples.csv").open("w", newline="") as fh:  # its report covers 4 samples
        writer = _csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[:4])
    c, _ = make([small, scripted["b"]], tmp_path / "out")
    assert {p["n"] for p in c["pairwise"]} == {4}
