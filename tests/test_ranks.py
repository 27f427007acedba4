"""Data-parallel ranks: ``gpus=[...]`` (or ``cpu_ranks=N`` on a CPU) runs N processes started by
``accelerate launch`` in one run folder, claiming chunks of pending units from a shared counter.

The fast tests check the layout rules at set-up and one real two-rank run; the ``scale`` marker
(``make test-scale``, run by CI) holds the slower ones: 1, 2 and 3 ranks giving the same records,
images and metrics on the demo's real tiny pipelines, and a rank SIGKILLed mid-stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import reedit_env

from reedit.config import ConfigError
from reedit.distributed import SOLO, Ranks
from reedit.models.component import physical_gpus
from reedit.run import rank_job, setup

QUICK = ["dataset=demo", "refiner=none", "judge=none", "progress=false", "executor=identity"]


def reedit(tmp_path: Path, *args: str, env: dict | None = None, timeout: float = 900):
    return subprocess.run(
        [sys.executable, "-m", "reedit", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env or reedit_env(),
        timeout=timeout,
    )


def records(folder: Path) -> dict[tuple[str, str], dict]:
    """Every unit record of a run, by (stage, key), without what differs run to run (times,
    judge-cache hits)."""
    out = {}
    for path in sorted((folder / "records").glob("*.jsonl")):
        stage = path.name.split(".")[0]
        if stage == "stages":
            continue
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            for k in ("time", "seconds", "cached"):
                rec.pop(k, None)
            assert (stage, rec["key"]) not in out, f"{rec['key']} recorded twice"
            out[stage, rec["key"]] = rec
    return out


def images(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.glob("images/**/*.png")}


def metrics(folder: Path, *drop: str) -> dict:
    """metrics.json without its timings, its folder and the keys ``drop``."""
    volatile = ("timing", "run_dir", *drop)

    def strip(node):
        if isinstance(node, dict):
            return {
                k: strip(v) for k, v in node.items() if "seconds" not in k and k not in volatile
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(json.loads((folder / "metrics.json").read_text()))


def stage_runs(folder: Path) -> list[dict]:
    lines = []
    for path in sorted((folder / "records").glob("stages*.jsonl")):
        lines += [json.loads(x) for x in path.read_text().splitlines()]
    return lines


# ----------------------------------------------------------------------------- set-up rules
@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=flux2_dev", "gpus=[0,1,1]"], r"gpus=\[0, 1, 1\]: GPU 1 is listed twice"),
        (["model=flux2_dev", "gpus=[-1]"], r"GPU ids are >= 0"),
        (["model=flux2_dev", "gpus=[0,1,2]", "gpus_per_replica=2"], r"gpus_per_replica=2 does"),
        (["model=flux2_dev", "gpus=[0,1]", "cpu_ranks=2"], r"cpu_ranks=2 is for CPU runs"),
        (["model=identity", "gpus_per_replica=2"], r"gpus_per_replica=2 needs gpus"),
        (["model=identity", "cpu_ranks=0"], r"cpu_ranks must be >= 1"),
        (["model=flux2_dev", "gpus=[0,1]", "gpus_per_replica=two"], r"gpus_per_replica must be"),
        (
            ["judge=qwen3_vl_vllm", "judge.vlm.tensor_parallel_size=2", "gpus=[0,1]"]
            + ["gpus_per_replica=1"],
            r"judge\.vlm needs 2 GPUs per copy, but each replica has 1",
        ),
        (
            ["model=omnigen2", "model.parallel=model", "gpus=[0,1]", "model.runtime.repo_path=/"],
            r"model\.parallel=model is not supported by OmniGen2Editor \(it supports data\)",
        ),
    ],
)
def test_gpu_layouts_that_cannot_work_fail_at_set_up_naming_the_key(compose, overrides, message):
    with pytest.raises(ConfigError, match=message):
        setup(compose(*overrides))


def test_a_gpu_id_this_machine_does_not_show_fails_at_set_up(compose, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,7")  # two GPUs visible: ids 0 and 1
    with pytest.raises(ConfigError, match=r"GPU 2 does not exist \(this machine shows 2 GPU"):
        setup(compose("model=flux2_dev", "gpus=[0,2]"))


@pytest.mark.parametrize(
    "overrides,world,replicas",
    [
        (["model=flux2_dev", "gpus=[0,1,2,3]"], 4, ((0,), (1,), (2,), (3,))),
        (  # FLUX.2-dev on 4 GPUs as 2 replicas of 2
            ["model=flux2_dev", "model.parallel=model", "gpus=[0,1,2,3]", "gpus_per_replica=2"],
            2,
            ((0, 1), (2, 3)),
        ),
        (["model=flux2_dev", "model.parallel=model", "gpus=[0,1]"], 1, ((0, 1),)),
        (  # a tensor-parallel judge sizes the replicas
            ["judge=qwen3_vl_vllm", "judge.vlm.tensor_parallel_size=2", "gpus=[0,1,2,3]"],
            2,
            ((0, 1), (2, 3)),
        ),
        (["model=identity", "gpus=[0,1]"], 1, ((0, 1),)),  # no model uses them: one process
        (["model=identity", "cpu_ranks=3"], 3, ()),
    ],
)
def test_the_ranks_follow_the_gpus_and_what_each_model_copy_needs(
    compose, overrides, world, replicas
):
    layout = setup(compose(*overrides)).layout
    assert (layout.world, layout.replicas) == (world, replicas)


def test_each_rank_is_given_its_replicas_physical_devices(compose, monkeypatch, tmp_path):
    """gpus count within what the process sees: under CUDA_VISIBLE_DEVICES=4,5,6,7 (a gpu_pool
    job), gpus=[0,1,2,3] as 2 replicas are devices 4,5 and 6,7; each rank's own config lists
    its replica's GPUs as it will see them (0, 1) and asks for no further ranks."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    cfg = compose("model=flux2_dev", "model.parallel=model", "gpus=[0,1,2,3]", "gpus_per_replica=2")
    job = rank_job(setup(cfg), tmp_path, [], {})
    assert job.world == 2 and job.replicas == [["4", "5"], ["6", "7"]]
    assert job.config["gpus"] == [0, 1] and job.config["gpus_per_replica"] is None
    assert job.config["cpu_ranks"] == 1 and job.config["run_dir"] == str(tmp_path)
    assert physical_gpus([1], {"CUDA_VISIBLE_DEVICES": "6,7"}) == ["7"]
    assert physical_gpus([1], {}) == ["1"]
    with pytest.raises(ValueError, match="shows 2 device"):
        physical_gpus([2], {"CUDA_VISIBLE_DEVICES": "6,7"})


