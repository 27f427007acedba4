"""``hydra/launcher=gpu_pool``: a real multirun through the real plugin, its jobs real
``python -m reedit`` subprocesses sharing a pool of made-up device ids on this CPU machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import TEST_CONF, reedit_env

JOB = ("dataset=demo", "model=slow_identity", "limit=1", "categories=[physical]")
JOB += ("refiner=none", "judge=none", "progress=false")


def sweep(
    tmp_path: Path, *overrides: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, list[dict]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "reedit", "-m", f"hydra.searchpath=[{TEST_CONF}]", *JOB]
        + ["hydra/launcher=gpu_pool", f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=reedit_env(**(env or {})),
        timeout=600,
    )
    jobs_file = tmp_path / "sweep" / "jobs.jsonl"
    jobs = (
        [json.loads(x) for x in jobs_file.read_text().splitlines()] if jobs_file.is_file() else []
    )
    return proc, sorted(jobs, key=lambda j: j["num"])


def edit_record(job: dict) -> dict:
    return json.loads((Path(job["run_dir"]) / "records" / "edit.jsonl").read_text().splitlines()[0])


def test_four_jobs_on_a_pool_of_two_run_two_at_a_time_each_on_its_own_device(tmp_path):
    proc, jobs = sweep(tmp_path, "model.delay=1.0", "seed=1,2,3,4", "hydra.launcher.pool=[7,9]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [j["status"] for j in jobs] == ["ok"] * 4 and "sweep: 4 jobs, 0 failed" in proc.stderr
    spans = [(j["started"], j["ended"]) for j in jobs]
    at_once = [sum(start <= t < end for start, end in spans) for t, _ in spans]
    assert max(at_once) == 2  # two ran together, never more than the pool holds
    first_end = min(e for _, e in spans)
    assert sum(start >= first_end - 0.05 for start, _ in spans) == 2  # two queued for a device
    for job in jobs:
        info = edit_record(job)["info"]
        assert info["cuda_visible_devices"] == job["gpus"][0] and info["gpus"] == [0]
        assert Path(job["log"]).is_file() and Path(job["log"]).parent == Path(job["run_dir"])
    overlapping = [(a, b) for a in jobs for b in jobs if a["num"] < b["num"]]
    for a, b in overlapping:  # jobs that ran at the same time had different devices
        if a["started"] < b["ended"] and b["started"] < a["ended"]:
            assert a["gpus"] != b["gpus"]


def test_a_failing_job_is_reported_the_others_finish_and_the_sweep_exits_non_zero(tmp_path):
    (tmp_path / "fail.txt").write_text("00000_physical_easy\n")
    proc, jobs = sweep(
        tmp_path,
        f"model.fail_file={tmp_path / 'nothing.txt'},{tmp_path / 'fail.txt'},null",
        "max_error_rate=0.0",
        "hydra.launcher.pool=[0,1]",
        "hydra.launcher.gpus_per_job=2",
    )
    assert proc.returncode == 2
    assert [j["status"] for j in jobs] == ["ok", "error", "ok"]
    assert (
        "scripted failure" in (Path(jobs[1]["log"]).read_text()) or "error rate" in jobs[1]["error"]
    )
    assert "sweep: 3 jobs, 1 failed" in proc.stderr and "#1 error" in proc.stderr
    assert all(j["gpus"] == ["0", "1"] for j in jobs)  # one set of two: one job at a time


def test_a_job_with_a_bad_setting_is_its_error_and_one_that_cannot_start_a_failure(tmp_path):
    proc, jobs = sweep(tmp_path, "model.delay=0,nonsense", "hydra.launcher.pool=[0]")
    assert proc.returncode == 2
    assert [j["status"] for j in jobs] == ["ok", "error"] and "model.delay" in jobs[1]["error"]
    proc, jobs = sweep(
        tmp_path / "b", "hydra.launcher.python=/nowhere/python", "hydra.launcher.pool=[0]"
    )
    assert proc.returncode == 2
    (job,) = jobs
    assert (
        job["status"] == "failed" and "cannot start" in job["error"] and "/nowhere" in job["error"]
    )


def test_a_pool_the_jobs_cannot_share_is_refused_naming_the_key(tmp_path):
    proc, jobs = sweep(
        tmp_path, "seed=1,2", "hydra.launcher.pool=[0,1,2]", "hydra.launcher.gpus_per_job=2"
    )
    assert proc.returncode != 0 and not jobs
    assert "hydra.launcher.gpus_per_job=2 does not divide the pool of 3" in proc.stderr


def test_an_empty_pool_is_the_visible_devices(tmp_path):
    proc, jobs = sweep(tmp_path, "seed=1,2", env={"CUDA_VISIBLE_DEVICES": "4,5"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(j["gpus"] for j in jobs) == [["4"], ["5"]]
    proc, jobs = sweep(tmp_path / "none", "seed=1", env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 2 and "hydra.launcher.pool is empty" in proc.stderr


def test_the_compare_editors_example_runs_on_the_cpu_through_the_pool(tmp_path):
    """multirun_examples/compare_editors.sh as its header says to run it on a CPU."""
    from conftest import ROOT

    env = reedit_env(
        MODELS="tiny_qwen_image_edit,identity",
        PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin",
    )
    proc = subprocess.run(
        ["bash", str(ROOT / "multirun_examples" / "compare_editors.sh"), "+experiment=demo"]
        + ["executor=identity", "refiner=none", "judge=none", "limit=1", "progress=false"]
        + ["hydra.launcher.cpu=true", "hydra.launcher.pool=[a,b]"]
        + [f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = [json.loads(x) for x in (tmp_path / "sweep" / "jobs.jsonl").read_text().splitlines()]
    assert sorted(Path(j["run_dir"]).name for j in jobs) == ["0_tiny_qwen_image_edit", "1_identity"]
    for job in jobs:
        assert job["status"] == "ok" and (Path(job["run_dir"]) / "metrics.json").is_file()
        metrics = json.loads((Path(job["run_dir"]) / "metrics.json").read_text())
        assert metrics["stages"]["edit"]["ok"] == 5


def test_job_folders_named_by_their_overrides_reach_the_jobs_whole(tmp_path):
    """A subdir of override_dirname holds '=' and ',': the job gets it quoted, as one value."""
    proc, jobs = sweep(
        tmp_path,
        "seed=1,2",
        "hydra.launcher.pool=[0,1]",
        "hydra.sweep.subdir=${hydra.job.override_dirname}",
        "hydra.job.config.override_dirname.exclude_keys=[dataset,model,limit,categories,refiner,judge,progress]",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(Path(j["run_dir"]).name for j in jobs) == ["seed=1", "seed=2"]
    assert all((Path(j["run_dir"]) / "records" / "edit.jsonl").is_file() for j in jobs)
