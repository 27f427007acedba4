"""OmniGen2 on the repository's own code (``REEDIT_EXTERNAL``/OmniGen2), in its own venv: the main
env's torch, transformers 5 and diffusers 0.42 plus einops (the one import the repository needs
that the main env lacks), with a tiny random-weight pipeline built from the repository's classes.
The official settings are read from the snapshot's ``inference.py`` and ``example_edit.sh``."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, reedit_env
from external import external, model_env, tiny_model

from reedit.config import spec_of

pytestmark = pytest.mark.external

SIDE = 200  # max_input_image_side_length in the runs: the demo's 256 px inputs become 192 px
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


@pytest.fixture(scope="module")
def repo() -> Path:
    return external("OmniGen2")


@pytest.fixture(scope="module")
def python() -> Path:
    return model_env("omnigen2", pip=["einops"])


@pytest.fixture(scope="module")
def tiny(python, repo) -> Path:
    return tiny_model(python, "omnigen2", repo=repo)


def run_reedit(
    run_dir: Path, python: Path, repo: Path, *overrides: str
) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "reedit", "dataset=demo", "limit=1", "refiner=none"]
    argv += ["judge=none", "progress=false", f"run_dir={run_dir}", "model=omnigen2"]
    argv += ["model.runtime.conda=null", f"++model.runtime.python={python}"]
    argv += [f"model.runtime.repo_path={repo}", *overrides]
    return subprocess.run(argv, env=reedit_env(), capture_output=True, text=True, timeout=600)


def edits(run_dir: Path, python: Path, repo: Path, tiny: Path, *overrides: str) -> list[dict]:
    """The edit records of a run of the tiny model (2 steps, inputs capped at SIDE px)."""
    tiny_args = (f"model.path={tiny}", "model.num_inference_steps=2")
    side = f"model.max_input_image_side_length={SIDE}"
    proc = run_reedit(run_dir, python, repo, *tiny_args, side, *overrides)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = (run_dir / "records" / "edit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records and all(r["status"] == "ok" for r in records), records
    return records


def image_bytes(run_dir: Path, record: dict) -> bytes:
    return (run_dir / record["image"]).read_bytes()


def policy_size(width: int, height: int, max_pixels: int, max_side: int) -> tuple[int, int]:
    """The pipeline's documented policy, written out: downscale (never up) to the area and side
    limits, floor each side to a multiple of 16."""
    ratio = min((max_pixels / (width * height)) ** 0.5, max_side / max(width, height), 1.0)
    return int(width * ratio) // 16 * 16, int(height * ratio) // 16 * 16


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, python, repo, tiny) -> tuple[Path, list[dict]]:
    run_dir = tmp_path_factory.mktemp("omnigen2") / "a"
    return run_dir, edits(run_dir, python, repo, tiny, "categories=[physical,cultural]")


def test_edits_are_reproducible_per_seed_and_differ_across_seeds(
    first_run, tmp_path, python, repo, tiny
):
    a_dir, a = first_run
    assert len(a) == 2
    b = edits(tmp_path / "b", python, repo, tiny, "categories=[physical,cultural]")
    assert [r["key"] for r in a] == [r["key"] for r in b]
    assert all(image_bytes(a_dir, x) == image_bytes(tmp_path / "b", y) for x, y in zip(a, b))
    (c,) = edits(tmp_path / "c", python, repo, tiny, "categories=[physical]", "seed=1")
    (same,) = [r for r in a if r["key"] == c["key"]]
    assert c["seed"] != same["seed"]
    assert image_bytes(tmp_path / "c", c) != image_bytes(a_dir, same)


def test_the_output_size_is_the_preprocessed_input_size_or_the_inputs(
    first_run, tmp_path, python, repo, tiny
):
    from PIL import Image

    a_dir, a = first_run
    for record in a:
        source = Image.open(next((a_dir / "sources").glob(f"*/{record['sample_id']}.png")))
        expected = policy_size(*source.size, 1024 * 1024, SIDE)
        assert source.size == (256, 256) and expected == (192, 192)
        assert tuple(record["size"]) == expected
        assert Image.open(a_dir / record["image"]).size == expected
    resized = edits(
        tmp_path / "r",
        python,
        repo,
        tiny,
        "categories=[physical]",
        "model.resize_output_to_input=true",
    )
    assert [tuple(r["size"]) for r in resized] == [(256, 256)]


def test_records_name_the_policy_the_worker_its_versions_and_the_snapshot(first_run, repo):
    import diffusers
    import transformers

    info = first_run[1][0]["info"]
    assert info["runtime"] == "worker"
    assert (
        "pre-processed input size" in info["size_policy"]
        and "multiples of 16" in info["size_policy"]
    )
    assert info["resize_output_to_input"] is False and info["scheduler"] == "euler"
    # the venv reaches the main env's transformers 5 and diffusers 0.42 (no pins of its own)
    versions = info["versions"]
    assert versions["transformers"] == transformers.__version__
    assert versions["transformers"].startswith("5.")
    assert versions["diffusers"] == diffusers.__version__
    assert versions["diffusers"].startswith("0.42.")
    assert Path(info["repository"]) == repo.resolve()  # omnigen2 imported from the snapshot
    # gpus=[]: the CPU, where the repository's Triton and flash-attn paths are switched off
    assert info["device"] == "cpu"
    assert info["fused_kernels"] == {"triton": False, "flash_attn": False}


# -- the official settings and the real call ----------------------------------------------------
def official(repo: Path) -> dict:
    """inference.py's argparse defaults, example_edit.sh's flags over them, and the
    max_sequence_length that inference.py passes to the pipeline, in reedit's names."""
    tree = ast.parse((repo / "inference.py").read_text())
    flags, passed = {}, {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        if name == "add_argument" and "default" in keywords:
            flags[node.args[0].value.lstrip("-")] = ast.literal_eval(keywords["default"])
        if name == "pipeline" and "max_sequence_length" in keywords:
            passed["max_sequence_length"] = ast.literal_eval(keywords["max_sequence_length"])
    script = (repo / "example_edit.sh").read_text()
    for flag, value in re.findall(r"--(\w+) +([0-9.]+)", script):
        flags[flag] = type(flags[flag])(value)
    return {
        "dtype": DTYPES[flags["dtype"]],
        "num_inference_steps": flags["num_inference_step"],
        "guidance_scale": flags["text_guidance_scale"],
        "image_guidance_scale": flags["image_guidance_scale"],
        "cfg_range": [flags["cfg_range_start"], flags["cfg_range_end"]],
        "negative_prompt": flags["negative_prompt"],
        "scheduler": flags["scheduler"],
        "num_images_per_prompt": flags["num_images_per_prompt"],
        "max_sequence_length": passed["max_sequence_length"],
    }


# Run in the model's env: the adapter loads the tiny pipeline with the YAML's settings; a spy on
# the real OmniGen2Pipeline.__call__ binds every call to its signature, records the keywords and
# calls through (with 2 steps instead of the official 50: 150 transformer passes cost minutes).
SPY = r"""
import inspect, json, sys
import torch
from PIL import Image
from reedit.models.base import EditRequest
from reedit.models.editors.omnigen2 import OmniGen2Editor

settings = json.loads(sys.argv[1])
editor = OmniGen2Editor(OmniGen2Editor.Settings(**settings))
editor.load()
pipeline_type = type(editor.pipe)
real = pipeline_type.__call__
signature = inspect.signature(real)
calls = []

def shown(value):
    if isinstance(value, torch.Generator):
        return {"generator": str(value.device)}
    if isinstance(value, (list, tuple)):
        return [list(v.size) if hasattr(v, "size") and not callable(v.size) else v for v in value]
    return value

def spy(self, *args, **kwargs):
    signature.bind(self, *args, **kwargs)
    calls.append({k: shown(v) for k, v in kwargs.items()})
    return real(self, *args, **{**kwargs, "num_inference_steps": 2})  # recorded: 50

pipeline_type.__call__ = spy
picture = Image.new("RGB", (40, 56), (200, 30, 30))
request = EditRequest("k", "k", "physical", picture, "make it blue", 7)
(official,) = editor.edit([request])

def edit_with_global_state(state):
    torch.manual_seed(state)
    (result,) = editor.edit([request])
    return result.image.tobytes()

seeded = edit_with_global_state(1) == edit_with_global_state(2)
editor.seeds_global_rngs = False
unseeded = edit_with_global_state(1) == edit_with_global_state(2)
settings.update(scheduler="dpmsolver++", num_inference_steps=2)
solver = OmniGen2Editor(OmniGen2Editor.Settings(**settings))
(solved,) = solver.edit([request])
defaults = {k: p.default for k, p in signature.parameters.items() if p.default is not p.empty}
print(json.dumps({
    "kwargs": calls[0],
    "size": list(official.image.size) if official.ok else official.error,
    "calls": len(calls),
    "same_with_other_global_state": seeded,
    "same_unseeded": unseeded,
    "solver": [type(solver.pipe.scheduler).__name__, solved.ok and list(solved.image.size)],
    "defaults": {k: v for k, v in defaults.items() if isinstance(v, (int, float, str, tuple))},
}))
"""


def test_the_official_settings_reach_the_real_pipeline_call(compose, tmp_path, python, repo, tiny):
    cfg = compose("model=omnigen2", f"model.path={tiny}", f"model.runtime.repo_path={repo}")
    settings = spec_of(cfg.model, "model").settings
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    assert values["runtime"]["repo_path"] == str(repo)
    del values["runtime"]
    wanted = official(repo)
    assert wanted["num_inference_steps"] == 50 and wanted["guidance_scale"] == 5.0
    assert wanted["image_guidance_scale"] == 2.0 and wanted["cfg_range"] == [0.0, 1.0]
    assert wanted["max_sequence_length"] == 1024 and wanted["negative_prompt"].startswith("(((")
    assert {k: values[k] for k in wanted} == wanted  # the YAML holds inference.py's values
    assert values["generator_device"] == "device" and values["resize_output_to_input"] is False

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(repo)]))
    proc = subprocess.run(
        [python, "-c", SPY, json.dumps(values)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    kwargs, defaults = out["kwargs"], out["defaults"]
    assert kwargs["prompt"] == "make it blue" and kwargs["input_images"] == [[40, 56]]
    assert kwargs["num_inference_steps"] == 50
    assert kwargs["text_guidance_scale"] == 5.0 and kwargs["image_guidance_scale"] == 2.0
    assert kwargs["cfg_range"] == [0.0, 1.0] and kwargs["max_sequence_length"] == 1024
    assert kwargs["negative_prompt"] == values["negative_prompt"]
    assert kwargs["generator"] == {"generator": "cpu"}  # the model's device, here the CPU
    assert "height" not in kwargs and "width" not in kwargs  # ignored for one image anyway
    # the input limits are the pipeline's own defaults; its other defaults are not the official
    assert kwargs["max_pixels"] == defaults["max_pixels"] == values["max_pixels"] == 1024 * 1024
    side = defaults["max_input_image_side_length"]
    assert kwargs["max_input_image_side_length"] == side == values["max_input_image_side_length"]
    assert (defaults["num_inference_steps"], defaults["text_guidance_scale"]) == (28, 4.0)
    assert defaults["image_guidance_scale"] == 1.0
    assert out["size"] == [32, 48] == list(policy_size(40, 56, 1024 * 1024, 1024))
    # the input's VAE latent comes from torch's global RNG: the adapter seeds it per edit
    assert out["same_with_other_global_state"] is True and out["same_unseeded"] is False
    assert out["solver"] == ["DPMSolverMultistepScheduler", [32, 48]]  # --scheduler dpmsolver++


# -- set-up errors -----------------------------------------------------------------------------
def test_a_missing_clone_or_weights_path_fails_naming_the_key(tmp_path, python, repo, tiny):
    proc = subprocess.run(
        [sys.executable, "-m", "reedit", "model=omnigen2", f"run_dir={tmp_path / 'a'}"],
        env=reedit_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "model.runtime.repo_path must be set" in proc.stderr
    proc = run_reedit(tmp_path / "b", python, repo, f"model.path={tmp_path}/weights")
    assert proc.returncode == 2 and f"model.path: no such folder: {tmp_path}/weights" in proc.stderr
    proc = run_reedit(
        tmp_path / "c", python, tmp_path, f"model.path={tiny}", "categories=[physical]"
    )
    assert proc.returncode != 0
    assert "cannot import omnigen2" in proc.stderr and "model.runtime.repo_path" in proc.stderr
