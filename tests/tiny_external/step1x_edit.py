"""A tiny random-weight Step1X-Edit v1p2(-preview) pipeline, built in the Step1X environment
(transformers 4.55, the Peyton-Chen/diffusers fork) from the fork's own classes:
``Step1XEditTransformer2DModel`` (1 double + 1 single block), a tiny ``AutoencoderKL``, a tiny
``Qwen2_5_VLForConditionalGeneration`` with a byte-level BPE tokenizer trained here, and
``FlowMatchEulerDiscreteScheduler``; saved with ``Step1XEditPipelineV1P2.save_pretrained``.

Usage: ``python step1x_edit.py OUT``. Fixed by the fork's code:

- the pipeline's ``__init__`` reloads its processor from ``processor.tokenizer.name_or_path`` (and
  the thinker does again), so the processor is saved first and loaded back from that folder;
- the connector's global projection is ``Linear(in, 768)``: ``vector_in_dim`` must be 768;
  ``enable_text_token_mapping=True`` would hard-code Qwen's 3584 -> 4096, so it is off;
- the latents are packed 2x2, so ``in_channels`` 16 means a VAE with 4 latent channels;
- the vision tokens are 28 px (patch 14, merge 2), as the pipeline's position maths assumes.
"""

from __future__ import annotations

import json

from common import out_dir, seeded

SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# ChatML; an image part (``type`` image, or an ``image`` / ``image_url`` key, as the thinker sends
# them) becomes one <|image_pad|> between the vision marks (the processor expands it).
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' or 'image' in c or 'image_url' in c %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in c %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TEXT = (
    "Given a reference image and a user editing instruction, generate a detailed description.",
    "Make the sky red. Turn the car blue. Remove the person. Add a hat to the dog.",
    '{"meets_instruction": "yes", "raw_score": 7, "reason": "ok"} <#Think> <#Success>',
    "编辑指令 目标图 描述 评估 反思 成功 失败",
)


def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(TEXT) * 2, trainer)
    return Qwen2TokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=[t for t in SPECIALS if t not in ("<|endoftext|>", "<|im_end|>")],
        model_max_length=32768,
    )


def processor(tok):
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    sizes = {"patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}
    pixels = {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 256}
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**sizes, **pixels),
        video_processor=Qwen2VLVideoProcessor(**sizes),
        tokenizer=tok,
        chat_template=TEMPLATE,
    )


def text_encoder(tok):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    config = Qwen2_5_VLConfig(  # flat, like the real checkpoint's config.json (hidden_size on top)
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]},
        max_window_layers=2,
        tie_word_embeddings=True,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 4,
            "out_hidden_size": 32,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [0],
            "tokens_per_second": 2,
        },
        torch_dtype="bfloat16",
    )
    return Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16).eval()


def main() -> None:
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        Step1XEditPipelineV1P2,
        Step1XEditTransformer2DModel,
    )
    from transformers import AutoProcessor

    out = out_dir()
    staging = out / "processor"  # reloaded by name_or_path: it must exist on disk first
    processor(tokenizer()).save_pretrained(staging)
    loaded = AutoProcessor.from_pretrained(staging)
    seeded(0)
    encoder = text_encoder(loaded.tokenizer)
    seeded(1)
    transformer = Step1XEditTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        vector_in_dim=768,
        connector_in_channels=32,
        connector_hidden_size=32,
        connector_heads_num=2,
        connector_depth=1,
        axes_dims_rope=(4, 6, 6),
        enable_text_token_mapping=False,
    )
    seeded(2)
    vae = AutoencoderKL(  # 16x downsampling (the real one is 8x): 4x fewer image tokens
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 5,
        up_block_types=("UpDecoderBlock2D",) * 5,
        block_out_channels=(2, 4, 4, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=2,
        scaling_factor=0.5,
        shift_factor=0.1,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_image_seq_len=256, max_image_seq_len=4096
    )
    pipe = Step1XEditPipelineV1P2(
        scheduler=scheduler,
        vae=vae.to(torch.bfloat16),
        text_encoder=encoder,
        processor=loaded,
        transformer=transformer.to(torch.bfloat16),
    )
    pipe.save_pretrained(out)
    (out / "tiny.json").write_text(json.dumps({"pipeline": "Step1XEditPipelineV1P2"}))


if __name__ == "__main__":
    main()
