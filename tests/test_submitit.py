"""Sweeps through hydra-submitit-launcher: ``submitit_local`` for real (the code path of
``submitit_slurm``: submitit pickles the job, runs it in its own process and collects the result),
and reedit's Slurm preset (``hydra/launcher=slurm``) composing over submitit's own config."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
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


@pytest.mark.parametrize("nodes", [1, 2])
def test_the_slurm_preset_writes_an_sbatch_script_that_runs_the_pickled_job(
    compose, tmp_path, monkeypatch, nodes
):
    """The sbatch text submitit would submit for ``hydra/launcher=slurm``, built by submitit's own
    SlurmExecutor from the launcher's resolved parameters (as SlurmLauncher.launch passes them),
    without submitting anything. With ``nodes=2`` srun starts one task per node, each running
    the job: one run over both nodes (``machines.count=auto`` reads the step; test_machines.py
    runs that path through submitit's local executor)."""
    import os
    import shlex

    import submitit
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    srun = tmp_path / "bin" / "srun"  # submitit only checks that srun exists; never run here
    srun.parent.mkdir()
    srun.write_text("#!/bin/sh\necho 'srun stand-in: not a cluster' >&2\nexit 1\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{srun.parent}:{os.environ.get('PATH', '')}")
    sweep = tmp_path / "sweep"
    cfg = compose(
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=2",
        f"hydra.launcher.nodes={nodes}",
        f"hydra.sweep.dir={sweep}",
        return_hydra_config=True,
    )
    launcher = instantiate(cfg.hydra.launcher)  # the real SlurmLauncher, its params resolved
    params = dict(launcher.params)
    # SubmititLauncher.launch: the folder and max_num_timeout go to the executor, the queue's
    # shared keys keep their names, the others get the executor's prefix.
    executor = submitit.AutoExecutor(
        cluster="slurm",
        folder=params.pop("submitit_folder"),
        slurm_max_num_timeout=params.pop("max_num_timeout"),
    )
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()})
    slurm = executor._executor
    assert isinstance(slurm, submitit.SlurmExecutor)
    text = slurm._make_submission_file_text(slurm._submitit_command_str, "uid")

    flags = [line for line in text.splitlines() if line.startswith("#SBATCH ")]
    for flag in (
        "--partition=gpu",
        "--gpus-per-node=2",
        "--time=720",
        f"--nodes={nodes}",
        "--ntasks-per-node=1",
        "--cpus-per-task=8",
        "--mem=64GB",
    ):
        assert f"#SBATCH {flag}" in flags, (flag, flags)
    folder = sweep / ".submitit" / "%j"
    assert f"#SBATCH --output={folder}/%j_0_log.out" in flags
    assert f"#SBATCH --error={folder}/%j_0_log.err" in flags

    command = text.split("# command\n", 1)[1].strip().splitlines()
    assert command[0] == "export SUBMITIT_EXECUTOR=slurm"
    args = shlex.split(command[1])
    assert args[:2] == ["srun", "--unbuffered"]  # one task a node: one `python -m reedit` each
    runner = args[args.index("-u") - 1 :]
    # this interpreter (reedit, Hydra and the plugin installed) loads the job submitit pickled
    # into the job's folder (<folder>/<job id>_submitted.pkl: the launcher and the job's
    # overrides) and runs it
    assert runner == [sys.executable, "-u", "-m", "submitit.core._submit", str(folder)]
    paths = submitit.core.utils.JobPaths(folder, job_id="42")
    assert paths.submitted_pickle == sweep / ".submitit" / "42" / "42_submitted.pkl"
    assert not (sweep / ".submitit").exists() or not list((sweep / ".submitit").rglob("*.pkl"))
