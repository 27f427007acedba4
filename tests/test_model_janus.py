"""Janus-4o-7B (``model=janus``): Janus's own code (the ``Janus/`` snapshot) in its own env
(transformers 4.55.0: Janus does not import under transformers 5), a tiny random-weight model built
from Janus's classes, the Janus-4o edit recipe checked step by step against the real modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, reedit_env
from external import external, model_env, tiny_model

pytestmark = pytest.mark.external

# The Janus pyproject's dependencies that the main env lacks, with transformers 4.x. --no-deps:
# timm would pull a second torch into the venv; torch, torchvision, numpy, safetensors, accelerate
# come from the main env (so transformers' own dependencies are listed here).
PINS = [
    "--no-deps",
    "transformers==4.55.0",
    "tokenizers==0.21.4",
    "huggingface_hub==0.36.2",
    "timm==1.0.31",
    "attrdict==2.0.1",
    "six==1.17.0",
    "einops==0.8.2",
    "sentencepiece==0.2.3",
]
# Test-only: registers the tiny SigLIP and VQ sizes in Janus's size tables at interpreter start.
STARTUP = ["tiny_external.janus_sizes"]


@pytest.fixture(scope="module")
def repo() -> Path:
    return external("Janus")


@pytest.fixture(scope="module")
def python(repo) -> Path:
    return model_env("janus", pip=PINS, startup=STARTUP)


@pytest.fixture(scope="module")
def tiny(python, repo) -> Path:
    return tiny_model(python, "janus", repo=repo)


def reedit(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reedit", *args],
        cwd=ROOT,
        env=reedit_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "records" / "edit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_edits_through_python_m_reedit_in_the_worker(python, repo, tiny, tmp_path):
    from PIL import Image

    base = (
        "dataset=demo",
        "categories=[physical]",
        "limit=1",
        "refiner=none",
        "judge=none",
        "progress=false",
        "model=janus",
        f"model.path={tiny}",
        "model.dtype=float32",
        "model.runtime.conda=null",
        f"+model.runtime.python={python}",
        f"model.runtime.repo_path={repo}",
    )
    runs = {
        "a": (),
        "b": (),  # the same seed again
        "c": ("seed=1", "model.resize_output_to_input=true"),
    }
    for name, extra in runs.items():
        proc = reedit(*base, f"run_dir={tmp_path / name}", *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
    a, b, c = (records(tmp_path / name) for name in runs)
    assert [r["status"] for r in a + b + c] == ["ok"] * 3
    info = a[0]["info"]
    assert info["runtime"] == "worker" and info["size_policy"].startswith("always image_size")
    # inside the worker: the env's transformers, the main env's torch
    assert info["versions"] == {"torch": torch.__version__, "transformers": "4.55.0"}
    for ra, rb, rc in zip(a, b, c):
        img_a = (tmp_path / "a" / ra["image"]).read_bytes()
        assert img_a == (tmp_path / "b" / rb["image"]).read_bytes()  # same seed: same bytes
        out_a = Image.open(tmp_path / "a" / ra["image"])
        assert out_a.size == (32, 32) == tuple(ra["size"])  # the tiny model's image_size
        source = tmp_path / "c" / "sources" / rc["category"] / f"{rc['sample_id']}.png"
        out_c = Image.open(tmp_path / "c" / rc["image"])
        size = Image.open(source).size
        assert out_c.size == size != out_a.size  # resize_output_to_input: the input's size
        # seed=1 changed the tokens: seed 0's square, resized the same way, is another image
        resized_a = out_a.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        assert resized_a.tobytes() != out_c.convert("RGB").tobytes()
    assert a[0]["seed"] == b[0]["seed"] != c[0]["seed"]


# Runs in the Janus env: the adapter's real call, spied on at the real modules.
SPY = r"""
import dataclasses, inspect, json, sys
import torch
from PIL import Image
from reedit.models.base import EditRequest
from reedit.models.editors.janus import JanusEditor

