"""A tiny HiDream-E1.1 set-up: ``python hidream_e1.py OUT`` (run in the model's environment).

Every class is stock diffusers / transformers (HiDream-E1.1 has no model class of its own; its
repository adds only the editing pipeline). OUT gets three folders, laid out as the official
``inference_e1_1.py`` reads them:

- ``HiDream-I1-Full/``: a ``HiDreamImagePipeline`` folder (``save_pretrained``) with the scheduler,
  VAE, two CLIP-with-projection encoders, T5 and a transformer (weights A). As on the hub it has
  no Llama (``text_encoder_4``/``tokenizer_4`` are null): the script passes it separately.
- ``Llama-3.1-8B-Instruct/``: a 2-layer ``LlamaForCausalLM`` and a ``PreTrainedTokenizerFast``.
- ``HiDream-E1-1/transformer/``: the same transformer shape with other random weights (B), saved
  sharded (``diffusion_pytorch_model.safetensors.index.json`` + shards), so a test can tell which
  weights ran.

Shapes: the transformer of diffusers' own HiDream tests (patch 2, 4 latent channels, one double
and one single block, 4 heads of 8, 4 routed / 2 active experts, Llama layers 0 and 1); the VAE
keeps the real factor 8. The scheduler uses dynamic shifting, so ``transformer.max_seq`` (the
shift's sequence length) changes the timesteps, as it can in the real model.
"""

from __future__ import annotations

import json

from common import out_dir, seeded

T5_DIM, LLAMA_DIM, CLIP_PROJECTION = 32, 16, 32
LLAMA_SPECIALS = ("<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>")


def transformer():
    from diffusers import HiDreamImageTransformer2DModel

    return HiDreamImageTransformer2DModel(
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_channels=[T5_DIM, LLAMA_DIM],
        text_emb_dim=2 * CLIP_PROJECTION,  # the two pooled CLIP embeddings, concatenated
        num_routed_experts=4,
        num_activated_experts=2,
        axes_dims_rope=(4, 2, 2),
        max_resolution=(32, 32),
        llama_layers=[0, 1],
    ).eval()


def clip(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,  # the pipeline pads CLIP prompts to 128 tokens
        projection_dim=CLIP_PROJECTION,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModelWithProjection(config).eval()


def llama_tokenizer():
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    from reedit.testing.pipelines import _train_byte_bpe

    tok = _train_byte_bpe(400, LLAMA_SPECIALS)
    bos = LLAMA_SPECIALS[0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, 0)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token="<|eot_id|>", model_max_length=131072
    )


def main() -> None:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, HiDreamImagePipeline
    from transformers import LlamaConfig, LlamaForCausalLM

    from reedit.testing.pipelines import (
        _clip_tokenizer,
        _flux_vae_blocks,
        _t5_tokenizer,
        tiny_t5_encoder,
    )

    out = out_dir()
    tokenizer, tokenizer_2, tokenizer_3 = _clip_tokenizer(), _clip_tokenizer(), _t5_tokenizer()
    tokenizer.model_max_length = tokenizer_2.model_max_length = 128
    seeded(0)
    text_encoder = clip(tokenizer)
    seeded(1)
    text_encoder_2 = clip(tokenizer_2)
    seeded(2)
    text_encoder_3 = tiny_t5_encoder(tokenizer_3, T5_DIM).eval()
    seeded(3)
    vae = AutoencoderKL(
        **_flux_vae_blocks(),
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.1159,
        scaling_factor=0.3611,
    ).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_image_seq_len=256,
        max_image_seq_len=4096,
        base_shift=0.5,
        max_shift=1.15,
    )
    seeded(4)
    base = transformer()  # weights A: the "I1-Full" transformer
    encoders = {"text_encoder": text_encoder, "text_encoder_2": text_encoder_2}
    encoders.update(text_encoder_3=text_encoder_3, text_encoder_4=None)  # no Llama, as on the hub
    tokenizers = {"tokenizer": tokenizer, "tokenizer_2": tokenizer_2, "tokenizer_3": tokenizer_3}
    pipe = HiDreamImagePipeline(
        **encoders, **tokenizers, tokenizer_4=None, scheduler=scheduler, vae=vae, transformer=base
    )
    pipe.save_pretrained(out / "HiDream-I1-Full")

    llama_tok = llama_tokenizer()
    seeded(5)
    llama = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(llama_tok),
            hidden_size=LLAMA_DIM,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
            max_position_embeddings=256,
            bos_token_id=llama_tok.bos_token_id,
            eos_token_id=llama_tok.eos_token_id,
            tie_word_embeddings=False,
        )
    ).eval()
    llama.save_pretrained(out / "Llama-3.1-8B-Instruct")
    llama_tok.save_pretrained(out / "Llama-3.1-8B-Instruct")

    seeded(6)
    edit = transformer()  # weights B: the "E1.1" transformer, sharded as on the hub
    folder = out / "HiDream-E1-1" / "transformer"
    edit.save_pretrained(folder, max_shard_size="500KB")
    index = json.loads((folder / "diffusion_pytorch_model.safetensors.index.json").read_text())
    if len(set(index["weight_map"].values())) < 2:
        raise SystemExit("the E1.1 transformer was not sharded")


if __name__ == "__main__":
    main()
