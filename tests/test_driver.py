"""The stage driver's seams: a shard of the pending units and its own records file, the run's
model pool (each model loaded once, released after its last stage), and the runtime seam's
set-up errors."""

from __future__ import annotations

import logging

import pytest
from conftest import SCRIPTED
from doubles import ScriptedVLM

from reedit.config import ConfigError
from reedit.layout import RunLayout
from reedit.records import RecordStore, StageLog
from reedit.run import execute, run, run_folder, schedule, setup
from reedit.runtime import Placement
from reedit.runtime.pool import ModelPool
from reedit.stages.driver import Shard, Workspace, drive
from reedit.stages.edit import EditStage
from reedit.stages.resume import ResumePlan, unit_fingerprints

FULL = (*SCRIPTED, "model=identity", "executor=slow_identity", "report.bootstrap=50")


class EveryOther(Shard):
    """A shard that takes every second sample (as a rank of two would)."""

    def take(self, pending):
        return [u for u in pending if u.sample.record_index % 2 == self.rank]


def workspace(cfg, folder):
    from reedit.data.re_edit import ReEditDataset

    s = setup(cfg)
    samples = ReEditDataset(**{k: v for k, v in cfg.dataset.items() if k != "_target_"})
    plan = ResumePlan(folder, unit_fingerprints(s.specs, s.seeds, s.mode, s.rounds))
    pool = ModelPool(s.specs, Placement())
    ws = Workspace(samples.load().samples, RunLayout(folder), plan, pool, progress=False)
    return s, ws


def test_a_shard_takes_its_part_and_appends_to_its_own_file(compose, tmp_path):
    cfg = compose(*FULL)
    s, ws = workspace(cfg, tmp_path)
    for rank in (0, 1):
        drive(EditStage(s.seeds), ws, EveryOther(rank))
    ws.pool.release_all()
    files = sorted(p.name for p in (tmp_path / "records").glob("*.jsonl"))
    assert files == [
        "edit.rank0.jsonl",
        "edit.rank1.jsonl",
        "stages.rank0.jsonl",
        "stages.rank1.jsonl",
    ]
    # each shard logs its own execution of the stage
    assert [(r.stage, r.rank, r.pending, r.done) for r in StageLog(tmp_path).runs()] == [
        ("edit", 0, 5, 5),
        ("edit", 1, 5, 5),
    ]
    for rank in (0, 1):
        assert (tmp_path / "records" / f"edit.rank{rank}.jsonl").read_text().count("\n") == 5
    assert len(RecordStore(tmp_path, "edit").load()) == 10  # the store reads every rank's file
    # a later run sees the ranks' records as done and goes on with the next stages
    metrics = run(cfg, run_dir=tmp_path)
    assert metrics["stages"]["edit"]["ok"] == 10 and metrics["stages"]["judge"]["ok"] == 60
    assert not (tmp_path / "records" / "edit.jsonl").exists()


def test_each_model_loads_once_per_run_and_goes_when_its_last_stage_is_done(
    compose, tmp_path, caplog
):
    ScriptedVLM.instances.clear()
    cfg = compose(*FULL, "refine.rounds=2")
    s = setup(cfg)
    assert [(type(st).__name__, st.round) for st in schedule(s)] == [
        ("EditStage", None),
        ("AnalyzeStage", 1),
        ("RefineStage", 1),
        ("AnalyzeStage", 2),
        ("RefineStage", 2),
        ("JudgeStage", None),
    ]
    ScriptedVLM.instances.clear()  # set-up built them; count the run's own
    with caplog.at_level(logging.INFO):
        run(cfg, run_dir=tmp_path)
    # the refiner's backend served both rounds, then the judge's was built: one load each
    assert [v.loads for v in ScriptedVLM.instances] == [1, 1]
    refiner, judge = ScriptedVLM.instances
    assert not refiner.loaded and not judge.loaded  # released by the run
    loads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loading ")]
    assert loads == [
        "loading editor IdentityEditor",
        "loading VLM ScriptedVLM",
        "loading editor SlowIdentityEditor",
        "loading VLM ScriptedVLM",
    ]


