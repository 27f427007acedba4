"""HiDream-E1.1 on the repository's own code (``REEDIT_EXTERNAL``/HiDream-E1), in its own venv:
every package from the main env (the E1.1 path needs nothing else), with a tiny I1-Full-style
pipeline folder, a tiny Llama and a sharded E1.1-style transformer with other random weights
(``tiny_external/hidream_e1.py``). The official settings are read from the snapshot's
``inference_e1_1.py`` (``edit_image``'s defaults, ``resize_image``, ``load_safetensors``)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import ROOT, reedit_env
from external import external, model_env, tiny_model, versions

from reedit.config import spec_of
from reedit.models.editors.hidream_e1 import HiDreamE1Editor

pytestmark = pytest.mark.external

# The runs' speed-ups (each a setting): 2 steps (1 edit + 1 refine step at refine_strength 0.3),
# float32 on the CPU, inputs at 128x128 (the demo's 256 px squares) and max_seq at the tiny
# transformer's own 256 tokens instead of 8192.
FAST = (
    "model.num_inference_steps=2",
    "model.dtype=float32",
    f"model.max_area={128 * 128}",
    "model.max_seq=256",
)


@pytest.fixture(scope="module")
def repo() -> Path:
    return external("HiDream-E1")


@pytest.fixture(scope="module")
def python(repo) -> Path:
    return model_env("hidream_e1")


@pytest.fixture(scope="module")
def tiny(python, repo) -> Path:
    return tiny_model(python, "hidream_e1", repo=repo)


def weights(tiny: Path) -> tuple[str, ...]:
    return (
        f"model.path={tiny / 'HiDream-I1-Full'}",
        f"model.llama_path={tiny / 'Llama-3.1-8B-Instruct'}",
        f"model.edit_transformer_path={tiny / 'HiDream-E1-1' / 'transformer'}",
    )


def reedit(*overrides: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "reedit", "dataset=demo", "refiner=none", "judge=none"]
    argv += ["progress=false", "model=hidream_e1", *overrides]
    return subprocess.Popen(
        argv, env=reedit_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finished(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def edits(proc: subprocess.Popen, run_dir: Path) -> list[dict]:
    done = finished(proc)
    assert done.returncode == 0, done.stderr[-4000:]
    records = [json.loads(x) for x in (run_dir / "records" / "edit.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records), records
    return sorted(records, key=lambda r: r["key"])


def in_env(python: Path, repo: Path, tmp_path: Path, script: str, *args: str) -> dict:
    """Run ``script`` in the model's env (the clone and reedit on its path); its last stdout line
    is JSON."""
    path = tmp_path / "script.py"
    path.write_text(script)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo), str(ROOT)]), HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [python, str(path), *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_runs_end_to_end_in_its_env_reproducibly_at_the_policy_size(tmp_path, python, repo, tiny):
    from PIL import Image

    worker = ("model.runtime.conda=null", f"model.runtime.python={python}")
    base = (
        "limit=1",
        "categories=[physical,cultural]",
        *worker,
        f"model.runtime.repo_path={repo}",
        *weights(tiny),
        *FAST,
    )
    runs = {name: tmp_path / name for name in ("a", "b", "seed1", "official_resize")}
    raw = ("model.resize_output_to_input=false",)
    extra = {"a": raw, "b": raw, "seed1": (*raw, "seed=1"), "official_resize": ()}
    started = {k: reedit(*base, *extra[k], f"run_dir={runs[k]}") for k in runs}  # all at once
    a, b, seed1, back = (edits(started[k], runs[k]) for k in runs)

    def png(run: str, record: dict) -> bytes:
        return (runs[run] / record["image"]).read_bytes()

    main_versions = {"diffusers": version("diffusers"), "transformers": version("transformers")}
    assert versions(python, "diffusers", "transformers") == main_versions  # no pins of its own
    for ra, rb, r1, rr in zip(a, b, seed1, back):
        info = ra["info"]
        assert info["runtime"] == "worker" and info["versions"] == main_versions  # the worker's
        assert info["size_policy"] == HiDreamE1Editor.size_policy
        assert info["pipeline"] == "HiDreamImageEditingPipeline" and info["max_seq"] == 256
        # the demo's 256x256 inputs at max_area 128*128: 128x128 (square, multiple of 16)
        assert ra["size"] == [128, 128] and ra["details"] == {"processed_size": [128, 128]}
        assert Image.open(runs["a"] / ra["image"]).size == (128, 128)
        assert png("a", ra) == png("b", rb)  # same seed, other run folder: same bytes
        assert png("seed1", r1) != png("a", ra) and r1["seed"] != ra["seed"]
        # the YAML's default (official): back to the input size, bicubic as result.resize()
        assert rr["size"] == [256, 256] and rr["details"] == {"processed_size": [128, 128]}
        source = Image.open(runs["a"] / "sources" / ra["category"] / f"{ra['key']}.png")
        expected = Image.open(runs["a"] / ra["image"]).resize(source.size, Image.BICUBIC)
        assert Image.open(runs["official_resize"] / rr["image"]).tobytes() == expected.tobytes()


MAPPING = r"""
import inspect, json, sys
import numpy as np
from PIL import Image
import inference_e1_1 as official
from pipeline_hidream_image_editing import HiDreamImageEditingPipeline as Pipe
from diffusers.pipelines.hidream_image.pipeline_output import HiDreamImagePipelineOutput
from reedit.models.base import EditRequest
from reedit.models.editors.hidream_e1 import HiDreamE1Editor, fit_to_area

