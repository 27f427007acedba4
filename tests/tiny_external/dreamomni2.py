"""Tiny DreamOmni2 (``python dreamomni2.py OUT``), run in the model's environment with the
DreamOmni2 clone, reedit's root and this folder on ``PYTHONPATH``. It writes:

- ``OUT/kontext``: the FLUX.1-Kontext-shaped base, a tiny ``FluxKontextPipeline`` folder
  (``reedit.testing.pipelines``); ``DreamOmni2Pipeline.from_pretrained`` loads it as it loads the
  real ``black-forest-labs/FLUX.1-Kontext-dev``.
- ``OUT/edit_lora``: a diffusers-format LoRA for its transformer (peft adapter, random A and B),
  written by ``FluxKontextPipeline.save_lora_weights`` as the real ``edit_lora`` folder is.
- ``OUT/vlm``: a random-weight tiny Qwen2.5-VL (``reedit.testing.vlms``). It answers gibberish,
  never ``<gen>...</gen>``: the strict parse's fixture.
- ``OUT/vlm_gen``: the same model class trained briefly (``vlms.finetune``, deterministic, one CPU
  thread) to answer ``<gen>`` + instruction + ``</gen>`` for the demo dataset's ten samples, asked
  exactly as the adapter asks (the source at its Kontext resolution through the repository's
  ``utils.vprocess``, the instruction + " It is editing task."): a well-formed rewrite from a real
  model class, so that the image checks run the official flow end to end. After its 150 steps
  the answers are well-formed, though not always the exact instruction (the tests check the shape,
  and that the prompt used is what the tags enclose).

This script is named like the repository's ``dreamomni2`` package and, run as a script, shadows it
(its folder comes first on ``sys.path``): it never imports the pipeline, only ``utils.vprocess``.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from common import out_dir, seeded

SUFFIX = " It is editing task."  # inference_edit.py's prefix
DEMO = Path(__file__).resolve().parents[2] / "reedit" / "data" / "demo" / "re_edit_demo.json"
TRAIN_STEPS = 150


def kontext(out: Path) -> Path:
    from reedit.testing.pipelines import build

    seeded()
    return build("flux_kontext", out / "kontext", seed=0)


def edit_lora(base: Path, out: Path) -> None:
    from diffusers import FluxKontextPipeline, FluxTransformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = FluxTransformer2DModel.from_pretrained(base / "transformer")
    seeded(1)
    config = LoraConfig(
        r=4,
        lora_alpha=4,
        init_lora_weights=False,  # random A and B: the LoRA changes the output
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
    )
    transformer.add_adapter(config)
    FluxKontextPipeline.save_lora_weights(
        out / "edit_lora", transformer_lora_layers=get_peft_model_state_dict(transformer)
    )


def demo_samples() -> list[tuple[object, str]]:
    from reedit.data.images import decode_image_bytes

    records = json.loads(DEMO.read_text())
    out = []
    for rec in records:
        data = rec["src_img_b64"].split("base64,")[-1]
        out.append((decode_image_bytes(base64.b64decode(data)), rec["edit_instruction_en"]))
    return out


def vlm_pairs(samples) -> list[tuple[list[dict], str]]:
    from utils.vprocess import process_vision_info  # the repository's image sizing

    pairs = []
    for image, instruction in samples:
        probe = [{"role": "user", "content": [{"type": "image", "image": image}]}]
        (sized,), _ = process_vision_info(probe)
        content = [
            {"type": "image", "image": sized},
            {"type": "text", "text": instruction + SUFFIX},
        ]
        pairs.append(([{"role": "user", "content": content}], f"<gen>{instruction}</gen>"))
    return pairs


def vlms(out: Path) -> None:
    from reedit.testing.vlms import build_vlm, finetune

    build_vlm("qwen25_vl", out / "vlm", seed=0)
    samples = demo_samples()
    corpus = [f"<gen>{text}</gen>{SUFFIX}" for _, text in samples]
    build_vlm("qwen25_vl", out / "vlm_gen", seed=0, extra_corpus=corpus, vocab_size=1024)
    finetune(out / "vlm_gen", vlm_pairs(samples), steps=TRAIN_STEPS, lr=3e-3, seed=0)


def main() -> None:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    out = out_dir()
    base = kontext(out)
    edit_lora(base, out)
    vlms(out)
    (out / "dreamomni2_tiny.json").write_text(json.dumps({"argv": sys.argv[2:]}))


if __name__ == "__main__":
    main()
