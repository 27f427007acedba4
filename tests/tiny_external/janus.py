"""A tiny random-weight Janus-4o (``MultiModalityCausalLM`` + ``VLChatProcessor``) from Janus's own
classes, saved with their own ``save_pretrained`` layout; run in the Janus env as
``python janus.py OUT``.

Sizes: a 2-layer SigLIP tower of width 32 on 32 px inputs (patch 16: 4 understanding tokens), the
VQ tokenizer with 5 width-1 levels (patch 16: 2x2 = 4 image tokens), a 64 x 8 codebook, a 2-layer
Llama of width 64. The two sizes Janus keeps in module dicts (``siglip_tiny``, ``VQ-tiny``) are
registered by ``janus_sizes`` (imported at interpreter start in this env; imported here too so
that the builder also runs without the start-up line). The tokenizer is a WordLevel
``LlamaTokenizerFast`` holding Janus's special tokens.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# This script is named janus.py: its folder (sys.path[0]) would shadow Janus's own `janus`
# package. Moved to the end, it still finds `common` and `janus_sizes`.
HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

import janus_sizes  # noqa: E402
from common import out_dir, seeded  # noqa: E402

SPECIALS = {
    "bos": "<｜begin▁of▁sentence｜>",
    "eos": "<｜end▁of▁sentence｜>",
    "pad": "<｜▁pad▁｜>",
    "unk": "<unk>",
}
IMAGE_TAGS = ["<image_placeholder>", "<begin_of_image>", "<end_of_image>"]
ROLES = ["<|User|>", "<|Assistant|>"]  # the deepseek SFT template's roles
WORDS = (  # a few plain words; the others are <unk>
    "a an the of to in on at and or it its is are with from into by make add remove move change "
    "turn put replace left right top bottom side middle front back red green blue yellow white "
    "black ball lamp table glass water shadow light sky tree cup box cat dog car . , : ! ? ' -"
)
HIDDEN = 64


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaTokenizerFast

    vocab = {
        tok: i for i, tok in enumerate([*SPECIALS.values(), *IMAGE_TAGS, *ROLES, *WORDS.split()])
    }
    tok = Tokenizer(models.WordLevel(vocab, unk_token=SPECIALS["unk"]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = LlamaTokenizerFast(
        tokenizer_object=tok,
        bos_token=SPECIALS["bos"],
        eos_token=SPECIALS["eos"],
        pad_token=SPECIALS["pad"],
        unk_token=SPECIALS["unk"],
        add_bos_token=True,
        add_eos_token=False,
    )
    fast.add_special_tokens({"additional_special_tokens": IMAGE_TAGS + ROLES})
    return fast


def projector(input_dim: int) -> dict:
    params = {"depth": 2, "input_dim": input_dim, "n_embed": HIDDEN, "projector_type": "mlp_gelu"}
    return {"cls": "MlpProjector", "params": params}


def main() -> None:
    out = out_dir()
    from janus.models import MultiModalityCausalLM, VLChatProcessor, VLMImageProcessor
    from janus.models.modeling_vlm import MultiModalityConfig

    tok = tokenizer()
    siglip = janus_sizes.SIGLIP_SIZE
    codes = janus_sizes.VQ_SIZE["codebook_size"]
    vq = janus_sizes.VQ_SIZE
    vision = {
        "image_size": siglip["image_size"],
        "model_name": janus_sizes.SIGLIP,
        "select_feature": "same",
        "select_layer": -1,
    }
    head = {"image_token_embed": HIDDEN, "image_token_size": codes, "n_embed": HIDDEN}
    language = {
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": len(tok),
        "max_position_embeddings": 256,
        "torch_dtype": "float32",
    }
    config = MultiModalityConfig(
        vision_config={"cls": "CLIPVisionTower", "params": vision},
        aligner_config=projector(siglip["width"]),
        gen_vision_config={
            "cls": janus_sizes.VQ,
            "params": {"image_token_size": codes, "n_embed": vq["codebook_embed_dim"]},
        },
        gen_aligner_config=projector(vq["codebook_embed_dim"]),
        gen_head_config={"cls": "vision_head", "params": head},
        language_config=language,
        torch_dtype="float32",
    )
    config.architectures = ["MultiModalityCausalLM"]
    seeded(0)
    model = MultiModalityCausalLM(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    images = VLMImageProcessor(
        image_size=siglip["image_size"], image_mean=[0.5] * 3, image_std=[0.5] * 3
    )  # Janus-Pro's mean/std (IMAGENET_INCEPTION_*): a grey padding colour
    seeded(0)
    processor = VLChatProcessor(images, tok, num_image_tokens=4, sft_format="deepseek")
    processor.save_pretrained(out)
    sizes = {"image_size": siglip["image_size"], "image_tokens": 4, "codebook_size": codes}
    (out / "janus_tiny.json").write_text(json.dumps(sizes))


if __name__ == "__main__":
    main()