calls, real = [], Pipe.__call__

def spy(self, *args, **kwargs):
    inspect.signature(real).bind(self, *args, **kwargs)  # the real signature takes them
    seen = {k: v for k, v in kwargs.items() if k not in ("image", "generator")}
    g = kwargs["generator"]
    seen["image_size"] = list(kwargs["image"].size)
    seen["generator"] = [str(g.device), g.initial_seed()]
    seen["max_seq"] = self.transformer.max_seq
    seen["dtypes"] = sorted({str(p.dtype) for p in self.transformer.parameters()})
    llama = self.text_encoder_4.config
    seen["llama"] = [type(self.text_encoder_4).__name__, llama.output_hidden_states,
                     llama.output_attentions]
    calls.append(seen)
    return HiDreamImagePipelineOutput(images=[Image.new("RGB", kwargs["image"].size, (9, 9, 9))])

Pipe.__call__ = spy
editor = HiDreamE1Editor(HiDreamE1Editor.Settings(**json.loads(sys.argv[1])))
inputs = [Image.new("RGB", (300, 200), (200, 30, 30)), Image.new("RGB", (256, 256), (0, 90, 0))]
results = editor.edit([EditRequest(f"k{i}", f"k{i}", "c", im, f"make it blue {i}", 11 + i)
                       for i, im in enumerate(inputs)])
defaults = {k: p.default for k, p in inspect.signature(official.edit_image).parameters.items()
            if p.default is not inspect.Parameter.empty}
# the re-implemented resize_image against the script's own, on noise images of many shapes
rng = np.random.default_rng(0)
same = []
for w, h in [(256, 256), (300, 200), (1024, 1024), (1023, 769), (640, 480), (100, 1500),
             (4100, 2100), (2048, 3000), (50, 30), (1920, 1080), (777, 333)]:
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    ours, theirs = fit_to_area(img, 1024 * 1024), official.resize_image(img)
    equal = ours.size == theirs.size and ours.tobytes() == theirs.tobytes()
    same.append([w, h, list(ours.size), equal])
print(json.dumps({"calls": calls, "defaults": defaults, "same": same,
                  "sizes": [list(r.image.size) for r in results],
                  "official_sizes": [list(official.resize_image(im).size) for im in inputs]}))