def test_model_paths_are_resolved_when_the_pool_loads_not_when_it_builds(compose):
    """Building or training a tiny model happens in the path resolver: inside the pool's load,
    so it counts as the stage's model load (records/stages.jsonl), never as set-up."""
    from reedit.testing import locate

    asked = []

    def recording(path: str) -> str:
        asked.append(path)
        return locate(path)

    s = setup(compose("dataset=demo", "model=tiny_flux2", "refiner=none", "judge=tiny_qwen3_vl"))
    pool = ModelPool(s.specs, Placement((), recording))
    pool.build_all()
    assert asked == []
    pool.get("model")
    assert asked == ["tiny:flux2"]
    pool.get("judge")
    assert asked == ["tiny:flux2", "tiny:qwen3_vl"]
    pool.release_all()


def test_the_pool_releases_what_it_loaded(compose, tmp_path):
    s = setup(compose(*FULL))
    pool = ModelPool(s.specs, Placement())
    refiner = pool.get("refiner")
    assert pool.get("refiner") is refiner and refiner.vlm.loaded
    pool.release("refiner")
    assert not refiner.vlm.loaded and not pool.is_loaded("refiner")
    with pytest.raises(Exception, match="judge: no model is configured"):
        ModelPool({"judge": None}, Placement()).get("judge")


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["+model.runtime={kind: worker, python: /usr/bin/python3, conda: vlm}"],
            r"model\.runtime: choose one of python, conda, mamba, micromamba",
        ),
        (
            ["judge=qwen3_vl", "+judge.vlm.runtime={kind: worker, condaa: vlm}"],
            r"judge\.vlm\.runtime\.condaa: not a worker setting",
        ),
        (["+model.runtime=elsewhere"], r"model\.runtime: unknown runtime 'elsewhere'"),
        (
            ["model=flux2_dev", "gpus=[0,1]", "gpus_per_replica=2"],
            r"model\.parallel=data keeps one copy on one GPU, but each replica has 2",
        ),
        (
            ["model=flux2_dev", "model.parallel=model", "executor=flux2_dev", "gpus=[0,1]"],
            r"executor\.parallel=data",
        ),
    ],
)
def test_runtimes_and_gpu_layouts_that_cannot_work_fail_at_set_up(
    compose, tmp_path, overrides, message
):
    cfg = compose("dataset=re_edit", "dataset.path=/nowhere/RE-Edit.json", *overrides)
    with pytest.raises(ConfigError, match=message):
        run(cfg, run_dir=tmp_path)  # before the (missing) dataset is read
    assert not (tmp_path / "records").exists()


def test_a_worker_runtime_passes_set_up_without_starting_anything(compose):
    s = setup(compose("judge=qwen3_vl", "+judge.vlm.runtime={kind: worker, conda: vlm}"))
    proxy = s.pool.built("judge").vlm
    assert type(proxy).__name__ == "WorkerVLM" and proxy.worker.proc is None
    assert proxy.fingerprint() == proxy.inner.fingerprint()  # the judge cache's key unchanged


def test_parallel_model_over_two_gpus_passes_set_up(compose):
    s = setup(
        compose(
            "model=flux2_dev",
            "model.parallel=model",
            "judge=qwen3_vl_vllm",
            "gpus=[0,1]",
            "judge.vlm.tensor_parallel_size=2",
        )
    )
    assert s.gpus == (0, 1) and s.specs["model"].settings.parallel == "model"


def test_execute_runs_given_samples_in_a_folder(compose, tmp_path):
    """The EditRefine tool's path: samples chosen by the caller, the same stages."""
    cfg = compose(*FULL, "stages=[edit,analyze,refine]")
    s, ws = workspace(cfg, tmp_path)
    folder, choices = run_folder(cfg, tmp_path)
    execute(s, folder, ws.samples[:2], choices)
    assert len(RecordStore(tmp_path, "refine").load()) == 2
    assert not (tmp_path / "records" / "judge.jsonl").exists()


class Nothing(Shard):
    def take(self, pending):
        return []