settings, runs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
editor = JanusEditor(JanusEditor.Settings(**settings))
editor.load()
model, proc = editor.model, editor.processor
vq, lm = model.gen_vision_model, model.language_model.model
seen = {}

def spy(owner, name, key, bind=True):
    real = getattr(owner, name)
    sig = inspect.signature(real) if bind else None
    def wrapper(*args, **kwargs):
        out = real(*args, **kwargs)
        call = sig.bind(*args, **kwargs).arguments if bind else {}
        seen.setdefault(key, []).append((call, args, kwargs, out))
        return out
    setattr(owner, name, wrapper)

spy(proc, "apply_sft_template_for_multi_turn_prompts", "template")
spy(vq, "encode", "encode")
spy(vq, "decode_code", "decode")
spy(lm, "forward", "lm")
spy(model.gen_head, "forward", "head")
spy(torch, "multinomial", "multinomial", bind=False)

torch.set_grad_enabled(False)  # the spied tensors are inference tensors
image = Image.new("RGB", (48, 30), (200, 30, 10))  # not square: padded to 32x32
instruction = "make the ball blue"
emb = lm.get_input_embeddings()
tok = proc.tokenizer
report = []
for run in runs:
    seen.clear()
    editor.settings = dataclasses.replace(editor.settings, **run)
    (res,) = editor.edit([EditRequest("k", "k", "c", image, instruction, 7)])
    assert res.ok, res.error
    s = editor.settings
    w, w2, t = s.guidance_scale, s.image_guidance_scale, s.temperature
    (tcall, _, _, prompt), = seen["template"]
    n = proc.num_image_tokens
    slots = "<begin_of_image>" + "<image_placeholder>" * n + "<end_of_image>"
    slots += "<begin_of_image>" + "<｜▁pad▁｜>" * 4 + "<end_of_image>"
    want_prompt = "<|User|>: " + slots + instruction + "\n\n<|Assistant|>:"
    ids = torch.tensor(tok.encode(want_prompt + "<begin_of_image>"))
    pixels = proc.image_processor([image], return_tensors="pt")["pixel_values"]
    (_, eargs, _, (_, _, (_, _, codes))), = seen["encode"]
    steps = seen["lm"]
    first = steps[0][2]["inputs_embeds"]
    image_pos = ids == proc.image_id
    pad_pos = ids == proc.pad_id
    siglip = model.aligner(model.vision_model(pixels))[0]
    plain = emb(ids)
    blank = ids.clone(); blank[1:-1] = proc.pad_id
    close = lambda x, y: bool(torch.allclose(x, y, atol=1e-5))
    formula = []
    for (_, hargs, _, logits), (_, margs, _, token) in zip(seen["head"], seen["multinomial"]):
        full, part, uncond = logits[0::3], logits[1::3], logits[2::3]
        cond = (full + w2 * part) / (1 + w2)
        want = torch.softmax((uncond + w * (cond - uncond)) / t, dim=-1)
        formula.append(close(margs[0], want))
    fed = [st[2]["inputs_embeds"] for st in steps[1:]]
    sampled = torch.cat([m[3] for m in seen["multinomial"]], dim=1)
    (dcall, dargs, _, decoded), = seen["decode"]
    out = torch.from_numpy(__import__("numpy").asarray(res.image)).float()
    report.append({
        "template": {k: v for k, v in tcall.items() if k != "self"},
        "prompt_is_the_recipes": prompt == want_prompt,
        "encode_input_is_the_padded_square": close(eargs[0], pixels),
        "rows": int(first.shape[0]),
        "full_siglip": close(first[0, image_pos], siglip),
        "part_siglip": close(first[1, image_pos], siglip),
        "full_vq_over_pads": close(first[0, pad_pos], model.prepare_gen_img_embeds(codes)),
        "part_pads_are_pads": close(first[1, pad_pos], plain[pad_pos]),
        "part_text_is_the_prompt": close(first[1, ~image_pos], plain[~image_pos]),
        "uncond_is_blank": close(first[2], emb(blank)),
        "uses_cache": [st[2]["past_key_values"] is not None for st in steps],
        "formula": formula,
        "feeds_the_sampled_token_to_all_rows": all(
            close(f[:, 0], model.prepare_gen_img_embeds(sampled[0, i].repeat(3)))
            for i, f in enumerate(fed)
        ),
        "decode": {"shape": dcall["shape"], "codes": dcall["code_b"].tolist()},
        "sampled": sampled[0].tolist(),
        "output_size": list(res.image.size),
        "output_is_the_decoded_square": bool(
            (out - ((decoded[0].permute(1, 2, 0) + 1) / 2 * 255).clamp(0, 255).floor()).abs().max()
            <= 1
        ),
    })
