"""``multirun_examples/*.sh`` run for real, each as its header says to on a CPU (the demo's tiny
models, through the real launchers: ``gpu_pool`` on the CPU, ``submitit_local`` for the Slurm
one), small (``limit=1``, one category), and checked for what its README entry promises.

Every job builds and loads its tiny models in its own process, so the sweeps are slow on two
cores: the ones on the trained judge or refiner are marked ``walkthrough`` (``make
walkthrough``) and share one training of each (:func:`judge`, :func:`refiner`). The default suite
keeps the cheap ones: the scripts' refusals, the README table, the Slurm script's sweep through
``submitit_local``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, reedit_env

EXAMPLES = ROOT / "multirun_examples"
SMALL = ("limit=1", "categories=[physical]", "progress=false")
ON_CPU = ("hydra.launcher.cpu=true", "hydra.launcher.pool=[a,b]")  # two jobs at once
# The README's reading of the spread over seeds, run as written (the sweep folder appended).
SPREAD = (
    'import json,sys,statistics as st; v=[json.load(open(json.loads(l)["run_dir"]'
    '+"/metrics.json"))["scores"]["overall"]["verdict"]["primary"]["yes_rate"] for l in '
    'open(sys.argv[1]+"/jobs.jsonl")]; print(v, st.mean(v), st.stdev(v))'
)


def script(
    name: str, *args: str, cwd: Path, **env: str
) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """``bash multirun_examples/<name> <args> hydra.sweep.dir=<cwd>/sweep`` in ``cwd``, with
    ``env`` set; its result and the sweep's jobs.jsonl lines (by job number)."""
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["bash", str(EXAMPLES / name), *args, f"hydra.sweep.dir={cwd / 'sweep'}"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=reedit_env(PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin", **env),
        timeout=900,
    )
    path = cwd / "sweep" / "jobs.jsonl"
    jobs = [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []
    return proc, sorted(jobs, key=lambda j: j["num"])


def records(job: dict, stage: str) -> list[dict]:
    path = Path(job["run_dir"]) / "records" / f"{stage}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()]


def metrics(job: dict) -> dict:
    return json.loads((Path(job["run_dir"]) / "metrics.json").read_text())


def verdict(job: dict, label: str = "primary") -> dict:
    return metrics(job)["scores"]["overall"]["verdict"][label]


def image_bytes(job: dict, label: str = "primary") -> bytes:
    (path,) = (Path(job["run_dir"]) / "images").glob(f"*/*/{label}.png")
    return path.read_bytes()


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def judge() -> str:
    """The demo's trained judge, trained once into the session's cache before a sweep needs it
    (two jobs at once would otherwise each train it); its option name."""
    from reedit.testing.trained import ensure_trained

    ensure_trained("qwen3_vl_judge")
    return "tiny_qwen3_vl_judge"


@pytest.fixture(scope="module")
def refiner() -> str:
    """The demo's trained refiner, as :func:`judge`."""
    from reedit.testing.trained import ensure_trained

    ensure_trained("qwen25_vl_refiner")
    return "tiny_qwen25_vl_refiner"


# -- the default suite ---------------------------------------------------------------------------
def test_the_readme_lists_every_script_and_each_header_has_its_cpu_command():
    readme = (EXAMPLES / "README.md").read_text()
    scripts = sorted(p.name for p in EXAMPLES.glob("*.sh"))
    assert len(scripts) == 7
    for name in scripts:
        assert f"| `{name}` |" in readme, name
        header = (EXAMPLES / name).read_text().split("set -euo pipefail", 1)[0]
        assert "On a CPU" in header and "+experiment=demo" in header, name
        assert '"$@"' in (EXAMPLES / name).read_text(), name
    assert SPREAD in readme and SPREAD in (EXAMPLES / "seeds.sh").read_text()


def test_the_scripts_that_need_a_setting_refuse_to_start_without_it(tmp_path):
    proc, _ = script("rejudge.sh", cwd=tmp_path / "a")
    assert proc.returncode != 0 and "set SWEEP to the folder of the earlier sweep" in proc.stderr
    (tmp_path / "empty" / ".submitit").mkdir(parents=True)
    proc, _ = script("rejudge.sh", cwd=tmp_path / "b", SWEEP=str(tmp_path / "empty"))
    assert proc.returncode == 2 and "no job folders (with images/ and records/)" in proc.stderr
    proc, _ = script("executors.sh", cwd=tmp_path / "c")
    assert proc.returncode != 0 and "set EDITREFINE to the EditRefine weights" in proc.stderr
    proc, _ = script("compare_editors_slurm.sh", cwd=tmp_path / "d")
    assert proc.returncode != 0 and "set PARTITION" in proc.stderr
    proc, _ = script("big_run_slurm.sh", cwd=tmp_path / "e")
    assert proc.returncode != 0 and "set PARTITION" in proc.stderr
    assert not (tmp_path / "a" / "sweep").exists() and not (tmp_path / "d" / "sweep").exists()


@pytest.mark.walkthrough  # two real jobs through submitit (test_submitit.py has a cheaper one)
def test_the_slurm_sweep_runs_through_submitit_local(tmp_path):
    """compare_editors_slurm.sh with LAUNCHER=submitit_local: submitit pickles each job and runs
    it in its own process, as on a Slurm node."""
    proc, jobs = script(
        "compare_editors_slurm.sh",
        "dataset=demo",
        "judge=none",
        *SMALL,
        cwd=tmp_path,
        LAUNCHER="submitit_local",
        MODELS="identity,tiny_flux2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Submitit 'local' sweep" in proc.stderr and "sweep: 2 jobs, 0 failed" in proc.stderr
    assert [Path(j["run_dir"]).name for j in jobs] == ["0_identity", "1_tiny_flux2"]
    assert [j["status"] for j in jobs] == ["ok", "ok"]
    for job, model in zip(jobs, ["identity", "tiny_flux2"]):
        assert f"model={model}" in job["overrides"]
        for name in ("metrics.json", "samples.csv", "report.md"):
            assert (Path(job["run_dir"]) / name).is_file()
        assert metrics(job)["stages"]["edit"]["ok"] == 1
        assert records(job, "edit")[0]["model"] == model
    assert image_bytes(jobs[0]) != image_bytes(jobs[1])  # the source kept; FLUX.2's noise
    submitit_jobs = [p for p in (tmp_path / "sweep" / ".submitit").iterdir() if p.name != "%j"]
    assert len(submitit_jobs) == 2
    for folder in submitit_jobs:  # submitit's own: the pickled job, its result and its logs
        names = {p.name.split("_", 1)[1] for p in folder.iterdir()}
        assert {"submitted.pkl", "0_result.pkl", "0_log.out", "0_log.err"} <= names


# -- the sweeps on the trained tiny models (make walkthrough) -------------------------------------
@pytest.mark.walkthrough
def test_the_steps_x_guidance_grid_makes_one_scored_job_per_cell(tmp_path, judge):
    proc, jobs = script(
        "steps_guidance.sh",
        "+experiment=demo",
        f"judge={judge}",
        "judge.cache=false",
        *ON_CPU,
        *SMALL,
        cwd=tmp_path,
        MODEL="tiny_flux2",
        STEPS="1,2",
        GUIDANCE="1.0,4.0",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [Path(j["run_dir"]).name for j in jobs] == [
        "0_tiny_flux2_steps1_cfg1.0",
        "1_tiny_flux2_steps1_cfg4.0",
        "2_tiny_flux2_steps2_cfg1.0",
        "3_tiny_flux2_steps2_cfg4.0",
    ]
    cells = []
    for job in jobs:
        assert job["status"] == "ok" and job["gpus"] in (["a"], ["b"])
        config = (Path(job["run_dir"]) / ".hydra" / "config.yaml").read_text()
        steps = next(o for o in job["overrides"] if o.startswith("model.num_inference_steps="))
        cfg = next(o for o in job["overrides"] if o.startswith("model.guidance_scale="))
        assert f"num_inference_steps: {steps.split('=')[1]}" in config
        assert f"guidance_scale: {cfg.split('=')[1]}" in config
        cells.append((steps, cfg))
        (edit,) = records(job, "edit")
        assert edit["status"] == "ok" and edit["model"] == "tiny_flux2"
        assert not (Path(job["run_dir"]) / "records" / "analyze.jsonl").exists()  # refiner=none
        primary = verdict(job)
        assert primary["judged"] == 1 and primary["yes_rate"] == 0.0  # random weights: noise
        assert metrics(job)["scores"]["overall"]["if"]["by_label"]["primary"]["mean"] is not None
    assert len(set(cells)) == 4  # every pair once
    assert len({records(j, "edit")[0]["fingerprint"] for j in jobs}) == 4
    assert len({image_bytes(j) for j in jobs}) == 4  # each cell made its own image


@pytest.mark.walkthrough
def test_the_seeds_sweep_gives_one_value_per_seed_and_the_readme_reads_their_spread(
    tmp_path, judge
):
    proc, jobs = script(
        "seeds.sh",
        "+experiment=demo",
        f"judge={judge}",
        "judge.cache=false",
        *ON_CPU,
        *SMALL,
        cwd=tmp_path,
        MODEL="tiny_flux2",
        SEEDS="0,1",  # two seeds: one round of the pool of two
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = [Path(j["run_dir"]).name for j in jobs]
    assert names == ["0_tiny_flux2_seed0", "1_tiny_flux2_seed1"]
    seeds = [next(o for o in j["overrides"] if o.startswith("seed=")) for j in jobs]
    assert seeds == ["seed=0", "seed=1"]
    assert len({records(j, "edit")[0]["seed"] for j in jobs}) == 2  # per-sample seeds differ
    assert len({image_bytes(j) for j in jobs}) == 2  # and so do the edits
    values = [verdict(j)["yes_rate"] for j in jobs]
    assert values == [0.0, 0.0]  # noise, judged as such under every seed
    assert all(verdict(j)["judged"] == 1 for j in jobs)
    assert not any((Path(j["run_dir"]) / "records" / "analyze.jsonl").exists() for j in jobs)
    spread = subprocess.run(
        [sys.executable, "-c", SPREAD, str(tmp_path / "sweep")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert spread.stdout.split() == ["[0.0,", "0.0]", "0.0", "0.0"]


@pytest.mark.walkthrough
def test_executor_f_vs_q_refines_the_same_primary_edits_with_each_executor(
    tmp_path, judge, refiner
):
    proc, jobs = script(
        "executors.sh",
        "+experiment=demo",
        f"judge={judge}",
        "judge.cache=false",
        *ON_CPU,
        *SMALL,
        cwd=tmp_path,
        REFINER=refiner,
        EXECUTORS="tiny_flux2,tiny_qwen_image_edit",
        MODEL="identity",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    executors = ["tiny_flux2", "tiny_qwen_image_edit"]
    assert [Path(j["run_dir"]).name for j in jobs] == [
        f"{n}_identity_executor_{e}" for n, e in enumerate(executors)
    ]
    for job, executor in zip(jobs, executors):
        assert job["status"] == "ok"
        (critique,) = records(job, "analyze")
        assert critique["status"] == "ok" and critique["model"] == "tiny:qwen25_vl_refiner"
        (refine,) = records(job, "refine")
        assert refine["status"] == "ok" and refine["model"] == executor
        assert (
            refine["info"]["pipeline"]
            == {
                "tiny_flux2": "Flux2Pipeline",
                "tiny_qwen_image_edit": "QwenImageEditPipeline",
            }[executor]
        )
        scores = metrics(job)["scores"]["overall"]
        # the kept scene is a picture; each random-weight executor turned it into noise
        assert (verdict(job)["yes_rate"], verdict(job, "refined")["yes_rate"]) == (100.0, 0.0)
        assert scores["transitions"]["refined"]["regressed"]["count"] == 1
    assert image_bytes(jobs[0]) == image_bytes(jobs[1])  # the same primary edits
    assert image_bytes(jobs[0], "refined") != image_bytes(jobs[1], "refined")


@pytest.mark.walkthrough
def test_rejudge_judges_an_earlier_sweeps_images_without_running_an_editor(tmp_path, judge):
    earlier = tmp_path / "earlier"
    proc, made = script(
        "compare_editors.sh",
        "dataset=demo",
        "executor=identity",
        "judge=none",
        *ON_CPU,
        *SMALL,
        cwd=earlier,
        MODELS="identity,tiny_flux2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (Path(made[0]["run_dir"]) / "records" / "judge.jsonl").exists()  # never judged
    before = tree_digest(earlier / "sweep")

    proc, jobs = script(
        "rejudge.sh",
        "+experiment=demo",
        "judge.cache=false",
        *ON_CPU,
        *SMALL,
        cwd=tmp_path / "again",
        SWEEP=str(earlier / "sweep"),
        JUDGE=judge,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [Path(j["run_dir"]).name for j in jobs] == [
        "0_rejudged_tiny_qwen3_vl_judge",
        "1_rejudged_tiny_qwen3_vl_judge",
    ]
    for job, old in zip(jobs, made):
        assert f"model.images_dir='{old['run_dir']}'" in job["overrides"]
        stages = [
            json.loads(x)
            for x in (Path(job["run_dir"]) / "records" / "stages.jsonl").read_text().splitlines()
        ]
        # the edit stage only read the earlier images; the judge is the only model loaded
        assert [(s["stage"], s["group"], s["model"]) for s in stages] == [
            ("edit", "model", "precomputed"),
            ("judge", "judge", "tiny_qwen3_vl_judge"),
        ]
        (edit,) = records(job, "edit")
        assert edit["model"] == "precomputed" and edit["info"]["images_dir"] == old["run_dir"]
        assert image_bytes(job) == image_bytes(old)  # the earlier image, byte for byte
        judged = records(job, "judge")
        assert {r["metric"] for r in judged} == {"dimension", "if", "sc"}
        assert all(r["status"] == "ok" and r["label"] == "primary" for r in judged)
        assert all(not r["cached"] and r["raw"] for r in judged)  # asked the judge now
        assert not (Path(job["run_dir"]) / "records" / "refine.jsonl").exists()
    # the trained judge tells the kept scene (identity) from the random-weight editor's noise
    assert [verdict(j)["yes_rate"] for j in jobs] == [100.0, 0.0]
    assert tree_digest(earlier / "sweep") == before  # the earlier sweep is only read
