"""DreamOmni2 editing (github.com/dvlab-research/DreamOmni2, ``inference_edit.py``).

The flow of the official script: a fine-tuned Qwen2.5-VL (``vlm_path``) rewrites the instruction
(the source image sized by the repository's ``utils.vprocess``, the instruction + " It is editing
task.", greedy decoding), then the repository's ``DreamOmni2Pipeline`` (FLUX.1-Kontext-dev at
``path`` with the edit LoRA at ``lora_path``) edits the source snapped to the nearest preferred
Kontext resolution, at that resolution. The pipeline and the image sizing are the repository's,
imported from ``model.runtime.repo_path``; one source image per request (no reference images).

What the official script gets wrong for evaluation, and what this adapter does instead:

- It passes no generator (two identical calls differ): a per-sample generator from the seed.
- It cuts the rewrite out of the VLM's answer blindly (``answer[6:-7]``), whatever the answer
  is. Here the answer, stripped of surrounding whitespace, must be exactly one ``<gen>...</gen>``
  (no other tag inside); the prompt is what the tags enclose, stripped (the same text the slice
  gives for ``<gen> X </gen>`` or ``<gen>\\nX\\n</gen>``, where ``<gen>X</gen>`` would lose a
  character at each end). Any other answer, or an empty prompt, is that sample's error, quoting
  the answer; no prompt is made up.
- The output is about 1 MP at the input's aspect ratio, never the input's size; recorded as the
  size policy (``resize_output_to_input`` resizes it back).

The raw answer, the prompt used and the Kontext input size go into each edit's ``details``.
Nothing samples from the global RNGs (greedy decoding, the VAE's latent mode, the noise from the
generator), so they are not seeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.models.base import Edited, EditRequest
from reedit.models.component import import_repo
from reedit.models.diffusers_editor import DiffusersEditor
from reedit.settings import MISSING

REPOSITORY = "https://github.com/dvlab-research/DreamOmni2"
OPEN, CLOSE = "<gen>", "</gen>"
QUOTED = 2000  # characters of a malformed answer quoted in the error


def repo(module: str) -> Any:
    return import_repo(module, REPOSITORY, "dreamomni2.yml")


def kontext_size(width: int, height: int, resolutions: list[tuple[int, int]]) -> tuple[int, int]:
    """(width, height) of the resolution whose aspect ratio is nearest ``width / height`` (on a
    tie the narrower one, as the repository's ``resizeinput``), floored to multiples of 16."""
    ratio = width / height
    w, h = min(resolutions, key=lambda wh: (abs(ratio - wh[0] / wh[1]), wh[0], wh[1]))
    return w // 16 * 16, h // 16 * 16


def gen_prompt(answer: str, sample_id: str) -> str:
    """The prompt of an answer that is exactly ``<gen>...</gen>`` (surrounding whitespace
    allowed); any other answer raises, naming the sample and quoting the answer."""
    text = answer.strip()
    inner = text[len(OPEN) : -len(CLOSE)]
    shaped = text.startswith(OPEN) and text.endswith(CLOSE) and len(text) >= len(OPEN + CLOSE)
    if shaped and OPEN not in inner and CLOSE not in inner and inner.strip():
        return inner.strip()
    quoted = repr(answer[:QUOTED]) + (
        f" ... ({len(answer)} characters)" if len(answer) > QUOTED else ""
    )
    error = ValueError(
        f"sample {sample_id}: the DreamOmni2 VLM's answer is not exactly one non-empty "
        f"{OPEN}...{CLOSE}, so it gives no prompt (nothing is edited): {quoted}"
    )
    error.details = {"vlm_answer": answer}  # type: ignore[attr-defined]  # the whole answer
    raise error


class DreamOmni2Editor(DiffusersEditor):
    pipeline_class = "DreamOmni2Pipeline"  # the repository's (dreamomni2.pipeline_dreamomni2)
    requires = ("torch", "transformers", "diffusers", "peft")
    honours = frozenset(
        {"guidance_scale", "true_cfg_scale", "negative_prompt", "height", "width", "max_area"}
    )
    size_policy = (
        "the input snapped to the preferred FLUX.1-Kontext resolution nearest its aspect ratio "
        "(about 1 MP, multiples of 16; height/width override it, max_area rescales it); not "
        "resized back to the input unless resize_output_to_input"
    )

    @dataclass
    class Settings(DiffusersEditor.Settings):
        lora_path: str = MISSING  # the edit LoRA folder of the DreamOmni2 weights (edit_lora)
        lora_weight: float = MISSING  # set_adapters(["edit"], adapter_weights=[...])
        vlm_path: str = MISSING  # the fine-tuned Qwen2.5-VL folder (vlm-model)
        instruction_suffix: str = MISSING  # appended to the instruction for the VLM
        max_new_tokens: int = MISSING  # the VLM's answer (greedy)

    @classmethod
    def import_checks(cls) -> tuple[str, ...]:
        pipeline = "dreamomni2.pipeline_dreamomni2:DreamOmni2Pipeline"
        return (*cls.requires, pipeline, "utils.vprocess:process_vision_info")

    @classmethod
    def path_problems(cls, settings: Any) -> list[str]:
        out = super().path_problems(settings)
        for key in ("lora_path", "vlm_path"):
            folder = Path(getattr(settings, key)).expanduser()
            if not folder.is_dir():
                out.append(f"{key}: no such folder: {folder}")
        return out

    def pipeline_type(self) -> Any:
        return repo("dreamomni2.pipeline_dreamomni2").DreamOmni2Pipeline

    def _load(self) -> None:
        self.vprocess = repo("utils.vprocess")  # first: a missing clone fails before any weights
        import torch
        from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

        super()._load()  # the base pipeline, on its device
        s = self.settings
        lora, vlm = (str(Path(p).expanduser()) for p in (s.lora_path, s.vlm_path))
        try:
            self.pipe.load_lora_weights(lora, adapter_name="edit")
            self.pipe.set_adapters(["edit"], adapter_weights=[s.lora_weight])
        except Exception as exc:
            raise RuntimeError(f"model.lora_path: cannot load {lora}: {exc}") from exc
        try:
            dtype = getattr(torch, s.dtype)  # the script: torch_dtype="bfloat16", as the pipeline
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(vlm, dtype=dtype)
            self.vlm = model.to(self.device).eval()
            self.processor = AutoProcessor.from_pretrained(vlm)
        except Exception as exc:
            raise RuntimeError(f"model.vlm_path: cannot load {vlm}: {exc}") from exc

    def _close(self) -> None:
        self.vlm = self.processor = None
        super()._close()

    def rewrite(self, req: EditRequest) -> str:
        """The VLM's raw answer, asked as inference_edit.py's ``infer_vlm`` asks."""
        text = {"type": "text", "text": req.instruction + self.settings.instruction_suffix}
        messages = [{"role": "user", "content": [{"type": "image", "image": req.image}, text]}]
        template = self.processor.apply_chat_template
        chat = template(messages, add_generation_prompt=True, tokenize=False)
        images, videos = self.vprocess.process_vision_info(messages)
        inputs = self.processor(
            text=[chat], images=images, videos=videos, padding=True, return_tensors="pt"
        ).to(self.device)
        ids = self.vlm.generate(
            **inputs, do_sample=False, max_new_tokens=self.settings.max_new_tokens
        )
        new = ids[:, inputs.input_ids.shape[1] :]
        return self.processor.batch_decode(
            new, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )[0]

    def call_kwargs(self, req: EditRequest) -> dict[str, Any]:
        from PIL import Image

        s = self.settings
        w, h = kontext_size(*req.image.size, self.vprocess.PREFERRED_KONTEXT_RESOLUTIONS)
        source = req.image.resize((w, h), Image.Resampling.LANCZOS)
        height, width = (s.height, s.width) if s.height and s.width else (h, w)
        kwargs: dict[str, Any] = {
            "images": [source],
            "height": height,
            "width": width,
            "num_inference_steps": s.num_inference_steps,
            "guidance_scale": s.guidance_scale,
        }
        area = height * width if s.height and s.width else s.max_area
        if area:  # the pipeline rescales height x width to this area (null: its default)
            kwargs["max_area"] = area
        if s.true_cfg_scale is not None:
            kwargs["true_cfg_scale"] = s.true_cfg_scale
        if s.negative_prompt is not None:
            kwargs["negative_prompt"] = s.negative_prompt
        return kwargs

    def generate(self, req: EditRequest, generator: Any, kwargs: dict[str, Any]) -> Any:
        answer = self.rewrite(req)
        prompt = gen_prompt(answer, req.sample_id)
        image = self.pipe(prompt=prompt, generator=generator, **kwargs).images[0]
        source = kwargs["images"][0].size
        return Edited(
            image, {"prompt": prompt, "vlm_answer": answer, "kontext_input": list(source)}
        )

    def info(self) -> dict[str, Any]:
        s = self.settings
        return {**super().info(), "lora_path": s.lora_path, "vlm_path": s.vlm_path}
