"""Tiny random-weight Qwen-VL models, built offline, for tests and the demo.

:func:`build_vlm` writes a real ``Qwen2_5_VLForConditionalGeneration`` or
``Qwen3VLForConditionalGeneration`` folder (model, processor, tokenizer, chat template, generation
config) that ``AutoModelForImageTextToText`` / ``AutoProcessor`` load back, in well under a second
and about a megabyte. Everything comes from code: a byte-level BPE tokenizer trained on a few
sentences, configs shaped like transformers' own fast tests, weights drawn from a seeded generator.
Two builds with the same seed are byte-identical.

A random-weight model answers gibberish; :func:`finetune` trains it in place on (conversation,
target text) pairs so that it answers something useful (e.g. a JSON score that depends on the
image), deterministically.

Importing this module is light: torch, transformers and tokenizers are imported inside functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VERSION = 1

MARKER = "reedit_tiny_vlm.json"

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# ChatML, one <|vision_start|><|image_pad|><|vision_end|> per image (the processor expands the pad
# to the image's token count); accepts plain-string content and OpenAI-style content parts.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] in ('image', 'image_url') or 'image' in part or 'image_url' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}"
    "{{ part['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# What the tokenizer is trained on: enough for judge prompts and JSON answers to get short ids.
_CORPUS = (
    "You are a helpful assistant.",
    "You are an expert judge of image edits. Look at the source image and the edited image.",
    "Does the edited image follow the instruction? Answer with JSON only.",
    "Rate the edit from 0 to 10. Give a score and a short reason.",
    "Make the sky red. Turn the car blue. Remove the person on the left. Add a hat to the dog.",
    "The image is mostly red. The image is mostly blue. The colors are correct.",
    "The instruction asks for reasoning about the scene before editing.",
    "<CoT> First describe the image, then reason about the instruction. </CoT>",
    "<Re_edit> Change the color of the ball to green. </Re_edit>",
    '{"score": 0}',
    '{"score": 1}',
    '{"score": 2}',
    '{"score": 3}',
    '{"score": 4}',
    '{"score": 5}',
    '{"score": 6}',
    '{"score": 7}',
    '{"score": 8}',
    '{"score": 9}',
    '{"score": 10}',
    '{"answer": "yes"}',
    '{"answer": "no"}',
    '{"score": 7, "reason": "the edit is correct but the background changed"}',
    '{"instruction_following": 8, "consistency": 9, "quality": 7, "overall": 8}',
    '{"success": true, "refined_instruction": "make the apple red"}',
    '{"success": false, "feedback": "no"}',
    "yes no yes no true false null [ ] { } , : 0 1 2 3 4 5 6 7 8 9 10 100 0.5",
)
_TOKENIZER_VOCAB = 512  # byte alphabet (256) + merges; the specials come after


@dataclass(frozen=True)
class Family:
    """One tiny VLM recipe: sizes shaped like transformers' fast tests, the real patch and merge
    sizes, and the real classes (names in ``transformers``)."""

    patch: int
    mean_std: list[float] | None  # None: the image processor's default (OpenAI CLIP)
    vision: dict[str, Any]
    text: dict[str, Any]  # the text config beyond the shared tiny sizes
    config: str
    model: str
    processor: str
    video_processor: str  # module:class


# head_dim 8 -> 4 rotary frequencies, split over (temporal, height, width): mrope [2, 1, 1]
FAMILIES = {
    "qwen25_vl": Family(
        patch=14,
        mean_std=None,
        vision={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 4,
            "hidden_act": "silu",
            "out_hidden_size": 32,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,  # 4x4 merged tokens per window, as the real model
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,
        },
        text={
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 1, 1],
            },
            "max_window_layers": 2,
        },
        config="Qwen2_5_VLConfig",
        model="Qwen2_5_VLForConditionalGeneration",
        processor="Qwen2_5_VLProcessor",
        video_processor="transformers:Qwen2VLVideoProcessor",
    ),
    "qwen3_vl": Family(
        patch=16,
        mean_std=[0.5, 0.5, 0.5],  # Qwen3-VL's preprocessor_config
        vision={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 4,
            "hidden_act": "gelu_pytorch_tanh",
            "out_hidden_size": 32,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 64,  # an 8x8 grid, interpolated to the image
            "deepstack_visual_indexes": [0],
        },
        text={
            "head_dim": 8,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 1, 1],
                "mrope_interleaved": True,
            },
        },
        config="Qwen3VLConfig",
        model="Qwen3VLForConditionalGeneration",
        processor="Qwen3VLProcessor",
        video_processor="transformers.models.qwen3_vl.video_processing_qwen3_vl:Qwen3VLVideoProcessor",
    ),
}
TINY_VLMS = tuple(FAMILIES)


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown tiny VLM {name!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def tiny_vlm_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where :func:`ensure_built` keeps ``name``: ``<root>/tiny/<name>-v<VERSION>``.

    ``root`` defaults to ``$REEDIT_CACHE``, else ``~/.cache/reedit``.
    """
    base = root or os.environ.get("REEDIT_CACHE") or Path.home() / ".cache" / "reedit"
    return Path(base).expanduser() / "tiny" / f"{name}-v{VERSION}"


