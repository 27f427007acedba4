"""Tiny random-weight copies of the real diffusers edit pipelines, built offline.

Each recipe builds the *real* pipeline class (``QwenImageEditPipeline``,
``QwenImageEditPlusPipeline``, ``FluxKontextPipeline``, ``Flux2Pipeline``) from small component
configs with random weights, plus tokenizers trained locally with the ``tokenizers`` library on a
few sentences, and saves it with ``save_pretrained``. The folder loads back with
``<PipelineClass>.from_pretrained(folder, dtype=...)`` exactly as a real checkpoint does, so
the adapters, configs and runners are exercised end to end without a download.

What is deliberately real: the pipeline and model classes, the processors and tokenizer classes,
the chat templates, the special tokens and their ids in the model configs, and every VAE's
spatial downsampling factor of 8 (the edit pipelines resize inputs to about 1 MP, so a smaller
factor would make the tiny transformers see thousands of extra tokens). What is tiny: widths,
depths and vocabularies. The outputs are noise.

Choices made for speed on a CPU (each a plain config value of the real class): one attention
head in every transformer; no mid-block self-attention in the FLUX VAEs
(``mid_block_add_attention=False``); the Qwen-Image VAE (which has no such switch and always
encodes the input at ~1 MP, so it dominates a Qwen edit) with ``base_dim=2``. Its biases are
zeroed, or its output would hardly depend on the latents.

Builds are deterministic: ``torch.manual_seed(seed)`` precedes every component, so two builds with
the same seed give byte-identical folders. Importing this module is light (torch, diffusers,
transformers and tokenizers are imported inside the functions only).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION = 1  # bump when a recipe changes: it is part of the cache folder name

MARKER = "reedit_tiny.json"  # written last; a folder without it is incomplete

# Builds seed torch's global RNG: one build at a time per process keeps threads deterministic.
_BUILD_LOCK = threading.Lock()

# A few sentences to train the tiny tokenizers on (edit instructions and chat-template words).
CORPUS = (
    "make it red",
    "make the sky blue and add a red balloon",
    "turn the cat into a dog, keep the background",
    "remove the person on the left and fill the wall",
    "change the text on the sign to 'open'",
    "replace the apple with an orange; keep the lighting",
    "add snow on the roof of the house",
    "the same picture in the style of a watercolor painting",
    "Describe the key features of the input image (color, shape, size, texture, objects, "
    "background), then explain how the user's text instruction should alter or modify the "
    "image. Generate a new image that meets the user's requirements while maintaining "
    "consistency with the original input where appropriate.",
    "You are an AI that reasons about image descriptions. You give structured responses "
    "focusing on object relationships, object attribution and actions without speculation.",
    "You are a helpful assistant. Picture 1: user system assistant",
    "A photo of 3 cats, 2 dogs and 1 bird: 123 456 7890!",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG?",
)

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# ChatML as in Qwen2-VL / Qwen2.5-VL: one <|vision_start|><|image_pad|><|vision_end|> per image.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

MISTRAL_SPECIAL_TOKENS = (
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "<pad>",
    "[IMG]",
    "[IMG_BREAK]",
    "[IMG_END]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
)

# Mistral-Small-3.1 layout ([SYSTEM_PROMPT]..[/SYSTEM_PROMPT], [INST]..[/INST], [IMG] per image)
# that understands both string contents and lists of {"type": "text"|"image"} blocks.
MISTRAL_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- if messages[0]['content'] is string %}"
    "{%- set system_message = messages[0]['content'] %}"
    "{%- else %}{%- set system_message = messages[0]['content'][0]['text'] %}{%- endif %}"
    "{%- set loop_messages = messages[1:] %}"
    "{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}"
    "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if message['content'] is string %}{{- '[INST]' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST]' }}"
    "{%- for block in message['content'] %}"
    "{%- if block['type'] == 'text' %}{{- block['text'] }}"
    "{%- elif block['type'] in ['image', 'image_url'] %}{{- '[IMG]' }}"
    "{%- else %}{{- raise_exception('Only text and image blocks are supported') }}"
    "{%- endif %}{%- endfor %}{{- '[/INST]' }}"
    "{%- endif %}"
    "{%- elif message['role'] == 'system' %}"
    "{%- if message['content'] is string %}"
    "{{- '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}"
    "{%- else %}{{- '[SYSTEM_PROMPT]' + message['content'][0]['text'] + '[/SYSTEM_PROMPT]' }}"
    "{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{%- if message['content'] is string %}{{- message['content'] + eos_token }}"
    "{%- else %}{{- message['content'][0]['text'] + eos_token }}{%- endif %}"
    "{%- else %}{{- raise_exception('Only user, system and assistant roles are supported') }}"
    "{%- endif %}{%- endfor %}"
)


# -- cache folders -------------------------------------------------------------------------------
def tiny_dir(name: str, root: str | Path | None = None) -> Path:
    """``<root or $REEDIT_CACHE or ~/.cache/reedit>/tiny/<name>-v<VERSION>``."""
    _check_name(name)
    if root is None:
        root = os.environ.get("REEDIT_CACHE") or Path.home() / ".cache" / "reedit"
    return Path(root).expanduser() / "tiny" / f"{name}-v{VERSION}"


def is_complete(path: str | Path) -> bool:
    """True when ``path`` holds a finished build (its marker file exists)."""
    return (Path(path) / MARKER).is_file()


def stamp(name: str, seed: int = 0) -> dict[str, Any]:
    """What the marker file of a build records: recipe name, pipeline class, seed, version and a
    fingerprint of this module's source (an edited recipe invalidates cached folders even if
    :data:`VERSION` was not bumped)."""
    _check_name(name)
    return {
        "name": name,
        "pipeline": PIPELINES[name].pipeline_class,
        "seed": seed,
        "version": VERSION,
        "recipe": _fingerprint(),
    }


def ensure(name: str, root: str | Path | None = None) -> Path:
    """Build ``name`` (seed 0) into :func:`tiny_dir` unless a complete build of the current
    recipe is there already; return the folder."""
    path = tiny_dir(name, root)
    if _read_stamp(path) == stamp(name, 0):
        return path
    return build(name, path, seed=0)


def build(name: str, path: str | Path, seed: int = 0) -> Path:
    """Build the tiny ``name`` pipeline and ``save_pretrained`` it into ``path``.

    The pipeline is saved into a temporary sibling folder and renamed into place, so ``path`` is
    either absent or complete. If another process finishes the same build (same name, seed and
    recipe) first, its folder is kept and returned; a different or incomplete folder at ``path``
    is replaced.
    """
    expected = stamp(name, seed)
    path = Path(path).expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with _BUILD_LOCK, _quiet():
            pipe = PIPELINES[name].build(seed)
            pipe.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
        for _ in range(5):
            try:
                os.rename(tmp, path)  # atomic; fails if `path` exists and is not empty
                return path
            except OSError:
                if _read_stamp(path) == expected:  # a concurrent builder won the race
                    return path
                if path.exists():  # stale, incomplete or another recipe: move it aside
                    old = path.parent / f".{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                    try:
                        os.rename(path, old)
                    except OSError:
                        continue
                    shutil.rmtree(old, ignore_errors=True)
        raise RuntimeError(f"could not move the tiny '{name}' build into place at {path}")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the libraries' progress bars while building and saving (restored after)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    bars = [(m, m.is_progress_bar_enabled()) for m in (diffusers_logging, transformers_logging)]
    for module, _ in bars:
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module, enabled in bars:
            if enabled:
                module.enable_progress_bar()


def _check_name(name: str) -> None:
    if name not in PIPELINES:
        raise ValueError(f"unknown tiny pipeline '{name}'; choose one of {tuple(PIPELINES)}")


@functools.lru_cache(maxsize=1)
def _fingerprint() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None


# -- tokenizers ----------------------------------------------------------------------------------
def _merges(tok: Any) -> list[tuple[str, str]]:
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]


def _train_byte_bpe(vocab_size: int, special_tokens: tuple[str, ...] = ()) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` (GPT-2 / Qwen / Tekken style) trained on
    :data:`CORPUS`; ``special_tokens`` take the first ids. Its alphabet is the 256 byte symbols in
    sorted order, so the merges and ids are the same in every process."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return tok


def _qwen_tokenizer() -> Any:
    """A ``Qwen2Tokenizer`` with Qwen's special tokens appended after the BPE vocabulary."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    tok = _train_byte_bpe(400)
    vocab = dict(sorted(tok.get_vocab().items(), key=lambda kv: kv[1]))
    for token in QWEN_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=_merges(tok),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
    )
    tokenizer.add_tokens(
        [AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIAL_TOKENS]
    )
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    return tokenizer


