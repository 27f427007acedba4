"""Ovis-U1-3B (``model=ovis_u1``) on a STAND-IN of its Hugging Face remote code, in its worker.

Ovis-U1's model code is remote code that comes with the checkpoint (``trust_remote_code=True``);
it cannot run here (its vision tower imports the CUDA-only ``flash_attn``) and no repository holds
it, so ``tests/standins/ovis_u1_remote/`` stands in for it: the real files' class and method
names, signatures and return shapes (read from the remote code), with tiny real computations.
The adapter runs unchanged: a worker in a venv with the recipe's transformers 4.51.3,
tokenizers 0.21.1 and diffusers 0.31.0 (over the main env's torch) loads a tiny checkpoint folder
(``tests/tiny_external/ovis_u1.py``: ``config.json`` with ``auto_map``, the stand-in files,
tokenizer, image processor, bfloat16 weights) through ``AutoModelForCausalLM.from_pretrained(...,
trust_remote_code=True)``. The real model runs in the ``gpu`` test when its weights are there.

The external tests are marked one by one (not with ``pytestmark``): the ``gpu`` test must not be
selected by ``-m external``, where CI turns its skip (no weights) into a failure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TESTS, reedit_env
from external import model_env, tiny_model
from PIL import Image

from reedit.config import spec_of
from reedit.models.editors.ovis_u1 import LLM_KWARGS, OvisU1Editor

GENERIC = "<image>\nGenerate an image."  # test_img_edit.py pipe_img_edit: uncond_prompt

external = pytest.mark.external
STANDIN = TESTS / "standins" / "ovis_u1_remote"
# the recipe's pins that matter to the remote code (reedit/runtime/envs/ovis_u1.yml); torch, PIL,
# numpy and accelerate come from the main env
PINS = ["transformers==4.51.3", "tokenizers==0.21.1", "diffusers==0.31.0", "huggingface-hub<1.0"]
AREA = 10000  # model.max_area in the runs: the demo's 256x256 scenes -> 96x96 (below)
# The real signatures, read from the remote code of AIDC-AI/Ovis-U1-3B (annotations left out);
# the stand-in must have exactly these, and the adapter's calls must bind to them.
REAL_SIGNATURES = {
    # modeling_ovis_u1.py, class OvisU1:
    #   def generate_img(self, inputs: Optional[torch.Tensor] = None, cond = None,
    #                    no_both_cond = None, no_txt_cond = None, **kwargs)
    #   (reads kwargs.get('height', 1024), 'width' 1024, 'num_steps' 50, 'seed' 42,
    #    kwargs.pop('img_cfg', 1.5), kwargs.pop('txt_cfg', 5))
    "generate_img": "(self, inputs=None, cond=None, no_both_cond=None, no_txt_cond=None, **kwargs)",
    #   def generate_condition(self, inputs: Optional[torch.Tensor] = None, **kwargs)
    "generate_condition": "(self, inputs=None, **kwargs)",
    #   def preprocess_inputs(self, text_or_conversations, images, generation_preface='',
    #       return_labels=False, propagate_exception=True, frame_selector=None,
    #       multimodal_type="single_image", fix_sample_overall_length_navit=False,
    #       min_pixels=None, max_pixels=None, enable_thinking=False)
    "preprocess_inputs": (
        "(self, text_or_conversations, images, generation_preface='', return_labels=False, "
        "propagate_exception=True, frame_selector=None, multimodal_type='single_image', "
        "fix_sample_overall_length_navit=False, min_pixels=None, max_pixels=None, "
        "enable_thinking=False)"
    ),
    # modeling_ovis_u1.py, class Aimv2VisualTokenizer:
    #   def smart_resize(self, height: int, width: int, factor: int = 28,
    #                    min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280)
    "smart_resize": "(self, height, width, factor=28, min_pixels=3136, max_pixels=1003520)",
    # modeling_yak.py, class YakModel: def process_image_aspectratio(self, image, size)
    "process_image_aspectratio": "(self, image, size)",
}


@pytest.fixture(scope="module")
def env_python() -> Path:
    return model_env("ovis_u1", pip=PINS)


@pytest.fixture(scope="module")
def tiny(env_python, tmp_path_factory) -> Path:
    """The tiny checkpoint folder; the stand-in's digest is an argument (the builder ignores it)
    so that a change to the stand-in is a new build. Dynamic modules go to a private cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_MODULES_CACHE", str(tmp_path_factory.mktemp("hf_modules")))
    digest = hashlib.sha256()
    for path in sorted(STANDIN.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    yield tiny_model(env_python, "ovis_u1", digest.hexdigest()[:16])
    mp.undo()


def reedit(run_dir: Path, *overrides: str, env: dict | None = None, timeout: float = 900):
    cmd = [sys.executable, "-m", "reedit", "dataset=demo", "categories=[physical]"]
    cmd += ["refiner=none", "judge=none", "progress=false", f"run_dir={run_dir}", "model=ovis_u1"]
    return subprocess.run(
        [*cmd, *overrides],
        env=env or reedit_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def edited(run_dir: Path, *overrides: str, env: dict | None = None) -> list[dict]:
    proc = reedit(run_dir, *overrides, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = (run_dir / "records" / "edit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records and all(r["status"] == "ok" for r in records), records
    for r in records:
        with Image.open(run_dir / r["image"]) as im:
            assert list(im.size) == r["size"]
    return records


def pixels(run_dir: Path, record: dict) -> bytes:
    with Image.open(run_dir / record["image"]) as im:
        return im.convert("RGB").tobytes()


@external
def test_edits_through_python_m_reedit_in_its_worker(env_python, tiny, tmp_path):
    tiny_run = [f"model.path={tiny}", "model.num_inference_steps=2", f"model.max_area={AREA}"]
    in_env = ["model.runtime.conda=null", f"++model.runtime.python={env_python}"]
    first = edited(tmp_path / "a", "limit=2", *tiny_run, *in_env)
    again = edited(tmp_path / "b", "limit=2", *tiny_run, *in_env)
    for r in first:
        info = r["info"]
        assert info["size_policy"] == OvisU1Editor.size_policy and info["runtime"] == "worker"
        assert info["versions"]["transformers"] == "4.51.3"  # the env's own, not the main 5.x
        assert info["dtype"] == "bfloat16" and info["unexpected_keys"] == []
        # smart_resize(256, 256, factor=32, max_pixels=10000): 256*256 > 10000, so each side is
        # floor(256 / sqrt(65536 / 10000) / 32) * 32 = floor(3.125) * 32 = 96
        assert r["size"] == [96, 96]
    assert [pixels(tmp_path / "a", r) for r in first] == [pixels(tmp_path / "b", r) for r in again]
    assert pixels(tmp_path / "a", first[0]) != pixels(tmp_path / "a", first[1])  # two scenes

    # seed=1 and the output resized to the input, through the YAML's own runtime (conda:
    # ovis_u1) on the conda stand-in of tests/standins, whose env "ovis_u1" is the test venv
    envs = tmp_path / "conda"
    (envs / "envs").mkdir(parents=True)
    (envs / "envs" / "ovis_u1").symlink_to(env_python.parent.parent)
    path = f"{TESTS / 'standins'}{os.pathsep}{os.environ['PATH']}"
    conda = reedit_env(PATH=path, STANDIN_ENVS=str(envs))
    other = edited(
        tmp_path / "c",
        "limit=1",
        "seed=1",
        "model.resize_output_to_input=true",
        *tiny_run,
        env=conda,
    )
    assert other[0]["sample_id"] == first[0]["sample_id"] and other[0]["seed"] != first[0]["seed"]
    assert other[0]["size"] == [256, 256]  # the demo scene's own size
    with Image.open(tmp_path / "a" / first[0]["image"]) as im:  # seed 0, resized the same way
        upscaled = im.convert("RGB").resize((256, 256), Image.Resampling.LANCZOS)
    with Image.open(tmp_path / "c" / other[0]["image"]) as im:
        diff = sum(abs(a - b) for a, b in zip(upscaled.tobytes(), im.convert("RGB").tobytes()))
    assert diff / (256 * 256 * 3) > 1.0  # another seed, another image


SPY = r"""
import inspect, json, sys
import torch
from PIL import Image
from reedit.models.base import EditRequest
from reedit.models.editors.ovis_u1 import OvisU1Editor

settings, out = json.loads(sys.argv[1]), sys.argv[2]
editor = OvisU1Editor(OvisU1Editor.Settings(**settings))
editor.load()
model = editor.model
calls, signatures = [], {}

def shown(value):
    if isinstance(value, torch.Tensor):
        return {"tensor": list(value.shape), "dtype": str(value.dtype).replace("torch.", "")}
    if isinstance(value, Image.Image):
        return {"image": list(value.size), "colors": len(value.getcolors(1 << 24))}
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown(v) for v in value]
    return value

def spy(owner, name):
    cls = type(owner)
    real = getattr(cls, name)
    signature = inspect.signature(real)
    plain = [p.replace(annotation=p.empty) for p in signature.parameters.values()]
    signatures[name] = str(signature.replace(parameters=plain, return_annotation=signature.empty))
    var_kw = [p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD]
    def recorded(self, *args, **kwargs):
        if not sys._getframe(1).f_code.co_filename.endswith("editors/ovis_u1.py"):
            return real(self, *args, **kwargs)  # a call of the remote code's own
        arguments = signature.bind(self, *args, **kwargs).arguments  # TypeError: no fit
        arguments = {k: v for k, v in arguments.items() if k != "self"}
        for k in var_kw:
            arguments.update(arguments.pop(k, {}))
        calls.append({"method": name, "arguments": shown(arguments)})
        return real(self, *args, **kwargs)
    setattr(cls, name, recorded)

for owner, name in [
    (model, "preprocess_inputs"), (model, "generate_condition"), (model, "generate_img"),
    (model.get_visual_tokenizer(), "smart_resize"),
    (model.visual_generator, "process_image_aspectratio"),
]:
    spy(owner, name)

def request(size, seed, text="make the sky green"):
    image = Image.new("RGB", size, (30, 90, 200))
    image.paste((250, 220, 40), (4, 4, size[0] // 2, size[1] // 2))
    return EditRequest("s", "s", "physical", image, text, seed)

result = {"signatures": signatures}
(one,) = editor.edit([request((96, 64), 7, "  make the sky green ")])  # the YAML's values
assert one.ok, one.error
result["calls"], result["size"] = list(calls), list(one.image.size)
editor.settings.num_inference_steps = 2
a, b, c = editor.edit([request((100, 70), 3), request((100, 70), 3), request((100, 70), 4)])
result["sizes"] = [list(r.image.size) for r in (a, b, c)]
result["same_seed_same"] = a.image.tobytes() == b.image.tobytes()
result["other_seed_other"] = a.image.tobytes() != c.image.tobytes()
with torch.inference_mode():  # the adapter's call without its seeding of the global RNG
    torch.manual_seed(11)
    x = editor._generate(request((100, 70), 3))
    torch.manual_seed(12)
    y = editor._generate(request((100, 70), 3))
result["global_rng_matters"] = x.tobytes() != y.tobytes()
editor.settings.resize_output_to_input = True
(d,) = editor.edit([request((100, 70), 3)])
result["resized"] = list(d.image.size)

from pathlib import Path  # a checkpoint that lacks a weight: loading fails, naming it
from safetensors.torch import load_file, save_file
source, broken = Path(settings["path"]), Path(out).with_name("broken")
broken.mkdir()
for f in source.iterdir():
    if f.name != "model.safetensors":
        (broken / f.name).symlink_to(f)
weights = load_file(source / "model.safetensors")
del weights["visual_generator.backbone.final_out.weight"]
save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
try:
    OvisU1Editor(OvisU1Editor.Settings(**{**settings, "path": str(broken)})).load()
except RuntimeError as exc:
    result["missing"] = str(exc)
json.dump(result, open(out, "w"))
"""


@external
def test_the_yaml_and_the_script_values_reach_the_remote_code(compose, env_python, tiny, tmp_path):
    """The adapter's calls bind to the stand-in's methods, whose signatures are the real ones
    (REAL_SIGNATURES); the YAML's values reach them as test_img_edit.py passes them."""
    spec = spec_of(compose("model=ovis_u1", f"model.path={tiny}").model, "model")
    fields = dataclasses.fields(spec.settings)
    settings = {f.name: getattr(spec.settings, f.name) for f in fields if f.name != "runtime"}
    out = tmp_path / "spy.json"
    proc = subprocess.run(
        [env_python, "-c", SPY, json.dumps(settings), str(out)],
        env=dict(os.environ, PYTHONPATH=str(TESTS.parent)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(out.read_text())
    assert got["signatures"] == REAL_SIGNATURES

    calls = got["calls"]
    by = {m: [c["arguments"] for c in calls if c["method"] == m] for m in REAL_SIGNATURES}
    # test_img_edit.py: height, width = visual_tokenizer.smart_resize(h, w, factor=32); with
    # max_area null nothing else is passed (the model's own max_pixels); then, per condition,
    # smart_resize(h, w, max_pixels=visual_tokenizer.image_processor.min_pixels) (4096 here)
    assert by["smart_resize"][0] == {"height": 64, "width": 96, "factor": 32}
    assert by["smart_resize"][1:] == [{"height": 64, "width": 96, "max_pixels": 4096}] * 3
    # the white image, the input, the input: each fitted to the output size (W, H)
    shapes = [
        (c["image"]["image"], c["image"]["colors"], c["size"])
        for c in by["process_image_aspectratio"]
    ]
    assert shapes == [([96, 64], 1, [96, 64]), ([96, 64], 2, [96, 64]), ([96, 64], 2, [96, 64])]
    prompts = [c["text_or_conversations"] for c in by["preprocess_inputs"]]
    assert prompts == [GENERIC, GENERIC, "<image>\nmake the sky green"]  # instruction stripped
    for c in by["preprocess_inputs"]:
        assert {
            k: c[k] for k in ("generation_preface", "return_labels", "propagate_exception")
        } == {
            "generation_preface": None,
            "return_labels": False,
            "propagate_exception": True,  # the script's False would swap in a blank image
        }
        assert (
            c["multimodal_type"] == "single_image" and c["fix_sample_overall_length_navit"] is False
        )
    yaml = spec.settings
    values = {"num_steps": yaml.num_inference_steps, "txt_cfg": yaml.guidance_scale}
    values |= {"img_cfg": yaml.image_guidance_scale, "seed": 7, "height": 64, "width": 96}
    assert values == {
        "num_steps": 50,
        "txt_cfg": 6.0,
        "img_cfg": 1.5,
        "seed": 7,
        "height": 64,
        "width": 96,
    }
    assert len(by["generate_condition"]) == 3
    for c in by["generate_condition"]:
        assert {"inputs", "pixel_values", "attention_mask", "grid_thws"} <= set(c)
        assert c["pixel_values"]["dtype"] == "bfloat16"
        assert {k: c[k] for k in (*LLM_KWARGS, *values)} == {**LLM_KWARGS, **values}
    (img,) = by["generate_img"]
    assert {k: img[k] for k in values} == values  # generate_img's own txt_cfg 5 never applies
    assert set(img["cond"]) == {"txt", "vae_pixel_values"}
    assert img["cond"]["vae_pixel_values"]["tensor"] == [1, 3, 64, 96]
    assert set(img["no_both_cond"]) == set(img["no_txt_cond"]) == {"txt"}
    assert got["size"] == [96, 64]

    # smart_resize(70, 100, factor=32): round(2.1875) * 32 = 64, round(3.125) * 32 = 96
    assert got["sizes"] == [[96, 64]] * 3 and got["resized"] == [100, 70]
    assert got["same_seed_same"] and got["other_seed_other"]
    assert got["global_rng_matters"]  # the VAE latent's sample: why the adapter seeds it
    assert "lacks weights" in got["missing"] and "final_out.weight" in got["missing"]


@external
@pytest.mark.parametrize(
    "override,named",
    [
        ("model.path=/nonexistent/ovis_u1", "model.path: no such folder"),
        ("model.path={empty}", "has no config.json"),
        ("model.dtype=float16", "model.dtype must be 'bfloat16'"),
        ("model.guidance_scale=null", "model.guidance_scale"),
        ("", "model.runtime.conda"),  # the YAML's conda env ovis_u1, absent here
    ],
)
def test_setup_errors_name_the_key(tmp_path, override, named):
    envs = tmp_path / "no_envs"
    path = f"{TESTS / 'standins'}{os.pathsep}{os.environ['PATH']}"
    env = reedit_env(PATH=path, STANDIN_ENVS=str(envs))  # a conda that has no ovis_u1
    args = [override.format(empty=tmp_path)] if override else []
    proc = reedit(tmp_path / "run", "limit=1", *args, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert named in proc.stderr, proc.stderr[-3000:]


def real_weights() -> str | None:
    """REEDIT_OVIS_U1_PATH, else the Hugging Face cache's AIDC-AI/Ovis-U1-3B, else None."""
    if os.environ.get("REEDIT_OVIS_U1_PATH"):
        return os.environ["REEDIT_OVIS_U1_PATH"]
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download("AIDC-AI/Ovis-U1-3B", local_files_only=True)
    except Exception:  # not in the cache
        return None


@pytest.mark.gpu
def test_the_real_model_on_a_gpu(tmp_path):
    """The real Ovis-U1-3B (its own remote code, flash-attn) in its own environment: the YAML's
    conda env ``ovis_u1``, or the python of REEDIT_OVIS_U1_PYTHON (reedit/runtime/envs)."""
    weights = real_weights()
    if not weights:
        pytest.skip(
            "needs the real weights: set REEDIT_OVIS_U1_PATH=<a download of AIDC-AI/Ovis-U1-3B> "
            "(or `hf download AIDC-AI/Ovis-U1-3B` into the Hugging Face cache)"
        )
    python = os.environ.get("REEDIT_OVIS_U1_PYTHON")
    runtime = ["model.runtime.conda=null", f"++model.runtime.python={python}"] if python else []
    records = edited(tmp_path / "real", "limit=2", "gpus=[0]", f"model.path={weights}", *runtime)
    for r in records:
        assert r["size"] == [256, 256]  # smart_resize(256, 256, factor=32) of the demo scenes
        assert r["info"]["device"] == "cuda:0" and r["info"]["unexpected_keys"] == []
        assert r["info"]["versions"]["transformers"] == "4.51.3"