def _build_tokenizer(extra_corpus: Sequence[str] = (), vocab_size: int = _TOKENIZER_VOCAB):
    """A byte-level BPE trained on `_CORPUS` and ``extra_corpus``, in the real Qwen2Tokenizer."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator((list(_CORPUS) + list(extra_corpus)) * 2, trainer)
    trained = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(trained["vocab"])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    for token in SPECIAL_TOKENS:  # after the ordinary tokens, as in the real Qwen vocabulary
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=[
            t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")
        ],
        model_max_length=32768,
        padding_side="left",  # saved: batched generation pads on the left
    )
    return tokenizer


def _build_processor(name: str, tokenizer, max_pixels: int | None = None):
    import importlib

    import transformers

    spec = family(name)
    factor = spec.patch * 2  # patch size x spatial merge size
    pixels = {"min_pixels": (2 * factor) ** 2, "max_pixels": max_pixels or (4 * factor) ** 2}
    mean_std = {}
    if spec.mean_std is not None:
        mean_std = {"image_mean": spec.mean_std, "image_std": spec.mean_std}
    common = {"patch_size": spec.patch, "merge_size": 2, "temporal_patch_size": 2}
    image_processor = transformers.Qwen2VLImageProcessor(**common, **pixels, **mean_std)
    video_size = {"shortest_edge": pixels["min_pixels"], "longest_edge": 4 * pixels["max_pixels"]}
    module, _, cls = spec.video_processor.partition(":")
    video_cls = getattr(importlib.import_module(module), cls)
    video_processor = video_cls(**common, size=video_size, **mean_std)
    return getattr(transformers, spec.processor)(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def _build_model(name: str, tokenizer):
    import torch
    import transformers

    spec = family(name)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    eos, pad = ids["<|im_end|>"], ids["<|endoftext|>"]
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "bos_token_id": pad,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "dtype": "float32",
        **spec.text,
    }
    tokens = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }
    config = getattr(transformers, spec.config)(
        text_config=text,
        vision_config=dict(spec.vision),
        tie_word_embeddings=True,
        dtype="float32",
        **tokens,
    )
    model = getattr(transformers, spec.model)(config).to(torch.float32).eval()
    generation = model.generation_config
    generation.bos_token_id = pad
    generation.eos_token_id = [eos, pad]
    generation.pad_token_id = pad
    generation.do_sample = False
    for unused in ("temperature", "top_p", "top_k"):
        setattr(generation, unused, None)
    return model


def build_vlm(
    name: str,
    path: str | os.PathLike,
    seed: int = 0,
    *,
    extra_corpus: Sequence[str] = (),
    vocab_size: int = _TOKENIZER_VOCAB,
    max_pixels: int | None = None,
) -> Path:
    """Build tiny ``name`` (one of :data:`TINY_VLMS`), weights from ``seed``; save it at ``path``.

    The folder is written next to ``path`` and renamed into place, so ``path`` is either absent,
    the previous folder, or complete. An existing folder at ``path`` is replaced. The keywords
    change the defaults for a model that will be trained (:mod:`reedit.testing.trained`): more text
    for the tokenizer and a larger vocabulary (shorter prompts), more image tokens per image.
    """
    import torch

    family(name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tokenizer = _build_tokenizer(extra_corpus, vocab_size)
        processor = _build_processor(name, tokenizer, max_pixels)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _build_model(name, tokenizer)
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        _write_json(tmp / MARKER, {"name": name, "version": VERSION, "seed": seed})
        _normalise_modes(tmp)
        _replace_dir(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _normalise_modes(folder: Path) -> None:
    """safetensors writes 0600 files; give every file the mode the umask allows (a shared cache)."""
    umask = os.umask(0)
    os.umask(umask)
    for file in folder.iterdir():
        file.chmod(0o666 & ~umask)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _replace_dir(new: Path, path: Path) -> None:
    """Rename ``new`` to ``path``, moving an existing ``path`` aside first."""
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.replace(path, old)
    os.replace(new, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _is_built(path: Path, name: str, signature: str | None) -> bool:
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        marker.get("name") == name
        and marker.get("version") == VERSION
        and marker.get("recipe_version") == signature
    )


def ensure_built(
    name: str,
    build: Callable[[Path], None],
    signature: str | None = None,
    root: str | os.PathLike | None = None,
) -> Path:
    """The cached ``name`` under :func:`tiny_vlm_dir`, made by ``build(folder)`` on first use
    (and again when ``signature``, a recipe's, changed). Safe against concurrent callers: each
    builds aside and renames into place."""
    path = tiny_vlm_dir(name, root)
    if _is_built(path, name, signature):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.build-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with _quiet():
            build(tmp)
        marker = json.loads((tmp / MARKER).read_text())
        if marker["name"] != name:
            marker["base"] = marker["name"]
        marker.update(name=name, recipe_version=signature)
        _write_json(tmp / MARKER, marker)
        try:
            if path.exists():  # a stale or broken folder (not built by us, no marker)
                if _is_built(path, name, signature):  # another process finished first
                    return path
                _replace_dir(tmp, path)
            else:
                os.replace(tmp, path)
        except OSError:
            if not _is_built(path, name, signature):  # lost a race: fine if complete
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No "Writing model shards" / "Loading weights" bars while building (restored after)."""
    from transformers.utils import logging as transformers_logging

    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


def ensure_vlm(name: str, root: str | os.PathLike | None = None) -> Path:
    """The cached random-weight tiny ``name`` (seed 0), built on first use.

    Finetune a copy of this folder, not the folder itself: :func:`finetune` writes in place and
    the cache would keep it.
    """
    family(name)
    return ensure_built(name, lambda folder: build_vlm(name, folder), source_fingerprint(), root)


def source_fingerprint() -> str:
    """Of this module's source: a cached model that other code built is built again (a random
    one's signature; part of a trained one's)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _example_tensors(processor, messages: list[dict], target: str, eos: str):
    """Prompt + target ids, with labels only on the target (and the end-of-turn token)."""
    import torch

    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    target_ids = processor.tokenizer(
        target + eos, add_special_tokens=False, return_tensors="pt"
    ).input_ids
    n_prompt, n_target = inputs["input_ids"].shape[1], target_ids.shape[1]
    batch = dict(inputs)
    batch["input_ids"] = torch.cat([inputs["input_ids"], target_ids], dim=1)
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    for key in ("mm_token_type_ids", "token_type_ids"):
        if key in batch:
            pad = torch.zeros((1, n_target), dtype=batch[key].dtype)
            batch[key] = torch.cat([batch[key], pad], dim=1)
    labels = batch["input_ids"].clone()
    labels[:, :n_prompt] = -100
    batch["labels"] = labels
    return batch


def finetune(
    folder: str | os.PathLike,
    pairs: Sequence[tuple[list[dict], str]],
    steps: int = 200,
    lr: float = 3e-3,
    seed: int = 0,
    frozen: Callable[[str], bool] | None = None,
    batch_size: int = 1,
) -> None:
    """Train the tiny VLM in ``folder`` on ``(conversation, target text)`` pairs; save it back.

    AdamW, ``batch_size`` examples per step (a seeded shuffle of ``pairs``, epoch after epoch,
    right-padded), cross-entropy on the target tokens and the closing ``<|im_end|>`` only. The
    conversation is the prompt as given to ``apply_chat_template(..., add_generation_prompt=True)``.
    Deterministic for a given seed (training runs on one CPU thread: at this size more threads
    only add synchronisation, and two threads sharing a busy 2-core machine were 6-15x slower).
    Parameters whose name ``frozen(name)`` accepts are not trained. The model files are replaced
    atomically one by one; the processor is untouched.
    """
    import torch
    from transformers import AutoProcessor

    folder = Path(folder)
    if not pairs:
        raise ValueError("finetune needs at least one (conversation, target) pair")
    processor = AutoProcessor.from_pretrained(folder)
    eos = processor.tokenizer.convert_ids_to_tokens(_first(_eos_id(folder)))

    def example(i: int) -> dict:  # built when drawn: kept all at once, 600 judge examples are ~2 GB
        messages, target = pairs[i]
        return _example_tensors(processor, list(messages), target, eos)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see the docstring
    try:
        pad_id = processor.tokenizer.pad_token_id
        model = _train(folder, example, len(pairs), steps, lr, seed, frozen, batch_size, pad_id)
    finally:
        torch.set_num_threads(threads)

    tmp = folder.parent / f".{folder.name}.finetune-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(tmp)
        _normalise_modes(tmp)
        for file in sorted(tmp.iterdir()):
            os.replace(file, folder / file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    marker_path = folder / MARKER
    try:
        marker = json.loads(marker_path.read_text())
    except (OSError, ValueError):
        marker = {}
    marker.setdefault("finetunes", []).append(
        {"pairs": len(pairs), "steps": steps, "lr": lr, "seed": seed, "batch_size": batch_size}
    )
    _write_json(marker_path, marker)


def _collate(examples: list[dict], pad_id: int) -> dict:
    """One batch: token rows right-padded (masked, unlabelled), image rows concatenated."""
    import torch

    if len(examples) == 1:
        return examples[0]
    width = max(e["input_ids"].shape[1] for e in examples)
    fill = {"input_ids": pad_id, "attention_mask": 0, "labels": -100}
    batch = {}
    for key in examples[0]:
        if key in ("pixel_values", "image_grid_thw"):
            batch[key] = torch.cat([e[key] for e in examples])
            continue
        rows = []
        for e in examples:
            row = e[key]
            pad = torch.full((1, width - row.shape[1]), fill.get(key, 0), dtype=row.dtype)
            rows.append(torch.cat([row, pad], dim=1))
        batch[key] = torch.cat(rows)
    return batch


def _train(
    folder: Path,
    example: Callable[[int], dict],
    n_examples: int,
    steps: int,
    lr: float,
    seed: int,
    frozen: Callable[[str], bool] | None,
    batch_size: int,
    pad_id: int,
):
    import torch
    from transformers import AutoModelForImageTextToText

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32)
        model.train()
        params = []
        for param_name, param in model.named_parameters():
            if frozen is not None and frozen(param_name):
                param.requires_grad_(False)
            else:
                params.append(param)
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        order: list[int] = []
        for _ in range(steps):
            chosen = []
            for _ in range(batch_size):
                if not order:
                    order = torch.randperm(n_examples, generator=generator).tolist()
                chosen.append(example(order.pop()))
            loss = model(**_collate(chosen, pad_id)).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        model.eval()
    return model


def _eos_id(folder: Path) -> int | list[int]:
    config = json.loads((folder / "generation_config.json").read_text())
    return config["eos_token_id"]


def _first(value):
    return value[0] if isinstance(value, list) else value
