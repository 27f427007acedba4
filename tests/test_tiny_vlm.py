"""Tiny random-weight Qwen2.5-VL / Qwen3-VL: build, reload, batched generate, finetune."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from reedit.testing import vlms as tiny_vlm

RED, BLUE = '{"score": 9}', '{"score": 2}'
PROMPTS = (
    "Rate the edit.",
    "Does the edited image follow the instruction? Answer with JSON only.",
    "Give a score from 0 to 10.",
    "Make the sky red.",
    "Is this correct?",
    "Turn the car blue and rate it.",
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread is as fast, and immune to a busy second core."""
    import torch  # a hard dependency: imported, never skipped on

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=tiny_vlm.TINY_VLMS)
def built(request, tmp_path_factory) -> tuple[str, Path]:
    name = request.param
    return name, tiny_vlm.build_vlm(name, tmp_path_factory.mktemp(name) / "model")


def _image(color: str, rng: random.Random, size: tuple[int, int] | None = None):
    from PIL import Image

    base = {"red": (220, 30, 30), "blue": (30, 30, 220)}[color]
    fill = tuple(min(255, max(0, v + rng.randint(-30, 30))) for v in base)
    size = size or (rng.randint(32, 160), rng.randint(32, 160))
    return Image.new("RGB", size, fill)


def _conversation(image, text: str) -> list[dict]:
    return [
        {
            "role": "user",
            "content": [{"type": "image", "image": image}, {"type": "text", "text": text}],
        }
    ]