"""


def test_the_yaml_is_the_official_call_and_reaches_the_real_pipeline(
    compose, tmp_path, python, repo, tiny
):
    args = ("model=hidream_e1", f"model.runtime.repo_path={repo}", *weights(tiny))
    cfg = compose(*args)
    settings = dataclasses.asdict(spec_of(cfg.model, "model").settings)
    # the reference implementation ran inference_e1_1.py line for line: its preset is the YAML
    preset = compose(*args, "+experiment=re_edit_reference").model
    assert dataclasses.asdict(spec_of(preset, "model").settings) == settings
    settings.pop("runtime")
    got = in_env(python, repo, tmp_path, MAPPING, json.dumps(settings))
    official = got["defaults"]  # inference_e1_1.edit_image's defaults, read in the env
    assert official == {
        "negative_instruction": "low quality, blurry, distorted",
        "guidance_scale": 3.0,
        "img_guidance_scale": 1.5,
        "steps": 28,
        "refine_strength": 0.3,
        "clip_cfg_norm": True,
        "seed": 3,
    }
    m = cfg.model
    assert (m.negative_prompt, m.guidance_scale, m.image_guidance_scale) == (
        official["negative_instruction"],
        official["guidance_scale"],
        official["img_guidance_scale"],
    )
    assert (m.num_inference_steps, m.refine_strength, m.clip_cfg_norm) == (
        official["steps"],
        official["refine_strength"],
        official["clip_cfg_norm"],
    )
    assert (m.max_seq, m.max_area, m.resize_output_to_input) == (8192, 1024 * 1024, True)
    first, second = got["calls"]
    for i, call in enumerate(got["calls"]):
        assert call == {
            "prompt": f"make it blue {i}",
            "negative_prompt": m.negative_prompt,
            "guidance_scale": m.guidance_scale,
            "image_guidance_scale": m.image_guidance_scale,
            "num_inference_steps": m.num_inference_steps,
            "refine_strength": m.refine_strength,
            "reload_keys": {"editing": {}, "refine": {}},  # no weights held or copied
            "clip_cfg_norm": m.clip_cfg_norm,
            "image_size": got["official_sizes"][i],  # the script's resize_image
            "generator": ["cpu", 11 + i],  # one per sample, from its seed, on the device
            "max_seq": 8192,
            "dtypes": ["torch.bfloat16"],
            "llama": ["LlamaForCausalLM", True, True],
        }
    assert first["image_size"] == [1248, 832] and second["image_size"] == [1024, 1024]
    assert got["sizes"] == [[300, 200], [256, 256]]  # resized back (official)
    assert len(got["same"]) == 11 and [s for s in got["same"] if not s[3]] == []
    assert [4100, 2100, [1424, 720], True] in got["same"]  # halved to 2050x1050 first


PARITY = r"""
import json, os, shutil, sys
import numpy as np, torch
from PIL import Image
from safetensors.torch import load_file, save_file
from diffusers import HiDreamImageTransformer2DModel as Transformer
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast
from pipeline_hidream_image_editing import HiDreamImageEditingPipeline as Pipe
import inference_e1_1 as official
from reedit.models.base import EditRequest
from reedit.models.editors.hidream_e1 import HiDreamE1Editor, INDEX

