"""Sweeps on Ray through hydra-ray-launcher (the ``ray`` extra), for real on this machine.

``hydra/launcher=ray_local``: the sweep's driver starts a local Ray instance (``ray.init``),
runs each job as a Ray task in a Ray worker process and stops Ray at the end.
``hydra/launcher=ray_cluster``: the driver joins a running cluster, here one that the test starts
with ``ray start --head`` (``RAY_ADDRESS``), as on a cluster node. Both are 2-job sweeps on the
CPU (``remote.num_gpus=0``: the presets give each job a GPU) with a small Ray (at most 2 CPUs,
100 MB object store)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import reedit_env
from omegaconf import OmegaConf

JOB = ["dataset=demo", "model=identity", "limit=1", "categories=[physical]", "refiner=none"]
JOB += ["judge=none", "progress=false", "seed=1,2"]
CPU = ["hydra.launcher.ray.remote.num_gpus=0"]  # the presets ask for one GPU per job
SMALL = {"num_cpus": 2, "object_store_memory": 100_000_000}
# Ray's prefix on a worker's forwarded output: "(_run_job pid=123)" (", ip=..." from another node)
WORKER_LINE = re.compile(r"^\(_run_job pid=(\d+)(?:, ip=[^)]*)?\) .*run folder: (\S+)$", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _env() -> dict[str, str]:
    """reedit's test environment, Ray quiet: no auth token in ~/.ray, no usage stats, every
    worker line forwarded (no de-duplication across workers)."""
    return reedit_env(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", RAY_DEDUP_LOGS="0")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_processes(temp_dir: Path) -> list[psutil.Process]:
    """The processes of the Ray instance whose files are under ``temp_dir``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(str(temp_dir) in arg for arg in proc.info["cmdline"] or ()):
                found.append(proc)
    return found


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """A short Ray temp folder: Ray's socket paths under it must stay below 107 characters."""
    path = Path(tempfile.mkdtemp(prefix="reedit-ray-"))
    yield path
    for proc in _ray_processes(path):  # a failed test's leftovers; only this instance's
        with contextlib.suppress(psutil.Error):
            proc.kill()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ray_head(ray_tmp: Path) -> Iterator[int]:
    """A running one-node Ray cluster (``ray start --head``, in its own process group): its
    port (``RAY_ADDRESS=127.0.0.1:<port>``). Its ports are free ones: parallel runs do not
    collide."""
    port = _free_port()
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head"]
    cmd += ["--node-ip-address=127.0.0.1", f"--port={port}", f"--temp-dir={ray_tmp}"]
    cmd += [f"--num-cpus={SMALL['num_cpus']}"]
    cmd += [f"--object-store-memory={SMALL['object_store_memory']}"]
    cmd += ["--include-dashboard=false", "--disable-usage-stats"]
    for option in ("ray-client-server-port", "dashboard-port", "dashboard-agent-listen-port"):
        cmd.append(f"--{option}={_free_port()}")
    head = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True
    )
    try:
        _, err = head.communicate(timeout=300)  # `ray start` returns once the node is up
        assert head.returncode == 0, err[-3000:]
        yield port
    finally:
        _kill_group(head.pid)  # the GCS, raylet and workers that `ray start` left running


def _sweep(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, int]:
    """Run ``python -m reedit -m JOB args`` in its own process group: exit code, stderr without
    colours, the driver's pid."""
    cmd = [sys.executable, "-m", "reedit", "-m", *JOB, *args]
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            _, err = proc.communicate(timeout=600)
        finally:
            _kill_group(proc.pid)  # nothing of the sweep outlives it, even on a timeout
    return proc.returncode, ANSI.sub("", err), proc.pid