print("REPORT " + json.dumps(report))
"""


def test_the_yaml_defaults_reach_the_real_modules_as_the_recipe_says(compose, python, repo, tiny):
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(compose("model=janus").model)
    official = {k: node[k] for k in ("guidance_scale", "image_guidance_scale", "temperature")}
    assert official == {"guidance_scale": 5.0, "image_guidance_scale": 5.0, "temperature": 1.0}
    assert node["dtype"] == "bfloat16" and node["attn_implementation"] == "eager"
    assert node["path"] == "FreedomIntelligence/Janus-4o-7B"
    settings = {k: v for k, v in node.items() if k not in ("_target_", "runtime")}
    settings.update(path=str(tiny), dtype="float32")  # the tiny model is float32
    # the YAML's values; then distinct ones, so that a swapped weight would show
    runs = [{}, {"guidance_scale": 3.0, "image_guidance_scale": 1.5, "temperature": 0.7}]
    env = reedit_env(PYTHONPATH=f"{ROOT}:{repo}")
    proc = subprocess.run(
        [python, "-c", SPY, json.dumps(settings), json.dumps(runs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("REPORT "))
    for report in json.loads(line.removeprefix("REPORT ")):
        assert report["template"]["sft_format"] == "deepseek"
        assert report["template"]["system_prompt"] == ""
        roles = [turn["role"] for turn in report["template"]["conversations"]]
        assert roles == ["<|User|>", "<|Assistant|>"]
        assert report["prompt_is_the_recipes"] and report["encode_input_is_the_padded_square"]
        assert report["rows"] == 3
        for fact in ("full_siglip", "part_siglip", "full_vq_over_pads", "part_pads_are_pads"):
            assert report[fact], fact
        assert report["part_text_is_the_prompt"] and report["uncond_is_blank"]
        assert report["uses_cache"] == [False, True, True, True]  # 4 tokens: (32 / 16) ** 2
        assert report["formula"] == [True] * 4
        assert report["feeds_the_sampled_token_to_all_rows"]
        assert report["decode"] == {"shape": [1, 8, 2, 2], "codes": [report["sampled"]]}
        assert report["output_size"] == [32, 32] and report["output_is_the_decoded_square"]


def test_a_missing_clone_or_weights_fail_at_set_up_naming_the_key(python, tmp_path):
    proc = reedit("model=janus", "dataset=demo", "limit=1", f"run_dir={tmp_path / 'a'}")
    assert proc.returncode == 2 and "model.runtime.repo_path must be set" in proc.stderr
    proc = reedit(
        "model=janus",
        "dataset=demo",
        f"run_dir={tmp_path / 'b'}",
        f"model.runtime.repo_path={tmp_path}",
        f"model.path={tmp_path / 'no_weights'}",
    )
    assert proc.returncode == 2 and "model.path: no such folder" in proc.stderr
    # a repo_path without Janus: the worker says which setting to fix
    proc = reedit(
        "model=janus",
        "dataset=demo",
        "categories=[physical]",
        "limit=1",
        "refiner=none",
        "judge=none",
        "progress=false",
        f"run_dir={tmp_path / 'c'}",
        "model.runtime.conda=null",
        f"+model.runtime.python={python}",
        f"model.runtime.repo_path={tmp_path}",
        f"model.path={tmp_path}",
    )
    assert proc.returncode != 0
    assert "cannot import janus.models" in proc.stderr
    assert "set model.runtime.repo_path to the clone" in proc.stderr