def _clip_tokenizer() -> Any:
    """A ``CLIPTokenizer`` (lower-cased BPE with ``</w>`` word ends) trained on :data:`CORPUS`."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    alphabet = sorted(alphabet) + [c + "</w>" for c in sorted(alphabet)]
    # The trainer numbers word-final symbols ("x</w>") in hash-map order, which changes from one
    # process to the next; listing them up front as special tokens fixes their ids (and the
    # tie-breaks between equally frequent merges), so the result is the same in every process.
    specials = ["<|startoftext|>", "<|endoftext|>", *alphabet]
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(
                    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|"""
                    r"""[\p{N}]|[^\s\p{L}\p{N}]+"""
                ),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=len(specials) + 200,
        min_frequency=1,
        special_tokens=specials,
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    vocab = dict(sorted(tok.get_vocab().items(), key=lambda kv: kv[1]))
    return CLIPTokenizer(vocab=vocab, merges=_merges(tok), model_max_length=77)


def _t5_tokenizer() -> Any:
    """A ``T5Tokenizer`` (SentencePiece-style Unigram) trained on :data:`CORPUS`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        ]
    )
    trainer = trainers.UnigramTrainer(
        vocab_size=300,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    # The trainer's scores differ in the last bits from one process to the next, and it staggers
    # equally rare pieces by 1e-4 in hash-map order. Give each run of nearly equal scores one
    # rounded score and sort by (score, piece), keeping <pad> </s> <unk> at ids 0, 1, 2, so that
    # every process writes the same vocabulary.
    pieces = json.loads(tok.to_str())["model"]["vocab"]
    scored, group, prev = [], 0.0, None
    for piece, score in sorted(pieces[3:], key=lambda ps: -ps[1]):
        if prev is None or prev - score > 1e-3:
            group = round(score, 3)
        prev = score
        scored.append((-group, piece))
    vocab = [(piece, 0.0) for piece, _ in pieces[:3]] + [(p, -s + 0.0) for s, p in sorted(scored)]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def _mistral_tokenizer() -> Any:
    """A byte-level BPE tokenizer with Mistral's control tokens first ([INST], [IMG], ...)."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_byte_bpe(400, MISTRAL_SPECIAL_TOKENS),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=131072,
    )
    tokenizer.chat_template = MISTRAL_CHAT_TEMPLATE
    return tokenizer


