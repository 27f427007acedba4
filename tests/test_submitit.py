"""Sweeps through hydra-submitit-launcher: ``submitit_local`` for real (the code path of
``submitit_slurm``: submitit pickles the job, runs it in its own process and collects the result),
and reedit's Slurm preset (``hydra/launcher=slurm``) composing over submitit's own config."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import reedit_env

JOB = ["dataset=demo", "model=identity", "limit=1", "categories=[physical]", "refiner=none"]
JOB += ["judge=none", "progress=false"]


def test_a_sweep_through_submitit_local_runs_every_job_and_summarises_them(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "reedit", "-m", *JOB, "seed=1,2", "hydra/launcher=submitit_local"]
        + [f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=reedit_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Submitit 'local' sweep" in proc.stderr and "sweep: 2 jobs, 0 failed" in proc.stderr
    jobs = [json.loads(x) for x in (tmp_path / "sweep" / "jobs.jsonl").read_text().splitlines()]
    assert sorted(j["num"] for j in jobs) == [0, 1] and all(j["status"] == "ok" for j in jobs)
    records = [tmp_path / "sweep" / f"{j['num']}_identity" / "records" / "edit.jsonl" for j in jobs]
    seeds = {json.loads(path.read_text().splitlines()[0])["seed"] for path in records}
    assert len(seeds) == 2  # two jobs, two different seeds
    assert list((tmp_path / "sweep" / ".submitit").iterdir())  # submitit's own job folders


def test_the_slurm_preset_composes_over_submitit_slurm(compose):
    cfg = compose(
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=2",
        return_hydra_config=True,
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("gpu", 2, 1)
    assert launcher.timeout_min == 720 and launcher.max_num_timeout == 0