tiny, work = sys.argv[1], sys.argv[2]
I1, LLAMA, E1 = f"{tiny}/HiDream-I1-Full", f"{tiny}/Llama-3.1-8B-Instruct", f"{tiny}/HiDream-E1-1"
STEPS, SIDE, MAX_SEQ, SEED, PROMPT = 4, 128, 256, 3, "make the sky blue"
NEGATIVE = "low quality, blurry, distorted"
grid = np.indices((200, 300)).sum(0) % 256
source = Image.fromarray(np.stack([grid, 255 - grid, grid // 2], -1).astype(np.uint8))

# The official flow (inference_e1_1.py init_models + edit_image), float32 on the CPU.
tokenizer = PreTrainedTokenizerFast.from_pretrained(LLAMA)
llama = LlamaForCausalLM.from_pretrained(LLAMA, output_hidden_states=True,
                                         output_attentions=True, dtype=torch.float32)
transformer = Transformer.from_pretrained(I1, subfolder="transformer")
transformer.max_seq = MAX_SEQ
i1_weights = {k: v.clone() for k, v in transformer.state_dict().items()}
base_state = transformer.state_dict()  # aliases the parameters, as the script's src_dict
e1_state = official.load_safetensors(E1 + "/transformer")
official_keys = {"editing": base_state, "refine": e1_state}
transformer.load_state_dict(e1_state, strict=True)
official_pipe = Pipe.from_pretrained(
    I1, tokenizer_4=tokenizer, text_encoder_4=llama, torch_dtype=torch.float32,
    transformer=transformer).to("cpu", torch.float32)

def official_edit(keys):
    result = official_pipe(prompt=PROMPT, negative_prompt=NEGATIVE,
                  image=official.resize_image(source, SIDE), guidance_scale=3.0,
                  image_guidance_scale=1.5, num_inference_steps=STEPS,
                  generator=torch.Generator("cpu").manual_seed(SEED), refine_strength=0.3,
                  reload_keys=keys, clip_cfg_norm=True)
    return np.asarray(result.images[0].resize(source.size))

reference = official_edit(official_keys)
without_refine = official_edit(None)
aliased = all(torch.equal(base_state[k], e1_state[k]) for k in e1_state)
del official_pipe, transformer, base_state, e1_state, official_keys

# An I1-Full folder without its transformer weights (links to everything else), and an E1.1
# folder whose shards lack one key.
stripped = f"{work}/I1-no-transformer-weights"
for root, _, files in os.walk(I1):
    for name in files:
        if name == "diffusion_pytorch_model.safetensors" and root.endswith("transformer"):
            continue
        target = os.path.join(stripped, os.path.relpath(os.path.join(root, name), I1))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(os.path.join(root, name), target)
short = f"{work}/E1-missing-key"
shutil.copytree(E1 + "/transformer", short)
index = json.load(open(f"{short}/{INDEX}"))
dropped, shard = next(iter(index["weight_map"].items()))
tensors = load_file(f"{short}/{shard}")
tensors.pop(dropped)
save_file(tensors, f"{short}/{shard}")
del index["weight_map"][dropped]
json.dump(index, open(f"{short}/{INDEX}", "w"))

def adapter(path, edit_path):
    return HiDreamE1Editor(HiDreamE1Editor.Settings(
        path=path, llama_path=LLAMA, edit_transformer_path=edit_path, dtype="float32",
        num_inference_steps=STEPS, guidance_scale=3.0, image_guidance_scale=1.5,
        negative_prompt=NEGATIVE, refine_strength=0.3, clip_cfg_norm=True, max_seq=MAX_SEQ,
        max_area=SIDE * SIDE, resize_output_to_input=True, generator_device="device"))

editor = adapter(stripped, E1)
result = editor.edit([EditRequest("k", "k", "c", source, PROMPT, SEED)])[0]
ours = np.asarray(result.image)
state = editor.pipe.transformer.state_dict()
e1 = {k: v for f in sorted(os.listdir(E1 + "/transformer")) if f.endswith(".safetensors")
      for k, v in load_file(f"{E1}/transformer/{f}").items()}
held = [k for k, v in vars(editor).items() if isinstance(v, dict) and any(
    isinstance(x, torch.Tensor) for x in v.values())]
try:
    adapter(I1, short).load()
    strict = "loaded"
except Exception as exc:
    strict = str(exc)
print(json.dumps({
    "identical": bool(np.array_equal(ours, reference)), "shape": list(ours.shape),
    "refine_matters": bool(not np.array_equal(without_refine, reference)),
    "aliased": aliased, "e1_ran": sorted(state) == sorted(e1) and all(
        torch.equal(state[k], e1[k]) for k in e1),
    "i1_differs": any(not torch.equal(i1_weights[k], e1[k]) for k in e1),
    "held": held, "strict": strict, "dropped": dropped}))
"""


def test_output_is_byte_identical_to_the_official_flow_without_its_weight_dicts(
    tmp_path, python, repo, tiny
):
    got = in_env(python, repo, tmp_path, PARITY, str(tiny), str(tmp_path))
    # The official dicts alias: after the strict E1.1 load, "editing" holds the E1.1 weights too.
    assert got["aliased"] and got["i1_differs"]
    assert got["refine_matters"]  # reload_keys=None (no refine stage) is another image
    # The adapter (empty reload_keys, the I1-Full transformer weights absent from its folder,
    # the E1.1 shards loaded strictly) gives the official flow's pixels.
    assert got["identical"] and got["shape"] == [200, 300, 3]
    assert got["e1_ran"] and got["held"] == []
    assert got["strict"].startswith("model.edit_transformer_path: the E1.1 weights do not fit")
    assert got["dropped"] in got["strict"]


def test_missing_settings_fail_at_set_up_naming_the_key_and_the_doctor_passes(
    tmp_path, python, repo, tiny
):
    e1 = f"model.edit_transformer_path={tiny / 'HiDream-E1-1'}"  # its transformer/ is found
    cases = {
        (): "model.edit_transformer_path must be set",
        (e1,): "model.runtime.repo_path must be set",
        (f"model.runtime.repo_path={repo}", f"model.edit_transformer_path={tmp_path}"): (
            f"model.edit_transformer_path: no diffusion_pytorch_model.safetensors.index.json "
            f"in {tmp_path}"
        ),
        (f"model.runtime.repo_path={repo}", e1, f"model.llama_path={tmp_path / 'no'}"): (
            f"model.llama_path: no such folder: {tmp_path / 'no'}"
        ),
    }
    started = {args: reedit(*args, f"run_dir={tmp_path / 'run'}") for args in cases}
    worker = ("model.runtime.conda=null", f"model.runtime.python={python}")
    doctor = [sys.executable, "-m", "reedit.doctor", "model=hidream_e1", *worker, e1]
    doctor += [f"model.runtime.repo_path={repo}", *weights(tiny)[:2]]
    checked = subprocess.run(doctor, env=reedit_env(), capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert re.search(
        r"import pipeline_hidream_image_editing:HiDreamImageEditingPipeline +ok", checked.stdout
    )
    for args, message in cases.items():
        done = finished(started[args])
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr[-2000:])
    assert not (tmp_path / "run" / "records").exists()