def _load(path: Path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    processor.tokenizer.padding_side = "left"
    return model, processor


def _generate(model, processor, conversations, max_new_tokens: int = 8):
    import torch

    inputs = processor.apply_chat_template(
        conversations,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs={"padding": True},
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return inputs, out[:, inputs["input_ids"].shape[1] :]


def test_reload_and_batched_generate(built):
    name, path = built
    model, processor = _load(path)
    expected = {"qwen25_vl": "Qwen2_5_VL", "qwen3_vl": "Qwen3VL"}[name]
    assert type(model).__name__ == f"{expected}ForConditionalGeneration"
    assert type(processor).__name__ == f"{expected}Processor"
    assert not model.training

    tok = processor.tokenizer
    assert type(tok).__name__ == "Qwen2Tokenizer"
    assert tok.padding_side == "left"  # saved that way
    ids = {t: tok.convert_tokens_to_ids(t) for t in tiny_vlm.SPECIAL_TOKENS}
    assert len(set(ids.values())) == len(ids)  # seven distinct special tokens
    config = model.config
    assert config.get_text_config().vocab_size == len(tok)
    assert config.image_token_id == ids["<|image_pad|>"]
    assert config.video_token_id == ids["<|video_pad|>"]
    assert config.vision_start_token_id == ids["<|vision_start|>"]
    assert config.vision_end_token_id == ids["<|vision_end|>"]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert model.generation_config.pad_token_id == ids["<|endoftext|>"]
    assert ids["<|im_end|>"] in model.generation_config.eos_token_id

    prompt = processor.apply_chat_template(
        _conversation(_image("red", random.Random(0)), "hi"), add_generation_prompt=True
    )
    assert prompt == (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )

    rng = random.Random(1)
    conversations = [
        _conversation(_image("red", rng, (48, 40)), "Rate the edit."),
        _conversation(_image("blue", rng, (160, 96)), 'Answer {"score": 0} to 10.'),
    ]
    inputs, new = _generate(model, processor, conversations)
    grid = inputs["image_grid_thw"].tolist()
    assert len(grid) == 2 and grid[0] != grid[1]  # really different sizes, small ones
    assert inputs["pixel_values"].shape[0] <= 2 * 16 * 4  # max_pixels: 4x4 tokens of 2x2 patches
    assert inputs["attention_mask"][0, 0] == 0 and inputs["attention_mask"][:, -1].all()  # left pad
    assert new.shape[0] == 2 and 1 <= new.shape[1] <= 8
    assert len(processor.batch_decode(new, skip_special_tokens=True)) == 2

    _, single = _generate(model, processor, conversations[:1])
    assert single.shape[0] == 1


@pytest.mark.parametrize("name", tiny_vlm.TINY_VLMS)
def test_same_seed_builds_are_byte_identical(name, tmp_path):
    a = tiny_vlm.build_vlm(name, tmp_path / "a", seed=3)
    b = tiny_vlm.build_vlm(name, tmp_path / "b", seed=3)
    c = tiny_vlm.build_vlm(name, tmp_path / "c", seed=4)
    files = sorted(p.name for p in a.iterdir())
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= set(
        files
    )
    assert any("chat_template" in f for f in files) or "chat_template" in (
        a / "processor_config.json"
    ).read_text(encoding="utf-8")
    assert files == sorted(p.name for p in b.iterdir())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left behind

    # rebuilding over an existing folder replaces it
    assert tiny_vlm.build_vlm(name, c, seed=3) == c
    assert (c / "model.safetensors").read_bytes() == (a / "model.safetensors").read_bytes()


def test_dirs_and_ensure(tmp_path, monkeypatch):
    monkeypatch.setenv("REEDIT_CACHE", str(tmp_path / "cache"))
    v = tiny_vlm.VERSION
    assert tiny_vlm.tiny_vlm_dir("qwen3_vl") == tmp_path / "cache" / "tiny" / f"qwen3_vl-v{v}"
    assert tiny_vlm.tiny_vlm_dir("qwen25_vl", tmp_path) == tmp_path / "tiny" / f"qwen25_vl-v{v}"
    monkeypatch.delenv("REEDIT_CACHE")
    assert tiny_vlm.tiny_vlm_dir("qwen3_vl") == Path.home() / ".cache/reedit/tiny/qwen3_vl-v1"
    with pytest.raises(ValueError, match="unknown tiny VLM"):
        tiny_vlm.ensure_vlm("llava", tmp_path)

    path = tiny_vlm.ensure_vlm("qwen3_vl", tmp_path)
    assert path == tiny_vlm.tiny_vlm_dir("qwen3_vl", tmp_path)
    assert (path / tiny_vlm.MARKER).is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert tiny_vlm.ensure_vlm("qwen3_vl", tmp_path) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]

    (path / tiny_vlm.MARKER).unlink()  # an interrupted or foreign folder is rebuilt
    assert tiny_vlm.ensure_vlm("qwen3_vl", tmp_path) == path
    assert (path / tiny_vlm.MARKER).is_file()

    # built by other code (an edited recipe, another checkout sharing the cache): rebuilt
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(tiny_vlm, "source_fingerprint", lambda: "edited-recipe")
    assert tiny_vlm.ensure_vlm("qwen3_vl", tmp_path) == path
    assert (path / "model.safetensors").stat().st_mtime_ns != stamp
    assert json.loads((path / tiny_vlm.MARKER).read_text())["recipe_version"] == "edited-recipe"


def test_import_does_not_import_torch():
    code = (
        "import sys, reedit.testing.vlms\n"
        "heavy = [m for m in ('torch', 'transformers', 'tokenizers', 'PIL') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1], timeout=120
    )


def _pairs(n: int, seed: int):
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        color = ("red", "blue")[i % 2]
        target = RED if color == "red" else BLUE
        pairs.append((_conversation(_image(color, rng), rng.choice(PROMPTS)), target))
    return pairs


@pytest.mark.parametrize("name", tiny_vlm.TINY_VLMS)
def test_finetune_makes_answers_depend_on_the_image(name, tmp_path):
    path = tiny_vlm.build_vlm(name, tmp_path / "m")
    tiny_vlm.finetune(path, _pairs(16, seed=0), steps=200, lr=3e-3, seed=0)

    model, processor = _load(path)
    rng = random.Random(99)  # unseen shades, sizes and prompt
    colors = ["red", "blue", "blue", "red"]
    conversations = [
        _conversation(_image(c, rng), "How well does this edit follow the instruction?")
        for c in colors
    ]
    _, new = _generate(model, processor, conversations, max_new_tokens=12)
    answers = processor.batch_decode(new, skip_special_tokens=True)
    assert answers == [RED if c == "red" else BLUE for c in colors]
    _, one = _generate(model, processor, conversations[1:2], max_new_tokens=12)
    assert processor.batch_decode(one, skip_special_tokens=True) == [BLUE]


def test_finetune_is_deterministic(tmp_path):
    pairs = _pairs(4, seed=1)
    a = tiny_vlm.build_vlm("qwen25_vl", tmp_path / "a")
    b = tiny_vlm.build_vlm("qwen25_vl", tmp_path / "b")
    before = (a / "model.safetensors").read_bytes()
    tiny_vlm.finetune(a, pairs, steps=15, seed=5)
    tiny_vlm.finetune(b, pairs, steps=15, seed=5)
    after = (a / "model.safetensors").read_bytes()
    assert after != before and after == (b / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").is_file()  # the processor files stay
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
