"""Step1X-Edit v1p1 and v1p2-preview on the real code of the Peyton-Chen/diffusers fork
(``dev/MergeV1-2``, diffusers 0.36.0.dev0), in their own environment (transformers 4.55.0 shadowing
the main env's 5.x and diffusers 0.42), with a tiny random-weight v1p2 pipeline built from the
fork's own classes (``tests/tiny_external/step1x_edit.py``).

v1p1's text encoding hard-codes CUDA and Qwen2.5-VL's real token ids, so on a CPU its call is
checked against the fork's real signature, and the real model runs in the GPU test.

The workers run with one OpenMP thread: on two busy cores, torch's bf16 matmuls (the fork runs
in bf16 only) spend ~20 ms per call waiting for a second thread, 100x the work itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, compose_config, reedit_env
from external import external, model_env, tiny_model

from reedit.models.editors.step1x_edit_v1p1 import Step1XEditBase, Step1XEditV1p1Editor
from reedit.models.editors.step1x_edit_v1p2_preview import Step1XEditV1p2PreviewEditor

PINS = ["transformers==4.55.0", "huggingface-hub<1.0", "megfile", "qwen_vl_utils==0.0.10"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
V1P2 = "step1x_edit_v1p2_preview"
EVALUATOR_ERROR = "❌ 评估步骤出错"  # what the fork's evaluator prints for each swallowed error
# Every test but the GPU one is an external-model test (marked one by one: CI runs
# `-m external` and fails a skipped one, and the GPU test skips without real weights).
external_model = pytest.mark.external
V1P1_WEIGHTS = "REEDIT_STEP1X_V1P1_PATH"  # a local Step1X-Edit-v1p1-diffusers folder


@pytest.fixture(scope="module")
def fork() -> Path:
    return external("diffusers-step1x")


@pytest.fixture(scope="module")
def env(fork) -> Path:
    return model_env("step1x_edit", pip=PINS, local=[fork])


@pytest.fixture(scope="module")
def tiny(env) -> Path:
    return tiny_model(env, "step1x_edit")


def reedit(run_dir: Path, env: Path, fork: Path, tiny: Path, *overrides: str):
    """``python -m reedit`` on the first physical demo sample with the tiny v1p2 pipeline."""
    cmd = [sys.executable, "-m", "reedit", "dataset=demo", "categories=[physical]", "limit=1"]
    cmd += ["refiner=none", "judge=none", "progress=false", f"run_dir={run_dir}", f"model={V1P2}"]
    cmd += [f"model.path={tiny}", "model.num_inference_steps=2", "model.runtime.conda=null"]
    cmd += [f"model.runtime.python={env}", f"model.runtime.repo_path={fork / 'src'}"]
    proc = subprocess.run(
        [*cmd, *overrides],
        capture_output=True,
        text=True,
        env=reedit_env(**ONE_THREAD),
        cwd=ROOT,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = [
        json.loads(x) for x in (run_dir / "records" / "edit.jsonl").read_text().splitlines()
    ]
    return record, proc.stderr


def image(run_dir: Path, record: dict) -> bytes:
    return (run_dir / record["image"]).read_bytes()


def png_size(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.fixture(scope="module")
def plain(tmp_path_factory, env, fork, tiny):
    """Three runs with thinking and reflection off: seed 0 twice, then seed 1 resized."""
    off = ("model.enable_thinking_mode=false", "model.enable_reflection_mode=false")
    root = tmp_path_factory.mktemp("step1x_plain")
    runs = {
        "a": (root / "a", off),
        "b": (root / "b", off),
        "seed1": (root / "seed1", (*off, "seed=1", "model.resize_output_to_input=true")),
    }
    return {k: (d, *reedit(d, env, fork, tiny, *o)) for k, (d, o) in runs.items()}


@external_model
def test_end_to_end_in_its_worker_with_the_forks_versions(plain):
    run_dir, record, _ = plain["a"]
    assert record["status"] == "ok", record
    data = image(run_dir, record)
    assert png_size(data) == (256, 256) == tuple(record["size"])  # the demo's input size
    info = record["info"]
    assert info["runtime"] == "worker" and info["size_policy"] == Step1XEditBase.size_policy
    assert info["pipeline"] == "Step1XEditPipelineV1P2" and info["dtype"] == "bfloat16"
    assert (info["diffusers"], info["transformers"]) == ("0.36.0.dev0", "4.55.0")  # not 0.42 / 5.x
    assert record["details"] == {
        "enable_thinking_mode": False,
        "enable_reflection_mode": False,
        "reformat_prompt": None,
        "think_info": [],
        "tries": 1,
        "evaluator_errors": 0,
        "evaluator_errors_by_step": {},
    }


@external_model
def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_image(plain):
    (a_dir, a, _), (b_dir, b, _), (s_dir, s, _) = plain["a"], plain["b"], plain["seed1"]
    assert image(a_dir, a) == image(b_dir, b)
    assert s["status"] == "ok" and s["seed"] != a["seed"]
    assert image(s_dir, s) != image(a_dir, a)
    assert png_size(image(s_dir, s)) == (256, 256) and s["info"]["resize_output_to_input"]


@external_model
def test_reflection_counts_the_errors_its_evaluator_swallows(tmp_path, env, fork, tiny):
    """The random tiny MLLM never answers the evaluator's JSON: the fork's loop would retry
    forever; each swallowed error is counted, and past the limit the edit is an error."""
    record, log = reedit(
        tmp_path / "run",
        env,
        fork,
        tiny,
        "model.enable_thinking_mode=false",
        "model.enable_reflection_mode=true",
        "model.reflection_error_limit=2",
        "max_error_rate=1.0",
    )
    assert record["status"] == "error" and record["error_type"] == "RuntimeError"
    assert record["error"].startswith(
        "Step1X reflection: the evaluator's evaluate_consistency step failed 3 times in a row "
        "(2 errors swallowed in this edit; model.reflection_error_limit=2); last error: "
        "ValueError: 无法从API响应中解析JSON"
    )
    assert log.count(EVALUATOR_ERROR) == 2  # what the fork printed: the two it swallowed
    assert record["details"] == {  # the count is in the error record too
        "evaluator_errors": 2,
        "evaluator_errors_by_step": {"evaluate_consistency": 2},
    }


# Runs in the Step1X env: the adapters with their YAML settings against the fork's real classes.
IN_ENV = r"""
import dataclasses, hashlib, inspect, json, sys, torch
from PIL import Image
from diffusers import Step1XEditPipeline, Step1XEditPipelineV1P2
from reedit.models.base import EditRequest
from reedit.models.editors.step1x_edit_v1p1 import Step1XEditV1p1Editor
from reedit.models.editors.step1x_edit_v1p2_preview import Step1XEditV1p2PreviewEditor