def test_a_worker_is_pinned_to_the_devices_behind_its_gpus(monkeypatch):
    """A worker-runtime model started in a rank (or a gpu_pool job) that sees CUDA_VISIBLE_DEVICES=6
    gets device 6, not device 0 of the machine."""
    from reedit.runtime.workers import WorkerConfig, WorkerFailed, WorkerProcess

    seen = {}

    def popen(argv, **kwargs):
        seen.update(kwargs["env"])
        raise OSError("stop here")

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "6")
    monkeypatch.setattr(subprocess, "Popen", popen)
    worker = WorkerProcess(
        WorkerConfig.of({"kind": "worker", "python": sys.executable}, "m"), {}, [0]
    )
    with pytest.raises(WorkerFailed, match=r"^m: cannot start .*: stop here$"):  # stopped there
        worker.start()
    assert seen["CUDA_VISIBLE_DEVICES"] == "6"


def test_one_process_claims_every_chunk_in_order_every_time():
    for _ in range(2):  # runs in one process (tests, the EditRefine tool) share SOLO
        assert list(SOLO.claims("1/edit", 3)) == [0, 1, 2] and list(SOLO.claims("b", 0)) == []
    assert SOLO.primary and SOLO.world == 1


def test_ranks_claim_from_a_real_store_each_index_once():
    """Two claimers over one torch TCPStore (the rendezvous store's class), taking turns."""
    from torch.distributed import TCPStore

    from reedit.distributed import free_port

    port = free_port()
    master = TCPStore("127.0.0.1", port, 2, is_master=True, wait_for_workers=False)
    other = TCPStore("127.0.0.1", port, 2, is_master=False)
    a, b = Ranks(0, 2, master).claims("k", 5), Ranks(1, 2, other).claims("k", 5)
    taken = [next(a), next(b), next(b), next(a), next(a)]
    assert taken == [0, 1, 2, 3, 4] and list(a) == [] and list(b) == []