# -- recipes -------------------------------------------------------------------------------------
def _eval(*modules: Any) -> None:
    for module in modules:
        module.eval()


def _zero_biases(module: Any) -> None:
    """Zero the biases of a freshly built module.

    In the tiny Qwen-Image VAE (RMS norms over 2 channels) the default-initialised biases of the
    many layers drown the signal: the decoded image hardly depends on the latents, nor the latents
    on the image, so every prompt, input image and CFG scale gave the same pixels.
    """
    import torch

    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("bias"):
                param.zero_()


def _qwen_edit(seed: int, plus: bool) -> Any:
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = _qwen_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    z_dim, hidden = 4, 16

    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=z_dim * 4,
        out_channels=z_dim,
        num_layers=1,
        attention_head_dim=16,
        num_attention_heads=1,  # attention over ~8k tokens at 1 MP: one head halves its cost
        joint_attention_dim=hidden,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
        zero_cond_t=plus,  # Qwen-Image-Edit-2511's transformer config sets it
    )

    torch.manual_seed(seed)
    vae = AutoencoderKLQwenImage(
        base_dim=2,
        z_dim=z_dim,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],  # 3 downsamples: spatial factor 8 (as real)
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    )

    torch.manual_seed(seed)
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256,
        base_shift=0.5,
        max_image_seq_len=8192,
        max_shift=0.9,
        num_train_timesteps=1000,
        shift=1.0,
        shift_terminal=0.02,
        time_shift_type="exponential",
        use_dynamic_shifting=True,
    )

    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "rope_parameters": {
                "rope_type": "default",
                "mrope_section": [1, 1, 2],
                "rope_theta": 1000000.0,
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config)

    # At most 64*64 px: a 384*384 condition image becomes 56*56, a 4x4 grid of 14-px patches,
    # i.e. 4 image tokens after the 2x2 merge (a real processor allows 28*28*1280 px).
    pixels = {"shortest_edge": 28 * 28, "longest_edge": 64 * 64}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=14, merge_size=2),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(size=pixels, patch_size=14, merge_size=2),
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    _zero_biases(vae)
    _eval(transformer, vae, text_encoder)
    cls = QwenImageEditPlusPipeline if plus else QwenImageEditPipeline
    return cls(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        processor=processor,
        transformer=transformer,
    )