settings = json.loads(sys.argv[1])
picture = Image.new("RGB", (120, 80), (200, 40, 40))
req = EditRequest("s", "s", "physical", picture, "make the ball blue", 7)
out = {}

# v1p1: its call kwargs bind to the fork's real __call__ (a CPU cannot run it)
v1p1 = Step1XEditV1p1Editor(Step1XEditV1p1Editor.Settings(**settings["v1p1"]))
kwargs = v1p1.call_kwargs(req)
bound = inspect.signature(Step1XEditPipeline.__call__).bind(None, generator=None, **kwargs)
out["v1p1"] = {k: v for k, v in bound.arguments.items() if k not in ("self", "image")}
try:
    inspect.signature(Step1XEditPipeline.__call__).bind(None, size_level=1024)
except TypeError as exc:
    out["size_level"] = str(exc)
try:
    v1p1.load()
except RuntimeError as exc:
    out["v1p1_cpu"] = str(exc)

# v1p2-preview: what the real __call__ receives, loaded through the adapter's own path
editor = Step1XEditV1p2PreviewEditor(Step1XEditV1p2PreviewEditor.Settings(**settings["v1p2"]))
editor.load()
real = Step1XEditPipelineV1P2.__call__
seen = {}
def spy(self, *args, **kw):
    inspect.signature(real).bind(self, *args, **kw)
    seen.update(kw)
    raise RuntimeError("spied")
Step1XEditPipelineV1P2.__call__ = spy
(res,) = editor.edit([req])
Step1XEditPipelineV1P2.__call__ = real
gen = seen.pop("generator")
out["v1p2"] = {k: v for k, v in seen.items() if k != "image"}
out["v1p2_generator"] = [str(gen.device), gen.initial_seed(), seen["image"].size]
out["v1p2_spied"] = res.error

# thinking on (reflection off): the thinker samples on the global RNG, seeded per request
editor.settings = dataclasses.replace(
    editor.settings, num_inference_steps=2, enable_reflection_mode=False
)
runs = []
for _ in range(2):
    (res,) = editor.edit([req])
    assert res.ok, res.error
    torch.rand(1000)  # whatever ran in between
    runs.append([res.image.size, hashlib.sha256(res.image.tobytes()).hexdigest(), res.details])
out["thinking"] = runs
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def in_env(env, fork, tiny):
    from omegaconf import OmegaConf

    settings = {}
    for key, name in (("v1p1", "step1x_edit_v1p1"), ("v1p2", V1P2)):
        cfg = compose_config(f"model={name}", f"model.path={tiny}", "model.runtime.repo_path=x")
        node = OmegaConf.to_container(cfg.model, resolve=True)
        settings[key] = {k: v for k, v in node.items() if k not in ("_target_", "runtime")}
    paths = os.pathsep.join([str(ROOT), str(fork / "src")])
    proc = subprocess.run(
        [env, "-c", IN_ENV, json.dumps(settings)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=paths, **ONE_THREAD),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1]), settings