def test_a_shard_with_no_unit_loads_no_model(compose, tmp_path, caplog):
    s, ws = workspace(compose(*FULL), tmp_path)
    with caplog.at_level(logging.INFO):
        drive(EditStage(s.seeds), ws, Nothing(rank=3))
    assert "no pending unit falls to this shard" in caplog.text
    assert not ws.pool.is_loaded("model") and "loading" not in caplog.text
    assert not (tmp_path / "records" / "edit.rank3.jsonl").exists()


def test_gpus_for_the_judge_with_gpu_less_editors_pass_set_up(compose):
    s = setup(compose("judge=qwen3_vl_vllm", "judge.vlm.tensor_parallel_size=2", "gpus=[0,1]"))
    assert s.specs["model"].cls.__name__ == "IdentityEditor" and s.gpus == (0, 1)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["judge=openai", "judge.decision=logprob"], r"judge: .*decision=logprob needs a backend"),
        (["judge=qwen3_vl", "judge.vlm.dtype=bf16"], r"judge\.vlm\.dtype must be one of"),
        (["+model._partial_=true"], r"model\._partial_: not a setting"),
    ],
)
def test_constructor_and_value_checks_run_at_set_up(compose, tmp_path, overrides, message):
    cfg = compose("dataset=re_edit", "dataset.path=/nowhere/RE-Edit.json", *overrides)
    with pytest.raises(ConfigError, match=message):
        run(cfg, run_dir=tmp_path)  # before the (missing) dataset is read


def test_a_line_half_written_by_a_killed_rank_does_not_misplace_the_next_executions_mark(
    tmp_path,
):
    """Found by the fault suite: a rank killed mid-line left a torn tail; the next execution's
    marks counted it, and once the rank cut it and appended, the check after the barrier read
    from the middle of a line (JSONDecodeError on every rerun)."""
    from types import SimpleNamespace

    from reedit.stages.driver import _check_complete, _ends

    store = RecordStore(tmp_path, "edit", rank=1)
    store.append({"key": "a", "status": "ok"})
    store.close()
    with open(store.path, "a", encoding="utf-8") as f:
        f.write('{"key": "b", "sta')  # the rank was killed here
    marks = _ends(store)
    assert marks[store.path] == store.path.read_bytes().index(b"\n") + 1  # a's line, whole
    rerun = RecordStore(tmp_path, "edit", rank=1)
    rerun.append({"key": "b", "status": "ok"})
    rerun.close()
    pending = [SimpleNamespace(key="b")]
    _check_complete(RecordStore(tmp_path, "edit"), marks, pending, "edit")  # b once, a not read
    # were a torn tail left (its rank claims nothing), the check skips it: another rank records
    with open(store.path, "a", encoding="utf-8") as f:
        f.write('{"key": "c", "sta')
    marks = _ends(RecordStore(tmp_path, "edit"))
    other = RecordStore(tmp_path, "edit", rank=0)
    other.append({"key": "c", "status": "ok"})
    other.close()
    pending = [SimpleNamespace(key="c")]
    _check_complete(RecordStore(tmp_path, "edit"), marks, pending, "edit")


@pytest.mark.parametrize("pending", [True, False], ids=["work-to-do", "nothing-to-do"])
def test_a_torn_line_whose_rank_claims_nothing_is_cut_when_the_stage_is_planned(
    compose, tmp_path, pending
):
    """Found by the fault suite (CI, once in a while): the rank killed mid-line claimed no
    chunk in the rerun, so its torn tail stayed in the completed run's records."""
    s, ws = workspace(compose(*FULL), tmp_path)
    if not pending:
        drive(EditStage(s.seeds), ws)
    torn = tmp_path / "records" / "edit.rank1.jsonl"
    torn.parent.mkdir(exist_ok=True)
    whole = '{"key": "elsewhere", "status": "ok", "time": "2000-01-01T00:00:00.000"}\n'
    torn.write_text(whole + '{"key": "00000_physical_easy", "sta', encoding="utf-8")
    drive(EditStage(s.seeds), ws)
    assert torn.read_text(encoding="utf-8") == whole
