"""A tiny random-weight Ovis-U1 checkpoint folder on the STAND-IN of its remote code (run in its
env): ``python ovis_u1.py OUT``.

Ovis-U1-3B's model code is Hugging Face remote code that comes with the weights and cannot run
here (its vision tower needs the CUDA-only ``flash_attn``; no repository holds the files). The
folder written here is laid out as the real checkpoint is: the remote-code files (the stand-ins of
``tests/standins/ovis_u1_remote/``), ``config.json`` with an ``auto_map`` naming them, the text
tokenizer (a byte-level ``Qwen2TokenizerFast``) and the image processor (a ``CLIPImageProcessor``
carrying ``min_pixels``/``max_pixels``/``patch_size``/``hidden_stride``/``temporal_patch_size``)
that ``OvisU1.__init__`` loads from its own folder, and ``model.safetensors`` in bfloat16, written
by ``save_pretrained`` of the model that ``AutoModelForCausalLM.from_config(config,
trust_remote_code=True)`` built from those files. The LLM is a tiny Qwen3 (transformers' own).
Deterministic: the model is built right after ``common.seeded()``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import common

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "ovis_u1_remote"
LLM_HIDDEN = 32
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

VAE = {  # FLUX-like: 8x down-sampling, shift and scale, no quant convs; 4 latent channels
    "_class_name": "AutoencoderKL",
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [8, 8, 8, 8],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 4,
    "sample_size": 64,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}

CONFIG = {
    "architectures": ["OvisU1"],
    "model_type": "ovis_u1",
    "auto_map": {
        "AutoConfig": "configuration_ovis_u1.OvisU1Config",
        "AutoModelForCausalLM": "modeling_ovis_u1.OvisU1",
    },
    "hidden_size": LLM_HIDDEN,
    "multimodal_max_length": 2048,
    "conversation_formatter_class": "Qwen3ConversationFormatter",
    "llm_config": {
        "model_type": "qwen3",
        "vocab_size": 288,
        "hidden_size": LLM_HIDDEN,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "max_position_embeddings": 1024,
        "sliding_window": None,
        "tie_word_embeddings": True,
    },
    "visual_tokenizer_config": {
        "model_type": "aimv2_visual_tokenizer",
        "vocab_size": 64,
        "tokenize_function": "softmax",
        "hidden_stride": 2,
        "backbone_config": {
            "model_type": "aimv2",
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "patch_size": 8,
            "temporal_patch_size": 1,
        },
    },
    "visual_generator_config": {
        "model_type": "yak",
        "in_channels": 16,  # 4 latent channels in 2x2 patches
        "out_channels": 16,
        "vec_in_dim": 32,
        "context_in_dim": 2 * LLM_HIDDEN,  # the LLM's last two hidden states
        "hidden_size": 32,
        "mlp_ratio": 2,
        "num_heads": 2,
        "depth": 1,
        "depth_single_blocks": 1,
        "axes_dim": [4, 6, 6],
        "timestep_shift": True,
        "vae_config": VAE,
    },
}


def tokenizer():
    """A byte-level BPE without merges (one token per byte) and the Qwen chat tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = Qwen2TokenizerFast(
        tokenizer_object=core, unk_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tok.add_special_tokens({"additional_special_tokens": SPECIALS})
    return tok


def image_processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        do_resize=True,
        size={"shortest_edge": 64},
        do_center_crop=False,
        do_rescale=True,
        do_normalize=True,
        min_pixels=64 * 64,  # the ViT's view of a condition image: 64x64 -> 8x8 patches
        max_pixels=128 * 128,
        patch_size=8,
        hidden_stride=2,
        temporal_patch_size=1,
    )


def main() -> None:
    out = common.out_dir()
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    for source in sorted(STANDIN.glob("*.py")):
        shutil.copy(source, out / source.name)
    tokenizer().save_pretrained(out)
    image_processor().save_pretrained(out)
    (out / "config.json").write_text(json.dumps(CONFIG, indent=1))
    config = AutoConfig.from_pretrained(out, trust_remote_code=True)
    common.seeded()
    model = AutoModelForCausalLM.from_config(config, trust_remote_code=True)
    model.to(torch.bfloat16).save_pretrained(out)


if __name__ == "__main__":
    main()