@external_model
def test_the_v1p1_yaml_reaches_the_forks_real_call(in_env):
    out, settings = in_env
    assert out["v1p1"] == {
        "prompt": "make the ball blue",
        "negative_prompt": "",
        "true_cfg_scale": 6.0,
        "guidance_scale": 6.0,
        "num_inference_steps": 28,
        "timesteps_truncate": 0.93,
        "process_norm_power": 0.4,
        "generator": None,
    }
    assert settings["v1p1"]["path"] and "size_level" in out["size_level"]  # README's TypeError
    assert out["v1p1_cpu"].startswith("gpus: Step1X-Edit v1p1 cannot run on cpu")


@external_model
def test_the_v1p2_preview_yaml_reaches_the_real_call(in_env):
    out, _ = in_env
    assert out["v1p2"] == {
        "prompt": "make the ball blue",
        "negative_prompt": "",
        "true_cfg_scale": 4.0,
        "guidance_scale": 6.0,
        "num_inference_steps": 28,
        "timesteps_truncate": 0.93,
        "process_norm_power": 0.4,
        "enable_thinking_mode": True,  # README; the pipeline's default is False
        "enable_reflection_mode": True,
        "max_try_cnt": 3,
    }
    assert out["v1p2_generator"] == ["cpu", 7, [120, 80]]  # README: a CPU generator
    assert out["v1p2_spied"] == "spied"


@external_model
def test_thinking_is_recorded_and_seeded_through_the_global_rng(in_env):
    (size_a, bytes_a, details_a), (size_b, bytes_b, details_b) = in_env[0]["thinking"]
    assert size_a == size_b == [120, 80]  # resized back to the input size by the pipeline
    assert bytes_a == bytes_b and details_a == details_b
    assert details_a["enable_thinking_mode"] and not details_a["enable_reflection_mode"]
    assert isinstance(details_a["reformat_prompt"], str) and details_a["reformat_prompt"]
    assert details_a["tries"] == 1 and details_a["evaluator_errors"] == 0


@external_model
@pytest.mark.parametrize("name", ["step1x_edit_v1p1", V1P2])
def test_a_missing_clone_or_another_dtype_fails_at_set_up_naming_the_key(name, tmp_path):
    def run(*overrides: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "reedit", f"model={name}", "dataset=demo", *overrides]
        return subprocess.run(
            cmd, capture_output=True, text=True, env=reedit_env(), cwd=tmp_path, timeout=300
        )

    missing = run()
    assert missing.returncode == 2 and "model.runtime.repo_path" in missing.stderr
    fp16 = run("model.dtype=float16", "model.runtime.repo_path=/nowhere")
    assert fp16.returncode == 2 and "model.dtype must be 'bfloat16'" in fp16.stderr


@external_model
@pytest.mark.parametrize("cls", [Step1XEditV1p1Editor, Step1XEditV1p2PreviewEditor])
def test_mainline_diffusers_is_refused_naming_the_repo_path(cls):
    import diffusers

    assert not diffusers.__version__.startswith("0.36.0.dev")  # the main env's own
    with pytest.raises(ImportError, match=r"model\.runtime\.repo_path.*step1x_edit\.yml"):
        cls.__new__(cls).pipeline_type()


@pytest.mark.gpu
def test_v1p1_edits_with_the_real_weights_on_a_gpu(tmp_path, env, fork):
    weights = os.environ.get(V1P1_WEIGHTS)
    if not weights:
        pytest.skip(f"needs the Step1X-Edit-v1p1-diffusers weights: set {V1P1_WEIGHTS}=<folder>")
    cmd = [sys.executable, "-m", "reedit", "dataset=demo", "categories=[physical]", "limit=1"]
    cmd += ["refiner=none", "judge=none", "progress=false", f"run_dir={tmp_path}", "gpus=[0]"]
    cmd += ["model=step1x_edit_v1p1", f"model.path={weights}", "model.runtime.conda=null"]
    cmd += [f"model.runtime.python={env}", f"model.runtime.repo_path={fork / 'src'}"]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=reedit_env(), cwd=ROOT, timeout=1800
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = [json.loads(x) for x in (tmp_path / "records/edit.jsonl").read_text().splitlines()]
    assert record["status"] == "ok" and record["info"]["device"] == "cuda:0"
    assert png_size((tmp_path / record["image"]).read_bytes()) == (256, 256)
    assert record["info"]["transformers"] == "4.55.0"