# ------------------------------------------------------------------------------ real ranks
def test_two_cpu_ranks_share_one_run_folder_and_give_one_ranks_results(tmp_path):
    """Two real ranks (two processes besides this one, started by accelerate launch) edit the
    demo's samples in one folder: each unit recorded once, the report that of one process."""
    args = [*QUICK, "model=busy_cpu", "model.work=300000", "model.skew=10"]
    one = reedit(tmp_path, *args, f"run_dir={tmp_path / 'one'}")
    assert one.returncode == 0, one.stderr[-3000:]
    two = reedit(tmp_path, *args, "cpu_ranks=2", f"run_dir={tmp_path / 'two'}")
    assert two.returncode == 0, two.stderr[-3000:]
    folder = tmp_path / "two"
    assert "starting 2 ranks (CPU)" in two.stderr
    outcomes = [json.loads((folder / "ranks" / f"rank{k}.json").read_text()) for k in (0, 1)]
    assert [o["status"] for o in outcomes] == ["ok", "ok"]
    pids = {o["pid"] for o in outcomes}
    assert len(pids) == 2  # two processes, neither of them the launching one (it has exited)
    runs = [r for r in stage_runs(folder) if r["stage"] == "edit"]
    assert {r["rank"] for r in runs} <= {0, 1} and {r["pid"] for r in runs} <= pids
    assert sum(r["done"] for r in runs) == 10 and all(r["busy_seconds"] > 0 for r in runs)
    by_rank = {p.name for p in (folder / "records").glob("edit.rank*.jsonl")}
    assert by_rank <= {"edit.rank0.jsonl", "edit.rank1.jsonl"} and by_rank
    assert not (folder / "records" / "edit.jsonl").exists()
    assert records(folder) == records(tmp_path / "one") and len(records(folder)) == 10
    assert metrics(folder) == metrics(tmp_path / "one")
    assert images(folder) == images(tmp_path / "one")
    assert not (folder / "ranks" / "job.pkl").exists()  # the job file goes once the ranks end
    # a resume of the finished run: every rank finds nothing to do, none loads a model
    again = reedit(tmp_path, "cpu_ranks=2", f"run_dir={folder}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "edit: nothing to do (10 samples done)" in again.stderr
    assert "loading editor" not in again.stderr
    assert len(stage_runs(folder)) == len(runs)


# ------------------------------------------------------------------- the demo on 1, 2, 3 ranks
DEMO = ["+experiment=demo", "limit=1", "progress=false"]


@pytest.fixture(scope="module")
def one_rank(tmp_path_factory):
    """The demo (its real tiny Qwen-Image-Edit, FLUX.2, Qwen2.5-VL and Qwen3-VL) on 5 samples,
    in one process with one thread: what every rank count must reproduce (torch's CPU kernels
    can differ in the last bit with the thread count; the ranks run one thread each here)."""
    tmp = tmp_path_factory.mktemp("one_rank")
    proc = reedit(tmp, *DEMO, f"run_dir={tmp / 'run'}", env=reedit_env(OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "run"


@pytest.mark.scale
@pytest.mark.parametrize("world", [2, 3])
def test_two_and_three_ranks_give_the_records_images_and_metrics_of_one(tmp_path, one_rank, world):
    proc = reedit(tmp_path, *DEMO, f"cpu_ranks={world}", f"run_dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "run"
    mine = records(folder)
    assert len(mine) == 5 + 5 + 5 + 30  # edit, analyze r1, refine r1, judge (2 images x 6)
    assert mine == records(one_rank)
    assert images(folder) == images(one_rank) and len(images(folder)) == 10
    assert metrics(folder) == metrics(one_rank)
    runs = stage_runs(folder)
    pids = {r["pid"] for r in runs}
    assert {r["rank"] for r in runs} <= set(range(world)) and len(pids) <= world
    assert (
        len({json.loads(p.read_text())["pid"] for p in (folder / "ranks").glob("*.json")}) == world
    )
    loads = [r for r in runs if r["stage"] == "edit" and r["load_seconds"] > 0]
    assert len(loads) == len({r["rank"] for r in runs if r["stage"] == "edit"})  # once per rank


def _wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.scale
def test_a_rank_killed_mid_stage_fails_the_run_and_a_rerun_completes_it(tmp_path, one_rank):
    folder = tmp_path / "run"
    cmd = [sys.executable, "-m", "reedit", *DEMO, "cpu_ranks=2", f"run_dir={folder}"]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=reedit_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        edits = folder / "records" / "edit.rank1.jsonl"
        _wait_for(lambda: edits.is_file() and edits.read_text().count("\n") >= 1, 600, "edits")
        pids = {
            k: json.loads((folder / "ranks" / f"rank{k}.json").read_text())["pid"] for k in (0, 1)
        }
        os.kill(pids[1], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)  # no hang: the launch ends on its own
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err[-3000:]
    assert "rank 1 ended without finishing (killed" in err
    assert f"rerun with run_dir={folder}" in err
    _wait_for(lambda: not _alive(pids[0]), 30, "rank 0 to stop")  # the other rank is stopped
    done = records(folder)
    assert 1 <= len([k for k in done if k[0] == "edit"]) < 5  # part of the stage is kept
    rerun = reedit(tmp_path, "cpu_ranks=2", f"run_dir={folder}")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert records(folder) == records(one_rank)
    assert images(folder) == images(one_rank)
    # the same metrics; only the stages' execution counts say that it took two runs
    assert metrics(folder, "executions") == metrics(one_rank, "executions")
    assert metrics(folder)["stages"]["edit"]["executions"] == 2


def test_parallel_model_spreads_one_copy_over_the_listed_gpus_only(compose, monkeypatch):
    """gpus=[2,3] with parallel=model: diffusers' balanced device map is given those two GPUs'
    free memory, so it places nothing on GPUs 0 and 1. No GPU exists here: torch's CUDA answers
    are stood in for, and the pipeline loads on the CPU where the device map would place it."""
    import torch

    from reedit.config import build, spec_of
    from reedit.testing import locate

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda g: (10_000 + g, 20_000))
    cfg = compose("model=tiny_flux2", "model.parallel=model", "gpus=[2,3]")
    editor = build(spec_of(cfg.model, "model"), gpus=[2, 3], locate=locate)
    seen = {}
    real = type(editor).load_pipeline

    def load_pipeline(self, cls, path, kwargs):
        seen.update(kwargs)
        rest = {k: v for k, v in kwargs.items() if k not in ("device_map", "max_memory")}
        return real(self, cls, path, rest)

    monkeypatch.setattr(type(editor), "load_pipeline", load_pipeline)
    editor.load()
    assert seen["device_map"] == "balanced" and seen["max_memory"] == {2: 10_002, 3: 10_003}


def test_the_first_rank_to_fail_is_named_as_the_cause(tmp_path):
    """A rank's own error makes the others fail at their next barrier (the peer is gone): the
    run's message names the first failure, not the lowest rank's consequence."""
    from reedit.distributed import RANKS_DIR, _failure, outcome_path, write_outcome

    (tmp_path / RANKS_DIR).mkdir()
    write_outcome(tmp_path, 1, {"status": "error", "error_type": "OSError", "error": "disk full"})
    time.sleep(0.01)
    peer = {"status": "error", "error_type": "RuntimeError", "error": "Connection closed by peer"}
    write_outcome(tmp_path, 0, peer)
    assert outcome_path(tmp_path, 0).is_file()
    message = _failure(tmp_path, range(2), 1)
    assert message.startswith("rank 1 failed: OSError: disk full; rank 0 failed after it"), message
