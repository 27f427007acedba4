"""Qwen2.5-VL / Qwen3-VL (any ``AutoModelForImageTextToText`` with a chat-template processor)
in process through transformers: batched, left-padded generation; first-token yes/no
probabilities for ``judge.decision=logprob``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit import hub
from reedit.models.component import DTYPES
from reedit.models.vlm.base import (
    VLM,
    Conversation,
    VLMReply,
    resolve_vlm_path,
    weights_signature,
)
from reedit.settings import MISSING, check_choice, runtime_field

log = logging.getLogger(__name__)


class TransformersVLM(VLM):
    """Every generation parameter comes from YAML; ``temperature: 0`` is greedy decoding."""

    backend = "transformers"
    supports_logprobs = True
    requires = ("torch", "transformers:AutoModelForImageTextToText", "transformers:AutoProcessor")

    @dataclass
    class Settings(VLM.Settings):
        path: str = MISSING  # hub id, local folder, or tiny:<name>
        dtype: str = MISSING
        temperature: float = MISSING  # 0: greedy
        top_p: float = 1.0
        min_pixels: int | None = None  # null: the processor's own limits
        max_pixels: int | None = None
        attn_implementation: str | None = runtime_field(None)  # e.g. flash_attention_2
        device_map: str | None = runtime_field(None)  # e.g. auto: one copy over the gpus

        def __post_init__(self) -> None:
            super().__post_init__()
            check_choice("dtype", self.dtype, DTYPES)

    def __init__(self, settings: Any = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.model: Any = None
        self.processor: Any = None
        self.answer_ids: dict[str, list[int]] = {}

    @classmethod
    def copy_gpus(cls, settings: Any) -> int | None:
        return None if settings.device_map else 1  # device_map (e.g. auto): over all it has

    @property
    def path(self) -> str:
        return self.settings.path

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "weights": weights_signature(self.resolve_path())}

    def resolve_path(self) -> str:
        return resolve_vlm_path(self.locate(self.path))

    def _load(self) -> None:
        import torch

        if self.gpus and not torch.cuda.is_available():
            raise RuntimeError(
                f"gpus={self.gpus} asks for CUDA but torch sees no GPU; set gpus=[] for the CPU"
            )
        s = self.settings
        path = self.resolve_path()
        hub_id = not Path(path).is_dir()
        offline = hub_id and hub.offline()  # decided before transformers imports huggingface_hub
        import transformers
        from transformers import AutoModelForImageTextToText, AutoProcessor

        pixels = (("min_pixels", s.min_pixels), ("max_pixels", s.max_pixels))
        proc_kwargs: dict[str, Any] = {k: v for k, v in pixels if v is not None}
        kwargs: dict[str, Any] = {"dtype": getattr(torch, s.dtype)}
        if s.attn_implementation:
            kwargs["attn_implementation"] = s.attn_implementation
        if s.device_map:
            kwargs["device_map"] = s.device_map
        if offline:
            proc_kwargs["local_files_only"] = kwargs["local_files_only"] = True
        transformers.utils.logging.disable_progress_bar()  # "Loading weights": we log the load
        try:
            self.processor = AutoProcessor.from_pretrained(path, **proc_kwargs)
            self.model = AutoModelForImageTextToText.from_pretrained(path, **kwargs).eval()
        except Exception as exc:
            first = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            reason = hub.offline_reason() if hub_id else ""
            if reason:
                message = (
                    f"vlm.path: '{path}' is not in the Hugging Face cache and the hub is offline "
                    f"({reason}). Download it once with `hf download {path}`, or set vlm.path "
                    f"to a local model folder. ({first})"
                )
            else:
                message = (
                    f"vlm.path: cannot load '{path}' ({first}); a hub id must be downloaded "
                    f"first (`hf download {path}`) when offline"
                )
            raise RuntimeError(message) from exc
        if not s.device_map:
            self.model.to(f"cuda:{self.gpus[0]}" if self.gpus else "cpu")
        self.processor.tokenizer.padding_side = "left"
        self.answer_ids = self._answer_token_ids()

    def _answer_token_ids(self) -> dict[str, list[int]]:
        """Token ids whose text is "yes" or "no" (any case, optional leading space)."""
        out: dict[str, list[int]] = {"yes": [], "no": []}
        tok = self.processor.tokenizer
        for token, idx in tok.get_vocab().items():
            word = tok.convert_tokens_to_string([token]).strip().lower()
            if word in out:
                out[word].append(idx)
        return out

    def _close(self) -> None:
        import gc

        self.model = self.processor = None
        gc.collect()

    def _chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[VLMReply]:
        import torch

        inputs = self.processor.apply_chat_template(
            [to_hf_messages(c) for c in conversations],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True},
        ).to(self.model.device)
        s = self.settings
        sampling = s.temperature > 0
        gen: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": sampling}
        if sampling:
            gen |= {"temperature": s.temperature, "top_p": s.top_p}
        else:  # greedy: no sampling knobs (transformers warns about unused ones)
            gen |= {"temperature": None, "top_p": None, "top_k": None}
        with torch.inference_mode():
            out = self.model.generate(
                **inputs, **gen, output_scores=True, return_dict_in_generate=True
            )
        new = out.sequences[:, inputs["input_ids"].shape[1] :]
        texts = self.processor.batch_decode(new, skip_special_tokens=True)
        first = torch.softmax(out.scores[0].float(), dim=-1)
        replies = []
        for i, t in enumerate(texts):
            probs = {
                w: float(first[i, ids].sum()) if ids else 0.0 for w, ids in self.answer_ids.items()
            }
            replies.append(VLMReply(t.strip(), logprobs=probs, model=self.path))
        return replies


def to_hf_messages(conv: Conversation) -> list[dict[str, Any]]:
    """Our conversation (images as file paths) as transformers chat messages (PIL images)."""
    from PIL import Image

    from reedit.data.images import to_rgb

    out = []
    for msg in conv:
        content = []
        for c in msg["content"]:
            if c["type"] == "image":
                with Image.open(c["path"]) as img:
                    img.load()
                    content.append({"type": "image", "image": to_rgb(img)})
            else:
                content.append(c)
        out.append({"role": msg["role"], "content": content})
    return out