def tiny_t5_encoder(tokenizer: Any, d_model: int) -> Any:
    """A 2-layer T5 encoder (gated GELU, 2 heads) for ``tokenizer``, with random weights."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=d_model,
            d_kv=8,
            d_ff=32,
            num_layers=2,
            num_heads=2,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=32,
            feed_forward_proj="gated-gelu",
            dropout_rate=0.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
    )


def _flux_vae_blocks() -> dict[str, Any]:
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,  # 3 downsamples: factor 8 (as real)
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (2, 2, 4, 4),
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 2,
        "sample_size": 64,
        # no self-attention over the 1/8-resolution latent (16k tokens at 1 MP, ~0.5 s per call)
        "mid_block_add_attention": False,
    }


def _flux_kontext(seed: int) -> Any:
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = _clip_tokenizer()
    tokenizer_2 = _t5_tokenizer()
    clip_dim, t5_dim = 16, 16

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=1,
        joint_attention_dim=t5_dim,
        pooled_projection_dim=clip_dim,
        guidance_embeds=True,
        axes_dims_rope=(4, 4, 8),
    )

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=clip_dim,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            projection_dim=clip_dim,
            hidden_act="quick_gelu",
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )

    torch.manual_seed(seed)
    text_encoder_2 = tiny_t5_encoder(tokenizer_2, t5_dim)

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        **_flux_vae_blocks(),
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.1159,
        scaling_factor=0.3611,
    )

    torch.manual_seed(seed)
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256,
        base_shift=0.5,
        max_image_seq_len=4096,
        max_shift=1.15,
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
    )
    _eval(transformer, text_encoder, text_encoder_2, vae)
    return FluxKontextPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
        image_encoder=None,
        feature_extractor=None,
    )


def _flux2(seed: int) -> Any:
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2Pipeline,
        Flux2Transformer2DModel,
    )
    from transformers import (
        Mistral3Config,
        Mistral3ForConditionalGeneration,
        PixtralImageProcessor,
        PixtralProcessor,
    )

    tokenizer = _mistral_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in MISTRAL_SPECIAL_TOKENS}
    hidden, layers = 16, 30  # the pipeline reads hidden states 10, 20 and 30 by default

    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels patchified 2x2 by the VAE
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=1,
        joint_attention_dim=3 * hidden,  # three stacked text-encoder layers
        timestep_guidance_channels=256,
        axes_dims_rope=(4, 4, 4, 4),
    )

    torch.manual_seed(seed)
    config = Mistral3Config(
        text_config={
            "model_type": "mistral",
            "vocab_size": len(tokenizer),
            "hidden_size": hidden,
            "head_dim": 4,
            "intermediate_size": 32,
            "max_position_embeddings": 2048,
            "num_attention_heads": 4,
            "num_hidden_layers": layers,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-05,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000000.0},
            "sliding_window": None,
            "bos_token_id": ids["<s>"],
            "eos_token_id": ids["</s>"],
            "pad_token_id": ids["<pad>"],
        },
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 16,
            "head_dim": 4,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "intermediate_size": 32,
            "image_size": 56,
            "patch_size": 14,
            "num_channels": 3,
        },
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=ids["<pad>"],
        image_token_index=ids["[IMG]"],
        spatial_merge_size=2,
        vision_feature_layer=-1,
    )
    text_encoder = Mistral3ForConditionalGeneration(config)
    processor = PixtralProcessor(
        image_processor=PixtralImageProcessor(
            size={"longest_edge": 56}, patch_size={"height": 14, "width": 14}
        ),
        tokenizer=tokenizer,
        patch_size=14,
        spatial_merge_size=2,
        chat_template=MISTRAL_CHAT_TEMPLATE,
    )

    torch.manual_seed(seed)
    vae = AutoencoderKLFlux2(**_flux_vae_blocks(), patch_size=(2, 2))

    torch.manual_seed(seed)
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256,
        base_shift=0.5,
        max_image_seq_len=4096,
        max_shift=1.15,
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        time_shift_type="exponential",
    )
    _eval(transformer, text_encoder, vae)
    return Flux2Pipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=processor,
        transformer=transformer,
    )


@dataclass(frozen=True)
class TinyPipeline:
    """One recipe: the real pipeline class it builds and the function that builds it."""

    pipeline_class: str
    build: Callable[[int], Any]  # seed -> pipeline


PIPELINES = {
    "qwen_image_edit": TinyPipeline(
        "QwenImageEditPipeline", lambda seed: _qwen_edit(seed, plus=False)
    ),
    "qwen_image_edit_2511": TinyPipeline(
        "QwenImageEditPlusPipeline", lambda seed: _qwen_edit(seed, plus=True)
    ),
    "flux_kontext": TinyPipeline("FluxKontextPipeline", _flux_kontext),
    "flux2": TinyPipeline("Flux2Pipeline", _flux2),
}