def _assert_jobs_ran_in_ray_workers(sweep: Path, err: str, driver: int, ray_tmp: Path) -> None:
    """Both jobs' run folders, records and sweep summary exist, and each job ran in a Ray worker
    process of its own: Ray forwarded its lines under the worker's pid (not the driver's, not
    the other job's), and that worker's own log in the Ray instance's session folder holds
    them."""
    assert "Ray Launcher is launching 2 jobs" in err
    assert "sweep: 2 jobs, 0 failed" in err
    jobs = [json.loads(x) for x in (sweep / "jobs.jsonl").read_text().splitlines()]
    assert sorted(j["num"] for j in jobs) == [0, 1] and all(j["status"] == "ok" for j in jobs)
    folders = {j["num"]: sweep / f"{j['num']}_identity" for j in jobs}
    assert {Path(j["run_dir"]) for j in jobs} == set(folders.values())
    seeds = set()
    for num, folder in folders.items():
        record = json.loads((folder / "records" / "edit.jsonl").read_text().splitlines()[0])
        assert record["status"] == "ok" and (folder / "metrics.json").is_file()
        seeds.add(record["seed"])
        hydra = OmegaConf.load(folder / ".hydra" / "hydra.yaml").hydra
        assert hydra.job.id == f"job_id_for_{num}"  # the id the Ray launcher gives a job
    assert len(seeds) == 2  # two jobs, two seeds

    workers = {Path(folder): int(pid) for pid, folder in WORKER_LINE.findall(err)}
    assert set(workers) == set(folders.values()), err[-3000:]
    assert driver not in workers.values() and len(set(workers.values())) == 2
    logs = list(ray_tmp.glob("session_2*/logs/worker-*.err"))  # Ray's own per-worker logs
    for folder, pid in workers.items():
        mine = [p for p in logs if p.stem.endswith(f"-{pid}")]
        assert mine and f"run folder: {folder}" in mine[0].read_text(), (folder, pid, logs)


@pytest.mark.scale  # starting Ray takes 10-30 s on 2 cores: CI runs it with make test-scale
def test_a_sweep_on_a_local_ray_instance_runs_each_job_in_a_ray_worker(tmp_path, ray_tmp):
    # one CPU: the jobs run one after the other, each in a fresh worker (remote.max_calls=1)
    init = "hydra.launcher.ray.init"
    rc, err, driver = _sweep(
        ["hydra/launcher=ray_local", *CPU, f"{init}.num_cpus=1"]
        + [f"+{init}._temp_dir={ray_tmp}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        tmp_path,
        _env(),
    )
    assert rc == 0, err[-3000:]
    assert "Started a local Ray instance" in err
    _assert_jobs_ran_in_ray_workers(tmp_path / "sweep", err, driver, ray_tmp)
    # the instance ended with the sweep: none of its processes is left
    _, alive = psutil.wait_procs(_ray_processes(ray_tmp), timeout=60)
    assert not alive, [p.cmdline()[:2] for p in alive]


@pytest.mark.scale  # starting a cluster takes 15-25 s here: CI runs it with make test-scale
def test_a_sweep_joins_a_running_ray_cluster(tmp_path, ray_tmp, ray_head):
    env = _env()
    env["RAY_ADDRESS"] = f"127.0.0.1:{ray_head}"
    rc, err, driver = _sweep(
        ["hydra/launcher=ray_cluster", *CPU, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        tmp_path,
        env,
    )
    assert rc == 0, err[-3000:]
    assert re.search(rf"Connecting to existing Ray cluster at address: [\d.]+:{ray_head}\b", err)
    assert "Started a local Ray instance" not in err
    # the jobs ran in the cluster's workers, whose logs are in the head's session folder
    _assert_jobs_ran_in_ray_workers(tmp_path / "sweep", err, driver, ray_tmp)


def test_the_ray_presets_compose_over_hydra_ray_launcher(compose):
    local = compose("hydra/launcher=ray_local", return_hydra_config=True).hydra.launcher
    assert local._target_.endswith("hydra_ray_launcher.ray_launcher.RayLauncher")
    assert local.ray.init.address == "local" and local.ray.init.num_cpus is None
    assert local.ray.init.object_store_memory == 100_000_000
    remote = local.ray.remote
    assert (remote.num_gpus, remote.max_calls, remote.max_retries) == (1, 1, 0)
    cluster = compose("hydra/launcher=ray_cluster", return_hydra_config=True).hydra.launcher
    assert cluster.ray.init.address == "auto"
    # set, so that the launcher's 75 MB default (refused when joining a cluster) is not added
    assert (
        "object_store_memory" in cluster.ray.init and cluster.ray.init.object_store_memory is None
    )
    assert (cluster.ray.remote.num_gpus, cluster.ray.remote.max_calls) == (1, 1)
